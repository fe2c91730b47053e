//! Every planted bug shrinks to a small case that replays: the failing seed becomes a scenario
//! plus schedule a reader can follow in a screen of `replay -v`. Needs the `canary` feature.
#![cfg(feature = "canary")]

use std::path::{Path, PathBuf};
use std::process::Command;

use crashpoint::Canary;
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::scenario::Scenario;
use crashpoint_sim::shrink::{shrink, write_case};

fn scenario_for(canary: Canary) -> Option<&'static str> {
    Some(match canary {
        Canary::SkipDataFsync | Canary::HeaderBeforePages | Canary::TrimLogBeforeHeader => {
            "every-checkpoint-step"
        }
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
        // Found by explore's continuation past a recovery only: a run's crashes almost never
        // land on the first append after a recovery (explore_finds_canaries.rs).
        Canary::AppendInDurableSector => return None,
    })
}

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// The first failing seed of the canary's scenario.
fn first_failing_seed(scenario: &Scenario, canary: Canary) -> Option<u64> {
    let options = SeedOptions {
        canary: Some(canary.name().to_string()),
        ..SeedOptions::default()
    };
    (0..200).find(|&seed| run_seed(scenario, seed, &options).failure.is_some())
}

/// Runs the shipped binary's `replay -v` on a written case, as a reader would; returns its
/// line count and widest line. The replay must report the failure (exit code 1).
fn replay_verbose_size(path: &Path, seed: u64, canary: Canary) -> (usize, usize) {
    let output = Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(["replay", "--scenario"])
        .arg(path)
        .args(["--seed", &seed.to_string(), "-v", "--canary", canary.name()])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
    let widest = stderr
        .lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    (lines.len(), widest)
}

#[test]
fn every_canary_shrinks_to_a_small_case_that_replays() {
    // Proves shrinking keeps the failure, cuts the case down, and writes files that replay it.
    let output =
        std::env::temp_dir().join(format!("crashpoint-shrink-test-{}", std::process::id()));
    for canary in Canary::ALL {
        let Some(name) = scenario_for(canary) else {
            continue;
        };
        let scenario = Scenario::resolve(name, &scenarios_directory())
            .expect("scenario loads")
            .with_strategy(canary.strategy())
            .expect("the scenario takes the canary's strategy");
        let seed = first_failing_seed(&scenario, canary)
            .unwrap_or_else(|| panic!("{} never failed", canary.name()));
        let shrunk =
            shrink(&scenario, seed, Some(canary.name().to_string()), 1500).expect("shrinks");
        println!(
            "canary {:<37} {} seed {seed}: transactions {} -> {}, faults {} -> {}, I/O ops {} -> {} ({} replays)",
            canary.name(),
            scenario.name,
            shrunk.before.transactions,
            shrunk.after.transactions,
            shrunk.before.faults,
            shrunk.after.faults,
            shrunk.io_before,
            shrunk.io_after,
            shrunk.runs
        );
        assert!(
            shrunk.after.transactions <= shrunk.before.transactions
                && shrunk.io_after < shrunk.io_before
        );
        // A bug in reading sealed log segments needs a sealed segment: filling a 4 KiB one
        // takes about 25 to 30 short commits, which no shrink can remove.
        let transactions_max = match canary {
            Canary::SkipSealedLogChecksum => 32,
            _ => 25,
        };
        assert!(
            shrunk.after.transactions <= transactions_max && shrunk.io_after <= 120,
            "{} shrank only to {:?} and {} I/O ops",
            canary.name(),
            shrunk.after,
            shrunk.io_after
        );
        let path = write_case(&scenario, seed, Some(canary.name()), &shrunk, &output)
            .expect("writes the case");
        let written = Scenario::load(&path).expect("the shrunk scenario loads");
        let options = SeedOptions {
            canary: Some(canary.name().to_string()),
            ..SeedOptions::default()
        };
        let replayed = run_seed(&written, seed, &options);
        assert_eq!(
            replayed.failure.map(|failure| failure.kind),
            Some(shrunk.failure.kind),
            "{}: the written case does not replay its failure",
            canary.name()
        );
        let (lines, widest) = replay_verbose_size(&path, seed, canary);
        println!("  replay -v: {lines} lines, the widest {widest} characters");
        // A bug in the log trim shows only once a whole log segment lies before the
        // checkpoint, so its story holds a segment's worth of commits.
        let lines_max = match canary {
            Canary::TrimLogBeforeHeaderSync => 200,
            _ => 180,
        };
        assert!(
            lines <= lines_max && widest <= 240,
            "{}: replay -v prints {lines} lines, the widest {widest} characters",
            canary.name()
        );
    }
    let _ = std::fs::remove_dir_all(&output);
}
