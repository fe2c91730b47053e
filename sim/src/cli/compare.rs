//! `crashpoint compare`: the strategies side by side on the same seeds, as one table of
//! checkpoint measures (checks/s, checkpoints by trigger, blocking window, commit latency in
//! and out of checkpoints, write amplification, redo at recovery). It is `run --strategy all
//! --latency` without the summary table: the table is the point, the verdict and any failure
//! lines still follow it.

use super::StrategyChoice;
use super::{run, CommonArguments, CompareArguments, OutputArguments, RunArguments};

/// The scenario compared when none is named: the goal of issue 11 is stated on it.
const DEFAULT_SCENARIO: &str = "group-commit";

pub fn compare(arguments: CompareArguments) -> anyhow::Result<i32> {
    let scenarios = if arguments.scenarios.is_empty() {
        vec![DEFAULT_SCENARIO.to_string()]
    } else {
        arguments.scenarios
    };
    run::run(RunArguments {
        scenarios,
        seeds: Some(arguments.seeds),
        random: None,
        jobs: arguments.jobs,
        shard: None,
        shard_count: None,
        partition: None,
        json: arguments.json,
        junit: None,
        fail_fast: false,
        seed_time_limit_seconds: 300,
        latency: true,
        // Quiet leaves out the progress bar and the summary table, not the checkpoint table.
        output: OutputArguments {
            quiet: true,
            ..arguments.output
        },
        common: CommonArguments {
            canary: arguments.canary,
            strategy: Some(StrategyChoice::All),
        },
    })
}
