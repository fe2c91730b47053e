//! The simulator's own throughput: crash-recover-check cycles per second of `run`, crash
//! states per second of `explore`, peak memory, and the floor: the bare reference model
//! replaying the same commits, so the harness's overhead shows as a ratio.

use std::time::{Duration, Instant};

use crate::driver::{run_seed, run_seed_full, SeedOptions};
use crate::explore::{explore, Recording};
use crate::model::{apply, State};
use crate::scenario::Scenario;

#[derive(Clone, Debug, Default)]
pub struct SimulatorFigures {
    pub strategy: String,
    pub seeds: u64,
    /// Crash states recovered and checked by `run`.
    pub checks: u64,
    pub failed_seeds: u64,
    /// Medians over the repetitions.
    pub checks_per_second: f64,
    pub explore_states: u64,
    pub explore_states_per_second: f64,
    /// The reference model alone: seconds per check of replaying a crash phase's commits into
    /// a map and comparing it with a copy.
    pub floor_checks_per_second: f64,
}

/// Runs `seeds` seeds of `scenario` `repetitions` times on this thread; `explore_seed` is the
/// seed explored, capped at `explore_states` states.
pub fn measure(
    scenario: &Scenario,
    seeds: u64,
    repetitions: usize,
    explore_states: u64,
) -> anyhow::Result<SimulatorFigures> {
    let mut rates = Vec::new();
    let mut figures = SimulatorFigures {
        strategy: scenario.engine.strategy.name().to_string(),
        seeds,
        ..SimulatorFigures::default()
    };
    for _ in 0..repetitions {
        let started = Instant::now();
        let (mut checks, mut failed) = (0, 0);
        for seed in 0..seeds {
            let outcome = run_seed(scenario, seed, &SeedOptions::default());
            checks += outcome.states_checked;
            failed += u64::from(outcome.failure.is_some());
        }
        rates.push(checks as f64 / started.elapsed().as_secs_f64().max(1e-9));
        figures.checks = checks;
        figures.failed_seeds = failed;
    }
    figures.checks_per_second = super::stats::median(&rates);
    let mut explore_rates = Vec::new();
    for _ in 0..repetitions {
        let recording = Recording::new(scenario, 1, None).map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        // No continuations: states per second of the crash states alone, as realcrash checks.
        let exploration = explore(&recording, explore_states, 0);
        explore_rates.push(exploration.states_checked as f64 / started.elapsed().as_secs_f64());
        figures.explore_states = exploration.states_checked;
    }
    figures.explore_states_per_second = super::stats::median(&explore_rates);
    figures.floor_checks_per_second = floor(scenario, seeds.min(200), repetitions)?;
    Ok(figures)
}

/// The floor: the histories the seeds' crash phases ended with (recorded in an untimed run),
/// each replayed into a bare map and compared with a copy, as the cheapest possible check.
fn floor(scenario: &Scenario, seeds: u64, repetitions: usize) -> anyhow::Result<f64> {
    let options = SeedOptions {
        record_crash_points: true,
        ..SeedOptions::default()
    };
    let histories: Vec<Vec<Vec<crashpoint::Write>>> = (0..seeds)
        .flat_map(|seed| run_seed_full(scenario, seed, &options).phase_models)
        .map(|model| {
            model
                .commits
                .into_iter()
                .map(|(_, writes)| writes)
                .collect()
        })
        .collect();
    if histories.is_empty() {
        return Ok(0.0);
    }
    let mut rates = Vec::new();
    for _ in 0..repetitions {
        // Enough passes for a measurable time on a fast machine.
        let mut passes = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(200) {
            for history in &histories {
                let mut state = State::new();
                for writes in history {
                    apply(&mut state, writes);
                }
                let copy = state.clone();
                assert!(std::hint::black_box(&copy) == &state);
            }
            passes += 1;
        }
        let checks = passes * histories.len() as u64;
        rates.push(checks as f64 / started.elapsed().as_secs_f64());
    }
    Ok(super::stats::median(&rates))
}

/// Resident and peak resident memory of this process, in KiB (Linux; None elsewhere).
pub fn memory_kib() -> Option<(u64, u64)> {
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
