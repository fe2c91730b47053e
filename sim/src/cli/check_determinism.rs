//! `crashpoint check-determinism`: runs every seed twice and checks both runs agree on the I/O
//! trace digest, the final state digest and the failure kind.
//!
//! The two runs of a seed are separate work items, so they usually run on different threads;
//! a difference then also exposes state shared between seeds or threads, not only unseeded
//! randomness.

use super::seeds::SeedSelection;
use super::workers::{map_in_parallel, progress_bar, run_one_seed};
use super::{check_canary, install_logging, job_count, resolve_scenarios};
use super::{CheckDeterminismArguments, EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::driver::SeedOptions;
use crate::outcome::SeedOutcome;
use crate::report::replay_command;

pub fn check_determinism(arguments: CheckDeterminismArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging("off");
    let mut code = EXIT_SUCCESS;
    for scenario in resolve_scenarios(&arguments.scenario, arguments.common.strategy)? {
        code = code.max(check_one(&arguments, &scenario)?);
    }
    Ok(code)
}

fn check_one(
    arguments: &CheckDeterminismArguments,
    scenario: &crate::scenario::Scenario,
) -> anyhow::Result<i32> {
    let selection = SeedSelection::new(arguments.seeds, None);
    let options = SeedOptions {
        record_trace: false,
        canary: arguments.common.canary.clone(),
        ..SeedOptions::default()
    };
    let progress = progress_bar(selection.len() * 2, false);
    progress.set_message(scenario.name.clone());
    let runs = map_in_parallel(
        selection.len() * 2,
        job_count(arguments.jobs),
        &progress,
        &|| false,
        |item| run_one_seed(scenario, selection.seed(item / 2), &options),
    );
    progress.finish_and_clear();

    let mut mismatches = 0u64;
    for pair in runs.chunks_exact(2) {
        let differences = differences(&pair[0], &pair[1]);
        if !differences.is_empty() {
            mismatches += 1;
            println!(
                "MISMATCH {} ({}) seed {}: {}\n  replay: {}",
                scenario.name,
                scenario.engine.strategy,
                pair[0].seed,
                differences.join("; "),
                replay_command(
                    &scenario.path,
                    pair[0].seed,
                    scenario.replay_strategy(),
                    arguments.common.canary.as_deref()
                ),
            );
        }
    }
    println!(
        "check-determinism {} ({}) seeds {}: {} seeds run twice, {} mismatched",
        scenario.name,
        scenario.engine.strategy,
        arguments.seeds,
        selection.len(),
        mismatches
    );
    Ok(if mismatches > 0 {
        EXIT_CHECK_FAILED
    } else {
        EXIT_SUCCESS
    })
}

/// What differs between two runs of one seed, in words; empty when they agree.
fn differences(first: &SeedOutcome, second: &SeedOutcome) -> Vec<String> {
    let mut differences = Vec::new();
    if first.trace_digest != second.trace_digest {
        differences.push(format!(
            "trace_digest {:#018x} vs {:#018x}",
            first.trace_digest, second.trace_digest
        ));
    }
    if first.final_state_digest != second.final_state_digest {
        differences.push(format!(
            "final_state_digest {:#018x} vs {:#018x}",
            first.final_state_digest, second.final_state_digest
        ));
    }
    let kind = |outcome: &SeedOutcome| {
        outcome
            .failure
            .as_ref()
            .map_or("none", |failure| failure.kind.name())
    };
    if kind(first) != kind(second) {
        differences.push(format!("failure kind {} vs {}", kind(first), kind(second)));
    }
    differences
}
