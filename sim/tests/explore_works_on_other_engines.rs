//! `explore` on an engine no one here wrote: every disk call of a redb seed that changes what a
//! crash could leave is a crash point, each point's states are recovered by redb and judged by
//! its promise. A correct redb passes; redb whose `sync_data` does nothing (the canary subject,
//! `canary` feature) fails states of the same seed. Our engine through the seam passes too.

use std::path::PathBuf;

use crashpoint_sim::explore::{check_state, explore, Recording, StateVerdict};
use crashpoint_sim::scenario::Scenario;

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn scenario(name: &str) -> Scenario {
    Scenario::resolve(name, &scenarios_directory()).expect("scenario loads")
}

#[test]
fn redb_seeds_explore_without_failures() {
    // Proves explore records points at redb's disk calls and every state checked recovers to
    // a prefix of the commits holding every durable one.
    for name in ["redb-smoke", "redb-torn-writes"] {
        let recording = Recording::new(&scenario(name), 0, None).expect("seed records");
        assert!(recording.workload().failure.is_none(), "{name}");
        assert!(recording.points() > 10, "{name}: too few crash points");
        let exploration = explore(&recording, 5_000, 0);
        assert!(exploration.states_checked >= 5_000, "{name}");
        assert!(
            exploration.recoveries > 10,
            "{name}: every verdict was cached"
        );
        assert_eq!(
            exploration.failed_states,
            0,
            "{name}: {:?}",
            exploration.failures.first()
        );
    }
}

#[test]
fn a_disk_without_garbage_tears_into_old_and_new_sectors_only() {
    // Proves explore honours `crash.garbage = false` (redb's scenarios): no state it lists
    // holds a garbage sector, and the states are still torn ones.
    let recording = Recording::new(&scenario("redb-torn-writes"), 1, None).expect("records");
    let mut torn = 0;
    for point in 0..recording.points().min(40) {
        for state in 0..6 {
            let Ok(checked) = check_state(&recording, point, state, false) else {
                break;
            };
            assert!(
                !checked.state_description.contains("garbage"),
                "point {point} state {state}: {}",
                checked.state_description
            );
            torn += usize::from(checked.state_description.contains("torn"));
            assert!(
                !matches!(checked.verdict, StateVerdict::Failed(_)),
                "point {point} state {state}"
            );
        }
    }
    assert!(
        torn > 0,
        "no torn state among the first states of 40 points"
    );
}

#[test]
fn our_engine_explores_through_the_seam() {
    // Proves the seam's explore holds our engine as it holds redb, with no failure.
    let scenario = Scenario::resolve("crashpoint-seam", &scenarios_directory()).unwrap();
    let recording = Recording::new(&scenario, 0, None).expect("seed records");
    assert!(recording.points() > 0);
    let exploration = explore(&recording, 3_000, 0);
    assert!(exploration.recoveries > 0);
    assert_eq!(
        exploration.failed_states,
        0,
        "{:?}",
        exploration.failures.first()
    );
}

#[cfg(feature = "canary")]
#[test]
fn redb_without_sync_fails_explored_states() {
    // Proves explore's checks on a subject can fail: with redb's `sync_data` a no-op, states
    // of the seed whose workload `run` finds failing are failures here too, named by point and
    // state.
    let recording =
        Recording::new(&scenario("redb-torn-writes"), 0, Some("redb-skip-sync")).expect("records");
    let exploration = explore(&recording, 2_000, 0);
    assert!(exploration.failed_states > 0, "the canary subject passed");
    let first = exploration.failures.first().expect("a failure is kept");
    let again = check_state(&recording, first.point, first.state, false).expect("state exists");
    assert!(
        matches!(again.verdict, StateVerdict::Failed(_)),
        "the failing state passed when re-checked"
    );
}
