//! `crashpoint replay`: one seed, with logging, to investigate a failure a run reported.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use super::{check_canary, install_logging, resolve_scenarios, ReplayArguments};
use super::{EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::chrome_trace;
use crate::driver::{run_seed_full, SeedOptions, SeedRun};
use crate::report::SeedDetails;
use crate::scenario::Scenario;

pub fn replay(arguments: ReplayArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging(if arguments.verbose {
        "crashpoint=trace,crashpoint_sim=trace,madsim=error,warn"
    } else {
        "crashpoint=info,crashpoint_sim=info,madsim=error,warn"
    });
    let scenarios = resolve_scenarios(&arguments.scenario, arguments.common.strategy)?;
    // Created before the seed runs, as `run --json` is, so a bad path fails at once.
    if let Some(path) = &arguments.trace {
        File::create(path)
            .with_context(|| format!("cannot create trace file {}", path.display()))?;
    }
    let mut code = EXIT_SUCCESS;
    for scenario in scenarios {
        code = code.max(replay_one(&arguments, &scenario)?);
    }
    Ok(code)
}

fn replay_one(arguments: &ReplayArguments, scenario: &Scenario) -> anyhow::Result<i32> {
    // With several strategies the trace file holds the last one's run.
    let trace_file = match &arguments.trace {
        Some(path) => Some(
            File::create(path)
                .with_context(|| format!("cannot create trace file {}", path.display()))?,
        ),
        None => None,
    };
    if scenario.swarm {
        // A swarm seed runs a drawn configuration; show it, since the file does not say it.
        print_swarm_draw(&scenario.for_seed(arguments.seed));
    }
    let options = SeedOptions {
        record_trace: arguments.trace.is_some(),
        canary: arguments.common.canary.clone(),
        ..SeedOptions::default()
    };
    let (outcome, trace_written) = match (&arguments.trace, trace_file) {
        (Some(path), Some(file)) => {
            let run = run_seed_full(scenario, arguments.seed, &options);
            let events = write_trace(path, file, &run, scenario, arguments.seed)?;
            (run.outcome, Some((path, events)))
        }
        _ => (
            super::workers::run_one_seed(scenario, arguments.seed, &options),
            None,
        ),
    };
    print!(
        "{}",
        SeedDetails {
            outcome: &outcome,
            scenario_path: &scenario.path,
            canary: arguments.common.canary.as_deref(),
        }
    );
    if let Some((path, events)) = trace_written {
        println!(
            "trace written to {} ({events} events); open it in https://ui.perfetto.dev or \
             chrome://tracing",
            path.display()
        );
    }
    Ok(if outcome.failure.is_some() {
        EXIT_CHECK_FAILED
    } else {
        EXIT_SUCCESS
    })
}

/// Writes the run's Chrome trace to `file`, created at `path`; returns the number of events.
fn write_trace(
    path: &Path,
    file: File,
    run: &SeedRun,
    scenario: &Scenario,
    seed: u64,
) -> anyhow::Result<usize> {
    let context = || format!("writing the trace to {}", path.display());
    let mut out = BufWriter::new(file);
    let events = chrome_trace::write(run, scenario, seed, &mut out).with_context(context)?;
    out.flush().with_context(context)?;
    Ok(events)
}

fn print_swarm_draw(concrete: &Scenario) {
    let rates: Vec<String> = concrete
        .faults
        .rates()
        .iter()
        .filter(|(_, rate)| *rate > 0.0)
        .map(|(name, rate)| format!("{name}={rate:.5}"))
        .collect();
    println!(
        "swarm draw: sync_mode={} cache_pages={} crash mode={} faults: {}",
        concrete.engine.sync_mode,
        concrete.engine.cache_pages,
        concrete.crash.mode,
        if rates.is_empty() {
            "none".to_string()
        } else {
            rates.join(" ")
        },
    );
}
