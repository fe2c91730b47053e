//! The engine on the real filesystem ([`StdVfs`], [`SystemClock`]) under a plain executor:
//! what `bench` measures commits on and what `realcrash`'s child runs.
//!
//! The engine is runtime-agnostic and spawns nothing, so one thread suffices: clients and the
//! group-commit log sync are futures joined on `futures::executor::block_on`. Each client
//! yields after every commit, so with group commit the other clients append their commits
//! while one waits, and one `sync_log` fsync covers all of them.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crashpoint::{Engine, NoopObserver, Options, StdVfs, Strategy, SyncMode, SystemClock, Write};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::scenario::{KeyDistribution, Workload};
use crate::schedule::{Operation, ScheduledWrite};

pub type RealEngine = Engine<StdVfs, SystemClock>;

/// Returns Pending once, so the executor runs the other joined futures before this one goes on.
#[derive(Default)]
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        context.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The transactional workload of the engine-against-SQLite comparison: commits only, 1 to 4
/// writes of 16 to 128 bytes over 10,000 keys, 5% deletes.
pub fn comparison_workload() -> Workload {
    Workload {
        clients: 1,
        transactions_per_client: 0,
        writes_min: 1,
        writes_max: 4,
        keys: 10_000,
        key_distribution: KeyDistribution::Uniform,
        value_size_min: 16,
        value_size_max: 128,
        delete_ratio: 0.05,
        read_ratio: 0.0,
        think_time_max_ms: 0,
    }
}

/// Engine options for the comparison: 4 KiB pages, a cache that holds the working set, and
/// keys bounded as the workload makes them (the in-place strategies size page slots by it).
pub fn comparison_options(strategy: Strategy, sync_mode: SyncMode) -> Options {
    Options {
        strategy,
        sync_mode,
        cache_pages: 4096,
        key_size_max: 16,
        value_size_max: 128,
        ..Options::default()
    }
}

/// Each client's transactions, drawn by the simulator's generator from one stream per client.
pub fn draw_transactions(
    workload: &Workload,
    seed: u64,
    clients: u32,
    per_client: u32,
) -> Vec<Vec<Vec<ScheduledWrite>>> {
    (0..clients)
        .map(|client| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(u64::from(client) + 1);
            (0..per_client)
                .map(|number| {
                    match crate::workload::draw(&mut rng, workload, (0, client, number)) {
                        Operation::Commit { writes, .. } => writes,
                        // The comparison workload has no reads; a read becomes an empty commit.
                        _ => Vec::new(),
                    }
                })
                .collect()
        })
        .collect()
}

pub fn to_writes(writes: &[ScheduledWrite]) -> Vec<Write> {
    writes
        .iter()
        .map(|write| Write {
            key: write.key.clone().into_bytes(),
            value: write.value.clone().map(String::into_bytes),
        })
        .collect()
}

/// What one timed run of committers produced.
#[derive(Clone, Debug, Default)]
pub struct CommitRun {
    pub commits: u64,
    pub elapsed: Duration,
    /// Each commit's latency, from the call to its return, in microseconds.
    pub latencies_us: Vec<f64>,
}

impl CommitRun {
    pub fn commits_per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Opens the engine in `directory` (a new database there), runs `transactions` with one
/// concurrent committer per client, and closes it. Group commit gets a log-sync future that
/// syncs whenever it runs while any client is still working.
pub fn run_committers(
    directory: &Path,
    options: Options,
    transactions: &[Vec<Vec<ScheduledWrite>>],
) -> anyhow::Result<CommitRun> {
    futures::executor::block_on(async {
        let vfs = StdVfs::new(directory)?;
        let periodic = options.sync_mode == SyncMode::Periodic;
        let engine = Engine::open(
            vfs,
            SystemClock::new(),
            options,
            std::sync::Arc::new(NoopObserver),
        )
        .await?;
        let running = std::cell::Cell::new(transactions.len());
        let started = Instant::now();
        let clients = transactions.iter().enumerate().map(|(index, script)| {
            let engine = &engine;
            let running = &running;
            async move {
                let mut latencies = Vec::with_capacity(script.len());
                for (number, writes) in script.iter().enumerate() {
                    let begun = Instant::now();
                    let result = engine.commit(to_writes(writes)).await;
                    latencies.push(begun.elapsed().as_secs_f64() * 1e6);
                    if let Err(error) = result {
                        running.set(running.get() - 1);
                        return Err(anyhow::Error::from(error));
                    }
                    // One client stands in for the checkpointer a real embedder runs.
                    if index == 0 && number % 32 == 31 {
                        engine.checkpoint_if_due().await?;
                    }
                    YieldNow::default().await;
                }
                running.set(running.get() - 1);
                Ok(latencies)
            }
        });
        let syncer = async {
            while periodic && running.get() > 0 {
                engine.sync_log().await?;
                YieldNow::default().await;
            }
            Ok::<(), anyhow::Error>(())
        };
        let (results, synced) =
            futures::future::join(futures::future::join_all(clients), syncer).await;
        let elapsed = started.elapsed();
        synced?;
        let mut run = CommitRun {
            elapsed,
            ..CommitRun::default()
        };
        for latencies in results {
            let latencies = latencies?;
            run.commits += latencies.len() as u64;
            run.latencies_us.extend(latencies);
        }
        engine.close().await?;
        Ok(run)
    })
}
