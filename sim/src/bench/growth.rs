//! How the engine's costs grow, on the real filesystem: recovery time against the redo length
//! since the checkpoint, and checkpoint time against the pages the checkpoint writes (the
//! dirty pages, not the total). Each series gets a least-squares line and its R².

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashpoint::{CheckpointStep, Engine, NoopObserver, Observer, Options, StdVfs, Strategy};
use crashpoint::{SyncMode, SystemClock, Write};

use super::stats::{linear_fit, median, LinearFit};

/// One series: (x, milliseconds) points and the fitted line.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub strategy: String,
    pub points: Vec<(f64, f64)>,
    pub fit: Option<LinearFit>,
}

/// Options for growth runs: no checkpoint trigger fires during the measured work, so the
/// redo length and the dirty pages are exactly what the run made them.
fn growth_options(strategy: Strategy) -> Options {
    Options {
        strategy,
        sync_mode: SyncMode::NoSync,
        cache_pages: 16_384,
        checkpoint_interval: Duration::from_secs(3600),
        dirty_bytes_limit: 1 << 50,
        checkpoint_log_bytes: 1 << 40,
        log_segment_bytes: 16 << 20,
        physical_log_bytes: 1 << 30,
        key_size_max: 16,
        value_size_max: 128,
        ..Options::default()
    }
}

fn key(index: u64) -> Vec<u8> {
    crate::workload::key_name(index)
}

/// A value of 100 bytes that differs per `round`, so every update changes the page.
fn value(index: u64, round: u64) -> Vec<u8> {
    let mut value = format!("r{round}i{index}-").into_bytes();
    value.resize(100, b'v');
    value
}

async fn load<C: crashpoint::Clock>(
    engine: &Engine<StdVfs, C>,
    keys: impl Iterator<Item = u64>,
    round: u64,
) -> anyhow::Result<()> {
    let keys: Vec<u64> = keys.collect();
    for chunk in keys.chunks(8) {
        let writes = chunk
            .iter()
            .map(|&index| Write {
                key: key(index),
                value: Some(value(index, round)),
            })
            .collect();
        engine.commit(writes).await?;
    }
    Ok(())
}

/// Recovery time against redo: for each length, a fresh database of `keys` keys, a
/// checkpoint, `length` commits of 8 writes after it, a log sync, a drop (a crash without
/// loss), then a timed open. x is the redo in KiB as recovery reports it.
pub fn recovery_series(
    directory: &Path,
    strategy: Strategy,
    lengths: &[u64],
    repetitions: usize,
) -> anyhow::Result<Series> {
    let keys = 5_000;
    let mut points = Vec::new();
    for &length in lengths {
        let mut times = Vec::new();
        let mut redo_kib = 0.0;
        for repetition in 0..repetitions {
            let path = directory.join(format!(
                "recovery-{}-{length}-{repetition}",
                strategy.name()
            ));
            let _ = std::fs::remove_dir_all(&path);
            futures::executor::block_on(async {
                let engine = open(&path, strategy).await?;
                load(&engine, 0..keys, 0).await?;
                engine.checkpoint().await?;
                load(&engine, (0..length * 8).map(|n| (n * 7919) % keys), 1).await?;
                engine.sync_log().await?;
                anyhow::Ok(())
            })?;
            let started = Instant::now();
            let engine = futures::executor::block_on(open(&path, strategy))?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            let report = engine.recovery_report();
            redo_kib = report.log_end.0.saturating_sub(report.checkpoint_lsn.0) as f64 / 1024.0;
            drop(engine);
            let _ = std::fs::remove_dir_all(&path);
        }
        points.push((redo_kib, median(&times)));
    }
    Ok(Series {
        strategy: strategy.name().to_string(),
        fit: linear_fit(&points),
        points,
    })
}

async fn open(path: &Path, strategy: Strategy) -> anyhow::Result<Engine<StdVfs, SystemClock>> {
    open_observed(path, strategy, Arc::new(NoopObserver)).await
}

async fn open_observed(
    path: &Path,
    strategy: Strategy,
    observer: Arc<dyn Observer>,
) -> anyhow::Result<Engine<StdVfs, SystemClock>> {
    Ok(Engine::open(
        StdVfs::new(path)?,
        SystemClock::new(),
        growth_options(strategy),
        observer,
    )
    .await?)
}

/// Counts the pages each checkpoint writes.
#[derive(Default)]
struct PageCounter(AtomicU64);

impl Observer for PageCounter {
    fn checkpoint_step(&self, _count: u64, step: CheckpointStep) {
        if step.page.is_some() {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Checkpoint time against dirty pages: one database of `keys` keys (the total stays the
/// same), then for each count, updates to that many keys spread evenly over the key space
/// (about one per leaf) and a timed checkpoint. x is the pages the checkpoint wrote.
pub fn checkpoint_series(
    directory: &Path,
    strategy: Strategy,
    updated_keys: &[u64],
    repetitions: usize,
) -> anyhow::Result<Series> {
    let keys = 80_000u64;
    let path = directory.join(format!("checkpoint-{}", strategy.name()));
    let _ = std::fs::remove_dir_all(&path);
    let counter = Arc::new(PageCounter::default());
    let points = futures::executor::block_on(async {
        let engine = open_observed(&path, strategy, counter.clone()).await?;
        load(&engine, 0..keys, 0).await?;
        engine.checkpoint().await?;
        let mut points = Vec::new();
        let mut round = 1;
        for &count in updated_keys {
            let mut times = Vec::new();
            let mut pages = Vec::new();
            for _ in 0..repetitions {
                let stride = keys / count.max(1);
                load(&engine, (0..count).map(|n| n * stride), round).await?;
                round += 1;
                counter.0.store(0, Ordering::SeqCst);
                let started = Instant::now();
                engine.checkpoint().await?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                pages.push(counter.0.load(Ordering::SeqCst) as f64);
            }
            points.push((median(&pages), median(&times)));
        }
        engine.close().await?;
        anyhow::Ok(points)
    })?;
    let _ = std::fs::remove_dir_all(&path);
    Ok(Series {
        strategy: strategy.name().to_string(),
        fit: linear_fit(&points),
        points,
    })
}
