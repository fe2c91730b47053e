//! Every checkpoint trigger of the seeds fires and is counted by name, under every strategy,
//! and the runs that make them fire pass their checks.

use std::path::PathBuf;

use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::measures::Measures;
use crashpoint_sim::scenario::Scenario;

fn measured(name: &str, strategy: crashpoint::Strategy, seeds: u64) -> Measures {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenario = Scenario::resolve(name, &directory)
        .expect("scenario loads")
        .with_strategy(strategy)
        .expect("the scenario takes every strategy");
    let mut measures = Measures::default();
    for seed in 0..seeds {
        let outcome = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
        assert_eq!(outcome.failure, None, "{name} ({strategy}) seed {seed}");
        measures.add(&outcome.measures);
    }
    measures
}

#[test]
fn log_volume_dirty_bytes_log_space_forced_and_shutdown_checkpoints_all_run() {
    // Proves each trigger the checkpoint-triggers scenario tunes takes checkpoints on every
    // strategy, and that the runs measure commits and checkpoint time.
    for strategy in crashpoint::Strategy::ALL {
        let measures = measured("checkpoint-triggers", strategy, 8);
        for trigger in [
            "log-volume",
            "dirty-bytes",
            "log-space",
            "forced",
            "shutdown",
        ] {
            assert!(
                measures.checkpoints.get(trigger).copied().unwrap_or(0) > 0,
                "{strategy}: no {trigger} checkpoint in {:?}",
                measures.checkpoints
            );
        }
        assert!(measures.checkpoint_nanos > 0, "{strategy}");
        assert!(
            measures.commits_outside_checkpoint.count() > 0,
            "{strategy}"
        );
        assert!(measures.committed_bytes > 0 && measures.disk_bytes_written > 0);
    }
}

#[test]
fn interval_checkpoints_run_and_idle_ones_are_skipped() {
    // Proves the interval trigger takes checkpoints in a default scenario, and that some
    // checkpoint with nothing logged since the last is counted as skipped, not taken.
    let mut skipped = 0;
    for strategy in crashpoint::Strategy::ALL {
        let measures = measured("group-commit", strategy, 10);
        assert!(
            measures.checkpoints.get("interval").copied().unwrap_or(0) > 0,
            "{strategy}: {:?}",
            measures.checkpoints
        );
        skipped += measures.skipped.values().sum::<u64>();
    }
    assert!(skipped > 0, "no checkpoint was ever skipped");
}
