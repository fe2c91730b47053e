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
fn scenario_for(canary: Canary) -> &'static str {
    match canary {
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
    }
}

/// The scenario that hunts `canary`, run with the strategy the planted bug lives in.
fn hunting_scenario(canary: Canary) -> Scenario {
    Scenario::resolve(scenario_for(canary), &scenarios_directory())
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
        match first_failing_seed(canary) {
            Some((seed, failure)) => println!(
                "canary {:<37} caught by {:<22} {:<12} after {:>3} seeds: {failure}",
                canary.name(),
                scenario_for(canary),
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
        .map(|&canary| (scenario_for(canary), canary.strategy()))
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
