//! `crashpoint bench`: crash-recover-check cycles per second on one thread, and resident
//! memory as the seeds go by (it should stay flat: nothing accumulates across seeds).

use std::time::Instant;

use super::{install_logging, resolve_scenarios, BenchArguments, EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::driver::{run_seed, SeedOptions};

/// Resident and peak resident memory of this process, in KiB (Linux; None elsewhere).
fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| {
            line.strip_prefix(name)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

pub fn bench(arguments: BenchArguments) -> anyhow::Result<i32> {
    install_logging("off");
    let mut code = EXIT_SUCCESS;
    for scenario in resolve_scenarios(&arguments.scenario, arguments.strategy)? {
        code = code.max(bench_one(&arguments, &scenario));
    }
    Ok(code)
}

fn bench_one(arguments: &BenchArguments, scenario: &crate::scenario::Scenario) -> i32 {
    let range = arguments.seeds;
    let seeds = range.count();
    println!(
        "bench {} ({}) on one thread, {seeds} seeds ({range})",
        scenario.name, scenario.engine.strategy
    );
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10}",
        "seeds", "states", "checks/s", "rss KiB", "peak KiB"
    );
    let started = Instant::now();
    let mut states = 0u64;
    let mut failed = 0u64;
    // A line at each quarter of the seeds (every seed when there are fewer than four).
    let quarter = (seeds / 4).max(1);
    for done in 1..=seeds {
        let seed = range.start + (done - 1);
        let outcome = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
        states += outcome.states_checked;
        failed += u64::from(outcome.failure.is_some());
        if done % quarter == 0 || done == seeds {
            let rate = states as f64 / started.elapsed().as_secs_f64();
            let (rss, peak) = memory_kib().unwrap_or((0, 0));
            println!(
                "{:>8} {:>10} {:>12.0} {:>10} {:>10}",
                done, states, rate, rss, peak
            );
        }
    }
    if failed > 0 {
        println!("{failed} seeds failed: run them with `run` to see why");
        return EXIT_CHECK_FAILED;
    }
    EXIT_SUCCESS
}
