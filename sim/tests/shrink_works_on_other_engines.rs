//! `shrink` and schedule replay work through the subject seam, not only on the dedicated
//! driver: a redb failure shrinks to a smaller case that still fails the same way, and a
//! recorded schedule replays its run. Needs the `canary` feature (the failure is redb's planted
//! bug, `redb-skip-sync`).
#![cfg(feature = "canary")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crashpoint_sim::driver::{run_seed, run_seed_full, SeedOptions};
use crashpoint_sim::outcome::SeedOutcome;
use crashpoint_sim::scenario::Scenario;
use crashpoint_sim::schedule::Schedule;
use crashpoint_sim::shrink::{shrink, write_case};
use crashpoint_sim::subjects::redb::RedbCanary;

/// Replays one shrink may spend here: enough to cut the case well down, few enough for CI.
const SHRINK_RUNS: usize = 600;

fn scenarios_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn canary_options() -> SeedOptions {
    SeedOptions {
        canary: Some(RedbCanary::SkipSync.name().to_string()),
        ..SeedOptions::default()
    }
}

/// Client operations of a schedule, reads included, in every phase and the quiet one.
fn operations(schedule: &Schedule) -> usize {
    let size = schedule.size();
    size.transactions + size.reads
}

/// Runs the shipped binary's `replay` on a written case, as a reader would; returns its exit
/// code and output.
fn replay_with_the_binary(path: &Path, seed: u64) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(["replay", "--scenario"])
        .arg(path)
        .args(["--seed", &seed.to_string()])
        .args(["--canary", RedbCanary::SkipSync.name()])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn a_redb_canary_failure_shrinks_to_a_smaller_case_that_replays() {
    // Proves shrink runs on redb: a failing seed's recorded schedule loses operations, the
    // shrunk schedule fails with the same kind of check, and the written case replays that
    // failure both through the library and through `crashpoint replay`.
    let scenario = Scenario::resolve("redb-torn-writes", &scenarios_directory()).unwrap();
    let options = canary_options();
    let seed = (0..20)
        .find(|&seed| run_seed(&scenario, seed, &options).failure.is_some())
        .expect("redb-skip-sync fails a redb-torn-writes seed within 20");
    let shrunk = shrink(&scenario, seed, options.canary.clone(), SHRINK_RUNS).expect("shrinks");
    println!(
        "redb-skip-sync, redb-torn-writes seed {seed}: {}: operations {} -> {}, phases {} -> {}, \
         I/O ops {} -> {} ({} replays)",
        shrunk.failure.kind.name(),
        shrunk.before.transactions + shrunk.before.reads,
        operations(&shrunk.schedule),
        shrunk.before.phases,
        shrunk.after.phases,
        shrunk.io_before,
        shrunk.io_after,
        shrunk.runs
    );
    assert!(
        operations(&shrunk.schedule) < shrunk.before.transactions + shrunk.before.reads,
        "nothing was removed: {:?} -> {:?}",
        shrunk.before,
        shrunk.after
    );
    let replayed = run_seed(
        &scenario,
        seed,
        &SeedOptions {
            schedule: Some(Arc::new(shrunk.schedule.clone())),
            ..canary_options()
        },
    );
    assert_eq!(
        replayed.failure.map(|failure| failure.kind),
        Some(shrunk.failure.kind),
        "the shrunk schedule does not fail the same way"
    );

    let out = std::env::temp_dir().join(format!("crashpoint-shrink-redb-{}", std::process::id()));
    let path = write_case(
        &scenario,
        seed,
        Some(RedbCanary::SkipSync.name()),
        &shrunk,
        &out,
    )
    .expect("writes the case");
    let written = Scenario::load(&path).expect("the shrunk scenario loads");
    assert_eq!(written.subject, scenario.subject);
    let from_file = run_seed(&written, seed, &canary_options());
    assert_eq!(
        from_file.failure.map(|failure| failure.kind),
        Some(shrunk.failure.kind),
        "the written case does not replay its failure"
    );
    let (code, output) = replay_with_the_binary(&path, seed);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains(shrunk.failure.kind.name()), "{output}");
    let _ = std::fs::remove_dir_all(&out);
}

/// Runs `schedule` on a seed of `scenario`, with no canary.
fn replay(scenario: &Scenario, seed: u64, schedule: Schedule) -> SeedOutcome {
    let options = SeedOptions {
        schedule: Some(Arc::new(schedule)),
        ..SeedOptions::default()
    };
    run_seed(scenario, seed, &options)
}

#[test]
fn a_recorded_subject_schedule_replays_its_run() {
    // Proves record and replay agree through the seam: a passing seed of redb (crashes at a
    // disk call and at a random time, with write errors and with bit rot injected by disk
    // call) and of our engine through the seam, run again from the schedule it recorded, gives
    // the same outcome: the same final state after the same I/O, faults, crashes and checks.
    let seam = Scenario::resolve("crashpoint-seam", &scenarios_directory()).unwrap();
    let mut scenarios: Vec<Scenario> = [
        "redb-torn-writes",
        "redb-smoke",
        "redb-write-errors",
        "redb-bit-rot",
    ]
    .iter()
    .map(|name| Scenario::resolve(name, &scenarios_directory()).unwrap())
    .collect();
    scenarios.push(seam);
    let mut faults_replayed = 0;
    for scenario in &scenarios {
        for seed in 0..3 {
            let recording = SeedOptions {
                record_schedule: true,
                ..SeedOptions::default()
            };
            let recorded = run_seed_full(scenario, seed, &recording);
            let name = &scenario.name;
            assert!(
                recorded.outcome.failure.is_none(),
                "{name} seed {seed}: {:?}",
                recorded.outcome.failure
            );
            let schedule = recorded.schedule.expect("the run recorded its schedule");
            assert!(!schedule.phases.is_empty() && operations(&schedule) > 0);
            faults_replayed += schedule.size().faults;
            let replayed = replay(scenario, seed, schedule.clone());
            assert_eq!(
                replayed, recorded.outcome,
                "{name} seed {seed}: the replay ran differently"
            );
            // The replay follows the schedule rather than drawing again: without the quiet
            // phase's commits it runs none of them, and without the planned faults, none of
            // those.
            let quiet_commits = Schedule {
                phases: Vec::new(),
                quiet: schedule.quiet.clone(),
            }
            .size()
            .transactions as u64;
            assert!(quiet_commits > 0);
            let mut quiet_removed = schedule.clone();
            quiet_removed.quiet.clear();
            assert_eq!(
                replay(scenario, seed, quiet_removed).transactions,
                recorded.outcome.transactions - quiet_commits,
                "{name} seed {seed}: the quiet phase did not follow the schedule"
            );
            let planned_kinds: Vec<String> = schedule
                .phases
                .iter()
                .flat_map(|phase| phase.faults.iter().chain(&phase.recovery_faults))
                .map(|fault| fault.kind.clone())
                .collect();
            let mut faults_removed = schedule;
            for phase in &mut faults_removed.phases {
                phase.faults.clear();
                phase.recovery_faults.clear();
            }
            let without = replay(scenario, seed, faults_removed);
            for kind in &planned_kinds {
                assert_eq!(without.faults.get(kind), None, "{name} seed {seed}: {kind}");
            }
        }
    }
    assert!(faults_replayed > 0, "no seed recorded a fault to replay");
}

#[test]
fn a_torn_redb_header_shrinks_to_one_commit() {
    // Proves shrink follows a subject's crash when removed commits move it: each commit
    // removed before an `io` crash moves the header's write by all of that commit's disk
    // calls, and the search finds the header again, so the finding shrinks to a single commit
    // (moving the crash by one or two calls only, as inside a checkpoint window, kept 23 of
    // 24).
    let scenario = Scenario::parse(
        common::REDB_TORN_WITH_GARBAGE,
        Path::new("redb-torn-garbage.toml"),
    )
    .unwrap();
    let seed = 0;
    let shrunk = shrink(&scenario, seed, None, 2000).expect("seed 0 fails and shrinks");
    println!(
        "redb torn header, seed {seed}: {}: transactions {} -> {}, I/O ops {} -> {} ({} replays)",
        shrunk.failure.kind.name(),
        shrunk.before.transactions,
        shrunk.after.transactions,
        shrunk.io_before,
        shrunk.io_after,
        shrunk.runs
    );
    assert!(shrunk.before.transactions > 10);
    assert!(shrunk.after.transactions <= 2, "{:?}", shrunk.after);
    let replayed = run_seed(
        &scenario,
        seed,
        &SeedOptions {
            schedule: Some(Arc::new(shrunk.schedule)),
            ..SeedOptions::default()
        },
    );
    assert_eq!(
        replayed.failure.map(|failure| failure.kind),
        Some(shrunk.failure.kind)
    );
}
