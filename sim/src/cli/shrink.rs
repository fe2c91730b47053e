//! `crashpoint shrink`: a failing seed, shrunk to a scenario plus schedule a reader can follow.

use anyhow::Context;

use super::{check_canary, install_logging, resolve_scenarios, ShrinkArguments};
use super::{EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::shrink::{self, ShrinkError};

pub fn shrink(arguments: ShrinkArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging("off");
    let scenarios = resolve_scenarios(&arguments.scenario, arguments.common.strategy)?;
    // Made before the search, which takes minutes, so a bad --out fails at once.
    std::fs::create_dir_all(&arguments.out).with_context(|| {
        format!(
            "cannot use --out {}: the shrunk case is written there",
            arguments.out.display()
        )
    })?;
    let mut code = EXIT_SUCCESS;
    for scenario in scenarios {
        code = code.max(shrink_one(&arguments, &scenario)?);
    }
    Ok(code)
}

fn shrink_one(
    arguments: &ShrinkArguments,
    scenario: &crate::scenario::Scenario,
) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let shrunk = match shrink::shrink(
        scenario,
        arguments.seed,
        arguments.common.canary.clone(),
        arguments.runs as usize,
    ) {
        Ok(shrunk) => shrunk,
        Err(error @ ShrinkError::Passes { .. }) => {
            println!("{error}");
            return Ok(EXIT_SUCCESS);
        }
        Err(error) => {
            println!("{error}");
            return Ok(EXIT_CHECK_FAILED);
        }
    };
    let canary = arguments.common.canary.as_deref();
    let path = shrink::write_case(scenario, arguments.seed, canary, &shrunk, &arguments.out)?;
    let (before, after) = (shrunk.before, shrunk.after);
    println!(
        "shrunk {} seed {} in {} replays ({:.1} s): {}: {}",
        scenario.name,
        arguments.seed,
        shrunk.runs,
        started.elapsed().as_secs_f64(),
        shrunk.failure.kind.name(),
        shrunk.failure.message
    );
    println!("                 before    after");
    println!("  crash phases {:>9} {:>8}", before.phases, after.phases);
    println!(
        "  transactions {:>9} {:>8}",
        before.transactions, after.transactions
    );
    println!("  writes       {:>9} {:>8}", before.writes, after.writes);
    println!("  reads        {:>9} {:>8}", before.reads, after.reads);
    println!("  faults       {:>9} {:>8}", before.faults, after.faults);
    println!(
        "  I/O ops      {:>9} {:>8}",
        shrunk.io_before, shrunk.io_after
    );
    println!("wrote {} and its schedule", path.display());
    println!(
        "  replay: {}",
        shrink::replay_command(&path, arguments.seed, canary)
    );
    Ok(EXIT_CHECK_FAILED)
}
