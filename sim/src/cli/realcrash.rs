//! `crashpoint realcrash`: real-process crash testing of the engine (see `bench::realcrash`),
//! and its hidden child command `realcrash-child`.

use std::time::Duration;

use super::{resolve_scenario, resolve_scenarios, RealcrashArguments, RealcrashChildArguments};
use super::{StrategyChoice, EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::bench::realcrash::{run_child, run_sessions, ChildPlan, Hold, Planted, SessionOptions};

/// How long `realcrash` runs when neither --duration nor --iterations says.
const DURATION_DEFAULT: Duration = Duration::from_secs(60);

/// A harness canary by name; only a build with the `canary` feature plants one.
fn planted(name: Option<&str>) -> anyhow::Result<Option<Planted>> {
    let Some(name) = name else { return Ok(None) };
    if !cfg!(feature = "canary") {
        anyhow::bail!(
            "--canary {name} needs a build with the canary feature \
             (cargo run --release -p crashpoint-sim --features canary -- realcrash ...)"
        );
    }
    let known: Vec<&str> = Planted::ALL.iter().map(|planted| planted.name()).collect();
    Planted::from_name(name).map(Some).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown realcrash canary `{name}`; known: {}",
            known.join(", ")
        )
    })
}

pub fn realcrash(arguments: RealcrashArguments) -> anyhow::Result<i32> {
    let planted = planted(arguments.canary.as_deref())?;
    let strategy = arguments.strategy.unwrap_or(StrategyChoice::All);
    let binary = std::env::current_exe()?;
    let sessions: Vec<SessionOptions> = resolve_scenarios(&arguments.scenario, Some(strategy))?
        .into_iter()
        .map(|scenario| SessionOptions {
            scenario,
            binary: binary.clone(),
            seed: arguments.seed,
            kill_delay_max: Duration::from_millis(arguments.kill_delay_max_ms),
            planted,
        })
        .collect();
    let duration = match (arguments.iterations, &arguments.duration) {
        (Some(_), None) => None,
        (_, Some(duration)) => Some(duration.duration),
        (None, None) => Some(DURATION_DEFAULT),
    };
    println!(
        "realcrash {}: kill, recover and check, {} (seed {})",
        arguments.scenario,
        match (arguments.iterations, duration) {
            (Some(iterations), _) => format!("{iterations} kills per strategy"),
            (None, Some(duration)) => format!("for {duration:?}"),
            (None, None) => unreachable!("a duration is chosen when iterations are not"),
        },
        arguments.seed
    );
    let figures = run_sessions(&sessions, arguments.iterations, duration)?;
    println!(
        "{:<14} {:>8} {:>18} {:>13} {:>10}",
        "strategy", "kills", "inside checkpoint", "acknowledged", "checks/s"
    );
    let mut code = EXIT_SUCCESS;
    for session in &figures {
        println!(
            "{:<14} {:>8} {:>18} {:>13} {:>10.1}",
            session.strategy,
            session.checks,
            session.kills_inside_checkpoint,
            session.acknowledged,
            session.checks_per_second()
        );
        if let Some(failure) = &session.failure {
            println!("FAIL {failure}");
            println!(
                "reproduce (kill timing is real time, so it may take a few runs): crashpoint realcrash --scenario {} --strategy {} --seed {}{}",
                arguments.scenario,
                session.strategy,
                arguments.seed,
                arguments
                    .canary
                    .as_deref()
                    .map_or(String::new(), |name| format!(" --canary {name}"))
            );
            code = EXIT_CHECK_FAILED;
        }
    }
    if code == EXIT_SUCCESS {
        println!("every acknowledged commit survived every kill, as a prefix of the log order");
    }
    Ok(code)
}

pub fn realcrash_child(arguments: RealcrashChildArguments) -> anyhow::Result<i32> {
    let strategy = crashpoint::Strategy::from_name(&arguments.strategy)
        .ok_or_else(|| anyhow::anyhow!("unknown strategy {}", arguments.strategy))?;
    let scenario = resolve_scenario(&arguments.scenario)?
        .with_strategy(strategy)
        .map_err(anyhow::Error::msg)?;
    let plan = ChildPlan {
        directory: arguments.dir,
        scenario,
        seed: arguments.seed,
        hold: arguments.hold_at_step.map(|step| Hold {
            step,
            occurrence: arguments.hold_at_occurrence,
        }),
        planted: planted(arguments.planted.as_deref())?,
    };
    run_child(&plan)?;
    Ok(EXIT_SUCCESS)
}
