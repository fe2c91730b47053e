//! A bounded pool of worker threads for independent seeds.
//!
//! Workers take the next item from a shared atomic counter, so a slow seed does not hold up a
//! fixed slice of work; results are put back in item order, so what the caller prints does not
//! depend on the number of jobs or on scheduling.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::driver::{run_seed, SeedOptions};
use crate::outcome::{Failure, FailureKind, SeedOutcome};
use crate::scenario::Scenario;

/// Runs `work(0..count)` on `jobs` threads and returns the results in item order.
pub fn map_in_parallel<T, F>(count: u64, jobs: usize, progress: &ProgressBar, work: F) -> Vec<T>
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
    results.into_iter().map(|(_, result)| result).collect()
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

/// A progress bar over `total` seeds, drawn only for a person watching: on a terminal and
/// outside CI, where redraws would only clutter logs.
pub fn progress_bar(total: u64) -> ProgressBar {
    use std::io::IsTerminal;
    let visible = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
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
