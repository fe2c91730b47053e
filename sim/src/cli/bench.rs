//! `crashpoint bench`: the report (`--out DIR`, `--quick`) of the simulator against real-process
//! crash testing and the engine against SQLite, with plots (see `crate::bench`); or, given
//! `--seeds` (or `--scenario` alone), the original measure: crash-recover-check cycles per
//! second on one thread, and resident memory as the seeds go by (it should stay flat: nothing
//! accumulates across seeds).

use std::time::Instant;

use std::path::PathBuf;

use super::{install_logging, resolve_scenario, resolve_scenarios, BenchArguments};
use super::{StrategyChoice, EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::driver::{run_seed, SeedOptions};

use crate::bench::simulator::memory_kib;
use crate::cli::SeedRange;

/// The seeds of the original measure when only `--scenario` is given.
const SEEDS_DEFAULT: &str = "0..4000";

pub fn bench(arguments: BenchArguments) -> anyhow::Result<i32> {
    install_logging("off");
    let seeds_only = arguments.seeds.is_some()
        || (arguments.scenario.is_some() && arguments.out.is_none() && !arguments.quick);
    if !seeds_only {
        return report(&arguments);
    }
    let range = match arguments.seeds {
        Some(range) => range,
        None => SEEDS_DEFAULT.parse().map_err(anyhow::Error::msg)?,
    };
    let scenario = arguments.scenario.as_deref().unwrap_or("smoke");
    let mut code = EXIT_SUCCESS;
    for scenario in resolve_scenarios(scenario, arguments.strategy)? {
        code = code.max(bench_one(range, &scenario));
    }
    Ok(code)
}

/// The full report, or `--quick`'s reduced one: every part, then the ratios on the terminal.
fn report(arguments: &BenchArguments) -> anyhow::Result<i32> {
    let scenario = resolve_scenario(arguments.scenario.as_deref().unwrap_or("smoke"))?;
    let strategies = match arguments.strategy.unwrap_or(StrategyChoice::All) {
        StrategyChoice::One(strategy) => vec![strategy],
        StrategyChoice::All => crashpoint::Strategy::ALL.to_vec(),
    };
    let scratch = tempfile::Builder::new()
        .prefix("crashpoint-bench-")
        .tempdir()?;
    let out = arguments
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench-report"));
    let plan = crate::bench::Plan {
        sizes: if arguments.quick {
            crate::bench::Sizes::quick()
        } else {
            crate::bench::Sizes::full()
        },
        scenario,
        strategies,
        out: out.clone(),
        binary: std::env::current_exe()?,
        scratch: scratch.path().to_path_buf(),
    };
    let report = crate::bench::run(&plan)?;
    print!("{}", report.summary());
    println!("report: {}", out.join("report.md").display());
    let failed = report
        .realcrash
        .iter()
        .any(|session| session.failure.is_some())
        || report
            .simulator
            .iter()
            .any(|figures| figures.failed_seeds > 0);
    Ok(if failed {
        EXIT_CHECK_FAILED
    } else {
        EXIT_SUCCESS
    })
}

fn bench_one(range: SeedRange, scenario: &crate::scenario::Scenario) -> i32 {
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
