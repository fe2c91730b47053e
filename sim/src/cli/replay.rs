//! `crashpoint replay`: one seed, with logging, to investigate a failure a run reported.

use super::{check_canary, install_logging, resolve_scenario, ReplayArguments};
use super::{EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::driver::SeedOptions;
use crate::report::SeedDetails;
use crate::scenario::Scenario;

pub fn replay(arguments: ReplayArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging(if arguments.verbose {
        "crashpoint=trace,crashpoint_sim=trace,warn"
    } else {
        "crashpoint=info,crashpoint_sim=info,warn"
    });
    let scenario = resolve_scenario(&arguments.scenario)?;
    if arguments.trace.is_some() {
        eprintln!("trace output not yet available");
    }
    if scenario.swarm {
        // A swarm seed runs a drawn configuration; show it, since the file does not say it.
        print_swarm_draw(&scenario.for_seed(arguments.seed));
    }
    let options = SeedOptions {
        record_trace: arguments.trace.is_some(),
        canary: arguments.common.canary.clone(),
        ..SeedOptions::default()
    };
    let outcome = super::workers::run_one_seed(&scenario, arguments.seed, &options);
    print!(
        "{}",
        SeedDetails {
            outcome: &outcome,
            scenario_path: &scenario.path,
            canary: arguments.common.canary.as_deref(),
        }
    );
    Ok(if outcome.failure.is_some() {
        EXIT_CHECK_FAILED
    } else {
        EXIT_SUCCESS
    })
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
