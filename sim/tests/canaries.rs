//! Every planted bug is caught within 200 seeds of its scenario: proof that the harness can
//! fail. Needs the `canary` feature: `cargo test --release -p crashpoint-sim --features canary
//! --test canaries -- --nocapture` prints how many seeds each took.
#![cfg(feature = "canary")]

use std::path::PathBuf;

use crashpoint::Canary;
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::scenario::Scenario;

const SEEDS_MAX: u64 = 200;

/// Which shipped scenario hunts each planted bug.
fn scenario_for(canary: Canary) -> Option<&'static str> {
    Some(match canary {
        Canary::SkipDataFsync => "every-checkpoint-step",
        Canary::HeaderBeforePages => "every-checkpoint-step",
        Canary::TrimLogBeforeHeader => "every-checkpoint-step",
        Canary::IgnorePendingBit => "no-sync",
        Canary::ReuseCheckpointedBlock => "torn-writes",
        Canary::SkipChecksum => "bit-rot",
        Canary::FuzzyWithoutFullPageImages => "torn-writes",
        Canary::ControlFileBeforeCheckpointRecord => "every-checkpoint-step",
        Canary::PageBeforeImage => "lost-writes",
        Canary::RestoreAfterRollForward => "smoke",
        Canary::SkipSealedLogChecksum => "rot-at-rest",
        Canary::RetryLogFsync => "fsync-error",
        Canary::TruncatedRecordIsCorruption => "torn-writes",
        Canary::TrimLogBeforeHeaderSync => "every-checkpoint-step",
        Canary::PreferOlderHeader => "every-checkpoint-step",
        Canary::CloseWithoutFinalCheckpoint => "smoke",
        // Found by explore's continuation past a recovery only: a run's crashes almost never
        // land on the first append after a recovery (explore_finds_canaries.rs).
        Canary::AppendInDurableSector => return None,
    })
}

/// The scenario that hunts `canary`, run with the strategy the planted bug lives in.
fn hunting_scenario(canary: Canary) -> Scenario {
    let name = scenario_for(canary).expect("a run hunts this canary");
    Scenario::resolve(name, &scenarios_directory())
        .expect("scenario loads")
        .with_strategy(canary.strategy())
        .expect("the scenario takes the canary's strategy")
}

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// The first seed that fails with `canary` planted, if any within SEEDS_MAX.
fn first_failing_seed(canary: Canary) -> Option<(u64, String)> {
    let scenario = hunting_scenario(canary);
    let options = SeedOptions {
        canary: Some(canary.name().to_string()),
        ..SeedOptions::default()
    };
    (0..SEEDS_MAX).find_map(|seed| {
        let outcome = run_seed(&scenario.for_seed(seed), seed, &options);
        outcome.failure.map(|failure| {
            (
                seed,
                format!("{}: {}", failure.kind.name(), failure.message),
            )
        })
    })
}

#[test]
fn every_canary_is_caught_within_200_seeds() {
    // Proves each planted bug makes some seed fail, and reports how many seeds that took.
    let mut missed = Vec::new();
    for canary in Canary::ALL {
        let Some(name) = scenario_for(canary) else {
            continue;
        };
        match first_failing_seed(canary) {
            Some((seed, failure)) => println!(
                "canary {:<37} caught by {:<22} {:<12} after {:>3} seeds: {failure}",
                canary.name(),
                name,
                canary.strategy().name(),
                seed + 1
            ),
            None => missed.push(canary.name()),
        }
    }
    assert!(
        missed.is_empty(),
        "canaries never caught in {SEEDS_MAX} seeds: {missed:?}"
    );
}

#[test]
fn the_same_seeds_pass_without_a_canary() {
    // Proves the failures above come from the planted bugs, not from the scenarios.
    let mut hunts: Vec<(&str, crashpoint::Strategy)> = Canary::ALL
        .iter()
        .filter_map(|&canary| Some((scenario_for(canary)?, canary.strategy())))
        .collect();
    hunts.sort_unstable();
    hunts.dedup();
    for (name, strategy) in hunts {
        let scenario = Scenario::resolve(name, &scenarios_directory())
            .expect("scenario loads")
            .with_strategy(strategy)
            .expect("the scenario takes the strategy");
        for seed in 0..50 {
            let outcome = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
            assert!(
                outcome.failure.is_none(),
                "{name} ({strategy}) seed {seed} failed without a canary: {:?}",
                outcome.failure
            );
        }
    }
}

#[test]
fn a_close_that_skips_its_final_checkpoint_is_caught_as_replay_after_a_clean_close() {
    // Proves the promise of a clean close (the next open replays no commit) is checked: with
    // the final checkpoint skipped, some seed's reopen replays commits and fails as
    // `replay-after-clean-close`, on every strategy.
    for strategy in crashpoint::Strategy::ALL {
        let scenario = Scenario::resolve("smoke", &scenarios_directory())
            .expect("scenario loads")
            .with_strategy(strategy)
            .expect("smoke takes every strategy");
        let options = SeedOptions {
            canary: Some(Canary::CloseWithoutFinalCheckpoint.name().to_string()),
            ..SeedOptions::default()
        };
        let failure = (0..20)
            .find_map(|seed| run_seed(&scenario.for_seed(seed), seed, &options).failure)
            .unwrap_or_else(|| panic!("{strategy}: no seed of 20 caught the skipped checkpoint"));
        assert_eq!(
            failure.kind,
            crashpoint_sim::outcome::FailureKind::ReplayAfterCleanClose,
            "{strategy}: {}",
            failure.message
        );
    }
}

/// The first of SEEDS_MAX seeds of `scenario` that fails with `canary` planted.
fn first_failing_seed_of(scenario: &Scenario, canary: Canary) -> Option<u64> {
    let options = SeedOptions {
        canary: Some(canary.name().to_string()),
        ..SeedOptions::default()
    };
    (0..SEEDS_MAX).find(|&seed| {
        run_seed(&scenario.for_seed(seed), seed, &options)
            .failure
            .is_some()
    })
}

#[test]
fn step_crashes_between_two_steps_catch_what_crashes_on_the_steps_miss() {
    // Proves the step mode's crashes at the I/O calls after a step are needed: a log trim moved
    // between the header's write and its fsync is never seen from a step marker (before it the
    // log is whole, after it the header is durable), in any of the 200 seeds.
    let canary = Canary::TrimLogBeforeHeaderSync;
    let mut on_steps_only = hunting_scenario(canary);
    on_steps_only.crash.step_io_max = 0;
    assert_eq!(first_failing_seed_of(&on_steps_only, canary), None);
    let found = first_failing_seed_of(&hunting_scenario(canary), canary);
    assert!(found.is_some(), "not caught between steps either");
}

/// The scenarios that hunt the redb subject's planted bugs: the plain path, and crashes inside
/// commits.
const REDB_HUNTS: [&str; 2] = ["redb-smoke", "redb-torn-writes"];

#[test]
fn redb_whose_sync_data_does_nothing_is_caught() {
    // Proves the subject oracle can fail on an engine no one here wrote: redb over a backend
    // whose sync_data returns Ok without syncing loses acknowledged commits or its database,
    // and the same seeds pass with the honest backend.
    use crashpoint_sim::subjects::redb::RedbCanary;
    for name in REDB_HUNTS {
        let scenario = Scenario::resolve(name, &scenarios_directory()).expect("scenario loads");
        let planted = SeedOptions {
            canary: Some(RedbCanary::SkipSync.name().to_string()),
            ..SeedOptions::default()
        };
        let caught = (0..SEEDS_MAX).find_map(|seed| {
            run_seed(&scenario.for_seed(seed), seed, &planted)
                .failure
                .map(|failure| (seed, failure))
        });
        let Some((seed, failure)) = caught else {
            panic!("redb-skip-sync never caught by {name} in {SEEDS_MAX} seeds");
        };
        println!(
            "canary redb-skip-sync caught by {name} after {} seeds: {}: {}",
            seed + 1,
            failure.kind.name(),
            failure.message
        );
        for seed in 0..=seed {
            let honest = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
            assert!(
                honest.failure.is_none(),
                "{name} seed {seed} failed without the canary: {:?}",
                honest.failure
            );
        }
    }
}
