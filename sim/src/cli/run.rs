//! `crashpoint run`: many seeds of one or more scenarios, a summary table, one replay line per
//! failure and, on request, a JSON report.
//!
//! Scenarios run one after another, each across every worker, so the wall time measured for a
//! scenario (and so its checks per second) is its own.

use std::time::Instant;

use anyhow::Context;

use super::seeds::SeedSelection;
use super::workers::{map_in_parallel, progress_bar, run_one_seed};
use super::{check_canary, install_logging, job_count, resolve_scenario, RunArguments};
use super::{with_strategies, StrategyChoice};
use super::{EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::driver::SeedOptions;
use crate::outcome::SeedOutcome;
use crate::report::{failure_lines, JsonReport, ScenarioSummary, SummaryTable};
use crate::scenario::{default_directory, Scenario};

pub fn run(arguments: RunArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging("off");
    // The default sweep covers every strategy on every default scenario; named scenarios run
    // with their own strategy unless --strategy says otherwise.
    let scenarios = if arguments.scenarios.is_empty() {
        let directory = default_directory();
        let scenarios = Scenario::default_set(&directory)?;
        if scenarios.is_empty() {
            anyhow::bail!("no default scenarios in {}", directory.display());
        }
        let choice = arguments.common.strategy.or(Some(StrategyChoice::All));
        with_strategies(scenarios, choice)?
    } else {
        let scenarios = arguments
            .scenarios
            .iter()
            .map(|name| resolve_scenario(name))
            .collect::<Result<_, _>>()?;
        with_strategies(scenarios, arguments.common.strategy)?
    };
    // Created before any seed runs, so a bad path fails in a second rather than after the run.
    let json_file = match &arguments.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create JSON report {}", path.display()))?,
        ),
        None => None,
    };
    let selection = SeedSelection::new(arguments.seeds, arguments.shard);
    if selection.is_empty() {
        // Only a shard can empty a (non-empty) range; running nothing would look like a pass.
        let shard = arguments
            .shard
            .map(|shard| shard.to_string())
            .unwrap_or_default();
        anyhow::bail!("shard {shard} selects no seeds from {}", arguments.seeds);
    }
    let jobs = job_count(arguments.jobs);
    let options = SeedOptions {
        record_trace: false,
        canary: arguments.common.canary.clone(),
        ..SeedOptions::default()
    };

    let progress = progress_bar(selection.len() * scenarios.len() as u64);
    let mut summaries = Vec::with_capacity(scenarios.len());
    let mut outcomes: Vec<SeedOutcome> = Vec::new();
    for scenario in &scenarios {
        progress.set_message(format!("{} {}", scenario.name, scenario.engine.strategy));
        let started = Instant::now();
        let scenario_outcomes = map_in_parallel(selection.len(), jobs, &progress, |position| {
            run_one_seed(scenario, selection.seed(position), &options)
        });
        summaries.push(ScenarioSummary::from_outcomes(
            scenario,
            &scenario_outcomes,
            started.elapsed(),
        ));
        outcomes.extend(scenario_outcomes);
    }
    progress.finish_and_clear();

    print!(
        "{}",
        SummaryTable {
            summaries: &summaries
        }
    );
    let mut failed = 0u64;
    for (outcome, scenario) in outcomes
        .iter()
        .zip(scenario_of_each(&scenarios, &selection))
    {
        if let Some(failure) = &outcome.failure {
            failed += 1;
            println!(
                "{}",
                failure_lines(
                    outcome,
                    failure,
                    &scenario.path,
                    arguments.common.canary.as_deref()
                )
            );
        }
    }
    if let (Some(path), Some(file)) = (&arguments.json, json_file) {
        JsonReport::new(&summaries, &outcomes)
            .write(std::io::BufWriter::new(file))
            .with_context(|| format!("cannot write JSON report {}", path.display()))?;
    }
    let total = outcomes.len();
    if failed > 0 {
        println!("{failed} of {total} seeds failed");
        Ok(EXIT_CHECK_FAILED)
    } else {
        println!("all {total} seeds passed");
        Ok(EXIT_SUCCESS)
    }
}

/// The scenario each outcome belongs to, in outcome order (every scenario ran the same seeds).
fn scenario_of_each<'a>(
    scenarios: &'a [Scenario],
    selection: &SeedSelection,
) -> impl Iterator<Item = &'a Scenario> {
    let per_scenario = selection.len();
    scenarios
        .iter()
        .flat_map(move |scenario| (0..per_scenario).map(move |_| scenario))
}
