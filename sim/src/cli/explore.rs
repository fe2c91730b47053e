//! `crashpoint explore`: every crash state of one seed's checkpoint windows, or, with
//! `--point P --state K`, exactly one of them again with logging.

use std::time::Instant;

use super::{check_canary, install_logging, resolve_scenarios, ExploreArguments};
use super::{EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::explore::{
    check_state, explore as explore_states, ExplorationReport, Recording, SingleStateReport,
    StateVerdict,
};

pub fn explore(arguments: ExploreArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    let mut code = EXIT_SUCCESS;
    for scenario in resolve_scenarios(&arguments.scenario, arguments.common.strategy)? {
        code = code.max(explore_one(&arguments, &scenario)?);
    }
    Ok(code)
}

fn explore_one(
    arguments: &ExploreArguments,
    scenario: &crate::scenario::Scenario,
) -> anyhow::Result<i32> {
    let canary = arguments.common.canary.as_deref();
    if let (Some(point), Some(state)) = (arguments.point, arguments.state) {
        // The workload run is the same as in the sweep; only the re-checked state logs.
        let recording = Recording::new(scenario, arguments.seed, canary)?;
        let checked = tracing::subscriber::with_default(state_logger(), || {
            check_state(&recording, point, state, arguments.continue_states > 0)
        })?;
        print!(
            "{}",
            SingleStateReport {
                recording: &recording,
                point,
                state,
                checked: &checked,
            }
        );
        return Ok(match checked.verdict {
            StateVerdict::Failed(_) => EXIT_CHECK_FAILED,
            _ => EXIT_SUCCESS,
        });
    }
    install_logging("off");
    let started = Instant::now();
    let recording = Recording::new(scenario, arguments.seed, canary)?;
    let workload_elapsed = started.elapsed();
    let started = Instant::now();
    let exploration = explore_states(&recording, arguments.max_states, arguments.continue_states);
    let explore_elapsed = started.elapsed();
    print!(
        "{}",
        ExplorationReport {
            recording: &recording,
            exploration: &exploration,
            workload_elapsed,
            explore_elapsed,
        }
    );
    let failed = exploration.failed_states > 0 || recording.workload().failure.is_some();
    Ok(if failed {
        EXIT_CHECK_FAILED
    } else {
        EXIT_SUCCESS
    })
}

/// A log subscriber for the re-checked state alone, to stderr: RUST_LOG when set, else info.
fn state_logger() -> impl tracing::Subscriber + Send + Sync {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("crashpoint=info,crashpoint_sim=info,warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .finish()
}
