//! A bounded pool of worker threads for independent seeds, and a wall-clock limit per seed.
//!
//! Workers take the next item from a shared atomic counter, so a slow seed does not hold up a
//! fixed slice of work; results are put back in item order, so what the caller prints does not
//! depend on the number of jobs or on scheduling. Once the caller's stop condition holds, no
//! worker takes another item, and every item taken finishes: what ran is always a prefix.
//! [`for_each_in_parallel`] is the same pool for work that keeps no results (`soak`, which
//! runs until the time is up and must not collect an outcome per seed).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::driver::{run_seed, SeedOptions};
use crate::outcome::{Failure, FailureKind, SeedOutcome};
use crate::scenario::Scenario;

/// Runs `work(0..count)` on `jobs` threads until `stop()` holds; returns the results of the
/// items that ran, `0..k` for some `k <= count`, in item order.
pub fn map_in_parallel<T, F>(
    count: u64,
    jobs: usize,
    progress: &ProgressBar,
    stop: &(dyn Fn() -> bool + Sync),
    work: F,
) -> Vec<T>
where
    T: Send,
    F: Fn(u64) -> T + Sync,
{
    let next = AtomicU64::new(0);
    let threads = jobs.clamp(1, usize::try_from(count).unwrap_or(usize::MAX).max(1));
    let mut results: Vec<(u64, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        if stop() {
                            break done;
                        }
                        let item = next.fetch_add(1, Ordering::Relaxed);
                        if item >= count {
                            break done;
                        }
                        done.push((item, work(item)));
                        progress.inc(1);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a worker panicked outside a seed"))
            .collect()
    });
    results.sort_by_key(|(item, _)| *item);
    debug_assert!(
        results
            .iter()
            .enumerate()
            .all(|(position, (item, _))| position as u64 == *item),
        "the items that ran are a prefix"
    );
    results.into_iter().map(|(_, result)| result).collect()
}

/// Runs `work(0..count)` on `jobs` threads until `stop()` holds, keeping nothing; returns how
/// many items ran (items `0..k`).
pub fn for_each_in_parallel<F>(
    count: u64,
    jobs: usize,
    stop: &(dyn Fn() -> bool + Sync),
    work: F,
) -> u64
where
    F: Fn(u64) + Sync,
{
    let next = AtomicU64::new(0);
    let ran = AtomicU64::new(0);
    let threads = jobs.clamp(1, usize::try_from(count).unwrap_or(usize::MAX).max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if stop() {
                    break;
                }
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= count {
                    break;
                }
                work(item);
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    ran.into_inner()
}

/// Seeds a run may abandon to the wall-clock limit before it stops starting new ones: each
/// keeps a thread busy until the process exits.
pub const ABANDONED_SEEDS_MAX: u64 = 4;

/// Runs seeds, each under a wall-clock limit. A seed over its limit is reported as a `hang`
/// and abandoned: a thread cannot be stopped from outside, so it runs on, on its own thread,
/// until the process exits (see [`ABANDONED_SEEDS_MAX`]).
pub struct SeedRunner {
    options: SeedOptions,
    time_limit: Option<Duration>,
    abandoned: AtomicU64,
}

impl SeedRunner {
    /// `time_limit` None runs seeds on the calling thread with no limit.
    pub fn new(options: SeedOptions, time_limit: Option<Duration>) -> Self {
        Self {
            options,
            time_limit,
            abandoned: AtomicU64::new(0),
        }
    }

    /// Seeds abandoned so far.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::SeqCst)
    }

    pub fn run(&self, scenario: &Scenario, seed: u64) -> SeedOutcome {
        let Some(limit) = self.time_limit else {
            return run_one_seed(scenario, seed, &self.options);
        };
        let (sender, receiver) = mpsc::channel();
        let (owned, options) = (scenario.clone(), self.options.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("seed {seed}"))
            .spawn(move || {
                // The receiver is gone only if the seed was abandoned; nobody wants it then.
                let _ = sender.send(run_one_seed(&owned, seed, &options));
            });
        if spawned.is_err() {
            // No thread to spare: run it here, without a limit, rather than not at all.
            return run_one_seed(scenario, seed, &self.options);
        }
        let failed = |kind, message| SeedOutcome {
            scenario: scenario.name.clone(),
            seed,
            failure: Some(Failure {
                kind,
                crash_index: None,
                message,
            }),
            ..SeedOutcome::default()
        };
        match receiver.recv_timeout(limit) {
            Ok(outcome) => outcome,
            Err(RecvTimeoutError::Timeout) => {
                self.abandoned.fetch_add(1, Ordering::SeqCst);
                failed(
                    FailureKind::Hang,
                    format!(
                        "the seed ran past the wall-clock limit of {} s (--seed-time-limit-seconds) \
                         and was abandoned",
                        limit.as_secs_f64()
                    ),
                )
            }
            Err(RecvTimeoutError::Disconnected) => failed(
                FailureKind::Panic,
                "the seed's thread ended without an outcome".to_string(),
            ),
        }
    }
}

/// Runs one seed of the concrete scenario for that seed. A panic that escapes the driver is
/// turned into a failed outcome, so one broken seed does not lose every other seed's result.
pub fn run_one_seed(scenario: &Scenario, seed: u64, options: &SeedOptions) -> SeedOutcome {
    let concrete = scenario.for_seed(seed);
    catch_unwind(AssertUnwindSafe(|| run_seed(&concrete, seed, options))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        SeedOutcome {
            scenario: scenario.name.clone(),
            seed,
            failure: Some(Failure {
                kind: FailureKind::Panic,
                crash_index: None,
                message: format!("the driver panicked: {message}"),
            }),
            ..SeedOutcome::default()
        }
    })
}

/// A progress bar over `total` seeds, drawn only for a person watching: on a terminal, outside
/// CI (where redraws would only clutter logs), and unless `quiet`.
pub fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    use std::io::IsTerminal;
    let visible = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let progress = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(
        "{msg:>20} [{elapsed_precise}] {wide_bar} {pos}/{len} seeds ({per_sec}, eta {eta})",
    )
    .expect("the progress template is valid");
    progress.set_style(style);
    progress
}
