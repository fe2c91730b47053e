//! The subject seam: redb runs deterministically through it, our engine passes through it as
//! any third-party engine would, and a scenario cannot ask a subject for checkpoint steps it
//! does not report.

use std::path::{Path, PathBuf};

use crashpoint_sim::driver::{run_seed, run_seed_full, SeedOptions};
use crashpoint_sim::scenario::Scenario;

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn a_redb_seed_replays_byte_for_byte() {
    // Proves redb under madsim is deterministic: the same seed gives the same I/O trace digest,
    // the same faults and the same final state.
    let scenario = Scenario::resolve("redb-torn-writes", &scenarios_directory()).unwrap();
    for seed in 0..5 {
        let first = run_seed_full(&scenario, seed, &SeedOptions::default()).outcome;
        let second = run_seed_full(&scenario, seed, &SeedOptions::default()).outcome;
        assert!(first.failure.is_none(), "seed {seed}: {:?}", first.failure);
        assert!(first.io_ops > 0 && first.recoveries == 3);
        assert_eq!(first, second, "seed {seed} ran differently twice");
    }
}

#[test]
fn our_engine_passes_through_the_seam() {
    // Proves the generic driver and oracle hold our engine as they hold redb: crashes inside
    // its I/O with torn writes, recoveries checked, and no failure.
    let scenario = Scenario::resolve("crashpoint-seam", &scenarios_directory()).unwrap();
    for seed in 0..30 {
        let outcome = run_seed(&scenario, seed, &SeedOptions::default());
        assert!(
            outcome.failure.is_none(),
            "seed {seed}: {:?}",
            outcome.failure
        );
        assert_eq!(outcome.strategy, "crashpoint-seam");
        assert!(outcome.recoveries > 0);
    }
}

#[cfg(feature = "canary")]
#[test]
fn our_engines_planted_bug_is_caught_through_the_seam() {
    // Proves the seam's oracle has teeth on our engine too: with a checkpoint's header written
    // before its pages (a planted bug the dedicated driver also catches), a seed fails within
    // 200.
    let scenario = Scenario::resolve("crashpoint-seam", &scenarios_directory()).unwrap();
    let planted = SeedOptions {
        canary: Some("header-before-pages".to_string()),
        ..SeedOptions::default()
    };
    let caught = (0..200).find(|&seed| run_seed(&scenario, seed, &planted).failure.is_some());
    assert!(
        caught.is_some(),
        "header-before-pages not caught through the seam"
    );
}

#[test]
fn a_subject_without_checkpoint_steps_refuses_step_crashes() {
    // Proves a scenario cannot silently ask redb for a crash mode only our engine can serve.
    let text = "subject = \"redb\"\n[crash]\nmode = \"step\"\n";
    let error = Scenario::parse(text, Path::new("redb-step.toml")).unwrap_err();
    assert!(error.to_string().contains("no checkpoint steps"), "{error}");
    let swarm = "subject = \"redb\"\nswarm = true\n";
    assert!(Scenario::parse(swarm, Path::new("redb-swarm.toml")).is_err());
}
