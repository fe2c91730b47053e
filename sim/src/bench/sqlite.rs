//! SQLite (bundled, through rusqlite) on the same transactional workload as the engine: WAL
//! mode, `synchronous=FULL` or `NORMAL`, one connection per client thread with a busy timeout.
//!
//! In WAL mode `FULL` fsyncs the WAL at every commit; `NORMAL` fsyncs only at a WAL checkpoint,
//! so a commit is durable against a process crash but not against power loss.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::real_engine::CommitRun;
use crate::schedule::ScheduledWrite;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub fn name(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

fn connect(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", synchronous.name())?;
    Ok(connection)
}

/// Runs `transactions` (one list per client, each on its own thread and connection) against a
/// new database in `directory`.
pub fn run_sqlite(
    directory: &Path,
    synchronous: Synchronous,
    transactions: &[Vec<Vec<ScheduledWrite>>],
) -> anyhow::Result<CommitRun> {
    let path = directory.join("bench.sqlite");
    connect(&path, synchronous)?.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
    )?;
    let barrier = Arc::new(Barrier::new(transactions.len() + 1));
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = transactions
            .iter()
            .map(|script| {
                let barrier = barrier.clone();
                let path = &path;
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut connection = connect(path, synchronous)?;
                    barrier.wait();
                    let mut latencies = Vec::with_capacity(script.len());
                    for writes in script {
                        let begun = Instant::now();
                        commit(&mut connection, writes)?;
                        latencies.push(begun.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|handle| handle.join().expect("a SQLite client thread panicked"))
            .collect();
        (started.elapsed(), results)
    });
    let (elapsed, results) = results;
    let mut run = CommitRun {
        elapsed,
        ..CommitRun::default()
    };
    for latencies in results {
        let latencies = latencies?;
        run.commits += latencies.len() as u64;
        run.latencies_us.extend(latencies);
    }
    Ok(run)
}

/// One transaction: BEGIN IMMEDIATE (take the write lock up front, as a writer should in WAL
/// mode, so a busy wait happens at begin and never as a deadlock at commit), the writes, COMMIT.
fn commit(connection: &mut Connection, writes: &[ScheduledWrite]) -> rusqlite::Result<()> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for write in writes {
        match &write.value {
            Some(value) => {
                transaction
                    .prepare_cached(
                        "INSERT INTO kv (key, value) VALUES (?1, ?2) \
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![write.key, value.as_bytes()])?;
            }
            None => {
                transaction
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute(params![write.key])?;
            }
        }
    }
    transaction.commit()
}
