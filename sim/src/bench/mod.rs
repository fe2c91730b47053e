//! `crashpoint bench`'s report: the simulator against real-process crash testing of the same
//! engine, the engine against SQLite, and how recovery and checkpoint costs grow.
//!
//! Each part measures in its own file (`simulator`, `realcrash`, `comparison` over
//! `real_engine` and `sqlite`, `growth`); `stats` holds the arithmetic, `svg` the plots,
//! `machine` what the numbers were measured on, and `report` puts them into markdown with the
//! targets and by how much each is met or missed. Every part runs in one invocation, so the
//! ratios compare measurements taken side by side.

pub mod comparison;
pub mod growth;
pub mod machine;
pub mod real_engine;
pub mod realcrash;
pub mod report;
pub mod simulator;
pub mod sqlite;
pub mod stats;
pub mod svg;

use std::path::PathBuf;
use std::time::Duration;

use crashpoint::Strategy;

use crate::scenario::Scenario;

/// How much work each part does: `quick` for CI, `full` for the README's table.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub name: &'static str,
    pub simulator_seeds: u64,
    pub explore_states: u64,
    pub realcrash_duration: Duration,
    pub commits_per_client: u32,
    /// Redo lengths in commits of 8 writes.
    pub redo_commits: Vec<u64>,
    /// Keys updated, spread over the key space, before each timed checkpoint.
    pub updated_keys: Vec<u64>,
    /// Runs per measurement; the report shows their median.
    pub repetitions: usize,
}

impl Sizes {
    pub fn quick() -> Sizes {
        Sizes {
            name: "quick",
            simulator_seeds: 40,
            explore_states: 2_000,
            realcrash_duration: Duration::from_secs(15),
            commits_per_client: 100,
            redo_commits: vec![0, 250, 500, 1000],
            updated_keys: vec![1, 500, 1000, 2000],
            repetitions: 3,
        }
    }

    pub fn full() -> Sizes {
        Sizes {
            name: "full",
            simulator_seeds: 400,
            explore_states: 20_000,
            realcrash_duration: Duration::from_secs(90),
            commits_per_client: 600,
            redo_commits: vec![0, 500, 1000, 2000, 4000, 8000],
            updated_keys: vec![1, 500, 1000, 2000, 4000, 8000],
            repetitions: 5,
        }
    }
}

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sizes: Sizes,
    /// The scenario of the simulator and realcrash parts (`smoke`).
    pub scenario: Scenario,
    pub strategies: Vec<Strategy>,
    pub out: PathBuf,
    /// This binary, to start realcrash's children.
    pub binary: PathBuf,
    /// The real-filesystem runs' scratch directory (removed at the end).
    pub scratch: PathBuf,
}

/// Runs every part and writes the report and plots into `plan.out`.
pub fn run(plan: &Plan) -> anyhow::Result<report::Report> {
    let machine = machine::Machine::probe(&plan.scratch);
    eprintln!("bench ({}): {}", plan.sizes.name, machine.line());
    let sizes = &plan.sizes;
    let mut simulator = Vec::new();
    for &strategy in &plan.strategies {
        eprintln!("== simulator: {} {}", plan.scenario.name, strategy.name());
        let scenario = plan
            .scenario
            .with_strategy(strategy)
            .map_err(anyhow::Error::msg)?;
        simulator.push(simulator::measure(
            &scenario,
            sizes.simulator_seeds,
            sizes.repetitions,
            sizes.explore_states,
        )?);
    }
    let peak_memory_kib = simulator::memory_kib().map_or(0, |(_, peak)| peak);
    eprintln!(
        "== realcrash: {:?} over every strategy",
        sizes.realcrash_duration
    );
    let sessions = plan
        .strategies
        .iter()
        .map(|&strategy| {
            Ok(realcrash::SessionOptions {
                scenario: plan
                    .scenario
                    .with_strategy(strategy)
                    .map_err(anyhow::Error::msg)?,
                binary: plan.binary.clone(),
                seed: 0,
                kill_delay_max: Duration::from_millis(50),
                planted: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let realcrash = realcrash::run_sessions(&sessions, None, Some(sizes.realcrash_duration))?;
    eprintln!("== engine against SQLite");
    let comparison = comparison::measure(
        &plan.scratch,
        &plan.strategies,
        sizes.commits_per_client,
        sizes.repetitions,
    )?;
    let mut recovery = Vec::new();
    let mut checkpoint = Vec::new();
    for &strategy in &plan.strategies {
        eprintln!("== growth: {}", strategy.name());
        recovery.push(growth::recovery_series(
            &plan.scratch,
            strategy,
            &sizes.redo_commits,
            sizes.repetitions.min(3),
        )?);
        checkpoint.push(growth::checkpoint_series(
            &plan.scratch,
            strategy,
            &sizes.updated_keys,
            sizes.repetitions.min(3),
        )?);
    }
    let report = report::Report {
        sizes: sizes.clone(),
        machine,
        scenario: plan.scenario.name.clone(),
        simulator,
        peak_memory_kib,
        realcrash,
        comparison,
        recovery,
        checkpoint,
    };
    report.write(&plan.out)?;
    Ok(report)
}
