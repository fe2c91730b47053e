//! A run recorded as a schedule replays call for call: the schedule is a faithful, explicit
//! form of the seed, which is what makes shrinking it meaningful.

use std::path::PathBuf;
use std::sync::Arc;

use crashpoint_sim::driver::{run_seed_full, SeedOptions};
use crashpoint_sim::scenario::Scenario;

fn scenario(name: &str) -> Scenario {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::resolve(name, &directory).expect("scenario loads")
}

#[test]
fn a_recorded_schedule_replays_the_same_io_trace_and_state() {
    // Proves replaying the recorded decisions reproduces the I/O trace and final state exactly.
    for name in [
        "smoke",
        "group-commit",
        "lying-fsync",
        "swarm",
        "every-checkpoint-step",
    ] {
        let scenario = scenario(name);
        for seed in 0..4 {
            let recording = SeedOptions {
                record_schedule: true,
                ..SeedOptions::default()
            };
            let original = run_seed_full(&scenario, seed, &recording);
            let schedule = original.schedule.clone().expect("a schedule was recorded");
            assert_eq!(
                schedule.phases.len() as u32,
                scenario
                    .for_seed(seed)
                    .crashes_per_seed
                    .min(schedule.phases.len() as u32)
            );
            let replaying = SeedOptions {
                schedule: Some(Arc::new(schedule)),
                ..SeedOptions::default()
            };
            let replay = run_seed_full(&scenario, seed, &replaying);
            assert_eq!(
                (
                    replay.outcome.trace_digest,
                    replay.outcome.final_state_digest,
                    replay.outcome.io_ops
                ),
                (
                    original.outcome.trace_digest,
                    original.outcome.final_state_digest,
                    original.outcome.io_ops
                ),
                "{name} seed {seed}: the replayed schedule diverged from its run"
            );
            assert_eq!(
                replay.outcome.failure.is_some(),
                original.outcome.failure.is_some()
            );
        }
    }
}

#[test]
fn removing_work_from_a_schedule_changes_the_run() {
    // Proves the schedule, not the seed, drives the workload: an emptied schedule does no I/O
    // for transactions.
    let scenario = scenario("smoke");
    let recording = SeedOptions {
        record_schedule: true,
        ..SeedOptions::default()
    };
    let original = run_seed_full(&scenario, 1, &recording);
    let mut schedule = original.schedule.expect("a schedule was recorded");
    for phase in &mut schedule.phases {
        phase.clients.iter_mut().for_each(Vec::clear);
    }
    schedule.quiet.iter_mut().for_each(Vec::clear);
    let replay = run_seed_full(
        &scenario,
        1,
        &SeedOptions {
            schedule: Some(Arc::new(schedule)),
            ..SeedOptions::default()
        },
    );
    assert_eq!(replay.outcome.transactions, 0);
    assert!(
        replay.outcome.failure.is_none(),
        "{:?}",
        replay.outcome.failure
    );
}
