//! `explore` checks every crash state of a seed's checkpoint windows: on a correct engine none
//! fails, and with each planted bug some state fails within a few seeds and a bounded state
//! budget. The canary part needs the `canary` feature:
//! `cargo test --profile ci -p crashpoint-sim --features canary --test explore_finds_canaries
//! -- --nocapture` prints the seed and the count for each.

use std::path::PathBuf;

use crashpoint_sim::explore::{explore, Recording, CONTINUE_STATES_DEFAULT};
use crashpoint_sim::scenario::Scenario;

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn scenario(name: &str) -> Scenario {
    Scenario::resolve(name, &scenarios_directory()).expect("scenario loads")
}

#[test]
fn smoke_seed_0_explores_without_failures() {
    // Proves explore checks states of a real seed and a correct engine passes every one.
    let recording = Recording::new(&scenario("smoke"), 0, None).expect("seed records");
    assert!(recording.workload().failure.is_none());
    assert!(recording.points() > 0, "no crash points recorded");
    let exploration = explore(&recording, 20_000, CONTINUE_STATES_DEFAULT);
    assert!(exploration.states_checked > 0);
    assert!(exploration.distinct_states > 0);
    assert!(exploration.recoveries > 0);
    assert_eq!(
        exploration.failed_states,
        0,
        "failures on a correct engine: {:?}",
        exploration.failures.first()
    );
}

#[cfg(feature = "canary")]
mod canaries {
    use crashpoint::Canary;

    use super::*;

    /// Seeds tried per canary, and the state budget of each seed.
    const SEEDS_MAX: u64 = 40;
    const MAX_STATES: u64 = 2_000;

    /// Which shipped scenario explore hunts each planted bug in.
    fn scenario_for(canary: Canary) -> &'static str {
        match canary {
            Canary::SkipDataFsync => "every-checkpoint-step",
            Canary::HeaderBeforePages => "every-checkpoint-step",
            Canary::TrimLogBeforeHeader => "every-checkpoint-step",
            Canary::IgnorePendingBit => "every-checkpoint-step",
            Canary::ReuseCheckpointedBlock => "torn-writes",
            // Unchecked pages only matter once bits rot at rest.
            Canary::SkipChecksum => "bit-rot",
            Canary::FuzzyWithoutFullPageImages => "torn-writes",
            Canary::ControlFileBeforeCheckpointRecord => "every-checkpoint-step",
            Canary::PageBeforeImage => "every-checkpoint-step",
            Canary::RestoreAfterRollForward => "every-checkpoint-step",
            Canary::SkipSealedLogChecksum => "rot-at-rest",
            Canary::RetryLogFsync => "fsync-error",
            Canary::TruncatedRecordIsCorruption => "torn-writes",
            Canary::TrimLogBeforeHeaderSync => "every-checkpoint-step",
            Canary::AppendInDurableSector => "group-commit",
            Canary::PreferOlderHeader => "every-checkpoint-step",
        }
    }

    /// The scenario explore hunts `canary` in, with the strategy the planted bug lives in.
    fn hunting_scenario(canary: Canary) -> Scenario {
        scenario(scenario_for(canary))
            .with_strategy(canary.strategy())
            .expect("the scenario takes the canary's strategy")
    }

    /// The first seed whose exploration fails with `canary` planted: seed, failing states,
    /// states checked and the first failure.
    fn first_failing_seed(canary: Canary) -> Option<(u64, u64, u64, String)> {
        let scenario = hunting_scenario(canary);
        (0..SEEDS_MAX).find_map(|seed| {
            let recording =
                Recording::new(&scenario, seed, Some(canary.name())).expect("seed records");
            let exploration = explore(&recording, MAX_STATES, CONTINUE_STATES_DEFAULT);
            let first = exploration.failures.first()?;
            Some((
                seed,
                exploration.failed_states,
                exploration.states_checked,
                format!(
                    "point {} state {}: {}: {}",
                    first.point,
                    first.state,
                    first.failure.kind.name(),
                    first.failure.message
                ),
            ))
        })
    }

    #[test]
    fn explore_finds_every_canary() {
        // Proves each planted bug leaves some crash state that recovers wrong, found by
        // exploration alone (the workload run's own verdict is not counted).
        let mut missed = Vec::new();
        for canary in Canary::ALL {
            match first_failing_seed(canary) {
                Some((seed, failed, checked, first)) => println!(
                    "canary {:<37} {:<22} {:<12} seed {seed}: {failed} of {checked} states fail; {first}",
                    canary.name(),
                    scenario_for(canary),
                    canary.strategy().name(),
                ),
                None => missed.push(canary.name()),
            }
        }
        assert!(
            missed.is_empty(),
            "canaries explore missed in {SEEDS_MAX} seeds of {MAX_STATES} states: {missed:?}"
        );
    }

    #[test]
    fn the_same_seeds_explore_clean_without_a_canary() {
        // Proves the failures above come from the planted bugs, not from the scenarios.
        let mut hunts: Vec<Canary> = Canary::ALL.to_vec();
        hunts.sort_unstable_by_key(|&canary| (scenario_for(canary), canary.strategy()));
        hunts.dedup_by_key(|canary| (scenario_for(*canary), canary.strategy()));
        for canary in hunts {
            let name = scenario_for(canary);
            let scenario = hunting_scenario(canary);
            for seed in 0..SEEDS_MAX {
                let recording = Recording::new(&scenario, seed, None).expect("seed records");
                let exploration = explore(&recording, MAX_STATES, CONTINUE_STATES_DEFAULT);
                assert_eq!(
                    exploration.failed_states,
                    0,
                    "{name} ({}) seed {seed} failed without a canary: {:?}",
                    canary.strategy(),
                    exploration.failures.first()
                );
            }
        }
    }
}

#[cfg(feature = "canary")]
mod past_one_recovery {
    use crashpoint::Canary;

    use super::*;

    #[test]
    fn continuing_past_a_recovery_finds_what_one_recovery_misses() {
        // Proves explore's continuation is needed: a recovery that leaves new records to be
        // appended inside a sector holding durable ones recovers every first crash correctly;
        // only going on (durable commits, then a second crash that tears the append) loses
        // what the first recovery kept.
        let canary = Canary::AppendInDurableSector;
        let scenario = scenario("group-commit")
            .with_strategy(canary.strategy())
            .expect("the scenario takes the canary's strategy");
        let found = (0..20).find_map(|seed| {
            let recording =
                Recording::new(&scenario, seed, Some(canary.name())).expect("seed records");
            let exploration = explore(&recording, 2_000, CONTINUE_STATES_DEFAULT);
            let first = exploration.failures.first()?;
            Some((seed, recording, first.state_description.clone()))
        });
        let Some((seed, recording, state)) = found else {
            panic!(
                "explore with continuation missed {} in 20 seeds",
                canary.name()
            );
        };
        assert!(state.contains("then continued"), "seed {seed}: {state}");
        let without = explore(&recording, 2_000, 0);
        assert_eq!(
            without.failed_states,
            0,
            "seed {seed} fails without continuing: {:?}",
            without.failures.first()
        );
    }
}
