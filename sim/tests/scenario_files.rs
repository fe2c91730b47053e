//! Scenario files: the shipped ones load, mistakes in a file are reported with file, line and
//! field, swarm draws are reproducible, and the command line exits 2 on configuration errors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crashpoint_sim::scenario::{CrashMode, Scenario, ScenarioError};

fn shipped_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Writes `text` to a fresh file under the temp directory and returns its path.
fn write_scenario(label: &str, text: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let directory = std::env::temp_dir().join(format!(
        "crashpoint-scenario-files-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(format!("{label}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `text` as a file and returns the error, its message, line and field.
fn load_error(label: &str, text: &str) -> (ScenarioError, String) {
    let path = write_scenario(label, text);
    let error = Scenario::load(&path).expect_err("the scenario should be rejected");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:", path.display())),
        "the message names the file: {message}"
    );
    (error, message)
}

// Every shipped scenario parses, validates, is in the default set and is named after its file.
#[test]
fn every_shipped_scenario_parses() {
    let expected = [
        "bit-rot",
        "every-checkpoint-step",
        "fsync-error",
        "group-commit",
        "lost-writes",
        "lying-fsync",
        "misdirected",
        "no-sync",
        "rot-at-rest",
        "smoke",
        "swarm",
        "torn-writes",
    ];
    let directory = shipped_directory();
    for name in expected {
        let scenario =
            Scenario::resolve(name, &directory).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(scenario.name, name);
        assert!(scenario.default, "{name} is in the default set");
    }
    let names: Vec<String> = Scenario::default_set(&directory)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, expected);
}

// The shipped scenarios configure what their names promise.
#[test]
fn shipped_scenarios_match_their_names() {
    let directory = shipped_directory();
    let load = |name: &str| Scenario::resolve(name, &directory).unwrap();
    assert_eq!(load("torn-writes").crash.fates.torn, 0.6);
    assert_eq!(load("torn-writes").crash.mode, CrashMode::Io);
    assert_eq!(load("every-checkpoint-step").crash.mode, CrashMode::Step);
    assert_eq!(load("every-checkpoint-step").crashes_per_seed, 6);
    assert!(load("swarm").swarm);
    assert_eq!(load("lying-fsync").faults.lying_fsync, 0.05);
}

// The redb scenarios cover the default fault set, outside the default set, on the disk redb
// assumes (torn sectors are old or new, never garbage).
#[test]
fn redb_scenarios_cover_the_default_faults_outside_the_default_set() {
    let directory = shipped_directory();
    for name in [
        "redb-smoke",
        "redb-torn-writes",
        "redb-lost-writes",
        "redb-lying-fsync",
        "redb-fsync-error",
        "redb-write-errors",
        "redb-bit-rot",
    ] {
        let scenario = Scenario::resolve(name, &directory).unwrap();
        assert_eq!(
            scenario.subject,
            crashpoint_sim::subjects::SubjectName::Redb
        );
        assert!(!scenario.default, "{name} stays out of the default set");
        assert!(
            !scenario.crash.fates.garbage,
            "{name} tears without garbage"
        );
    }
}

// A misspelled field is an error at its line, naming the dotted field.
#[test]
fn unknown_field_reports_file_line_and_field() {
    let (error, message) = load_error(
        "unknown-field",
        "name = \"x\"\n\n[workload]\nclients = 2\nwrites_mx = 3\n",
    );
    assert_eq!(error.line(), Some(5), "{message}");
    assert_eq!(error.field(), Some("workload.writes_mx"), "{message}");
    assert!(
        message.contains(":5: field `workload.writes_mx`: unknown field"),
        "{message}"
    );
}

// A value of the wrong type is an error at its line, naming the dotted field.
#[test]
fn wrong_type_reports_file_line_and_field() {
    let (error, message) = load_error(
        "wrong-type",
        "[engine]\ncache_pages = 16\npage_size_bytes = \"big\"\n",
    );
    assert_eq!(error.line(), Some(3), "{message}");
    assert_eq!(error.field(), Some("engine.page_size_bytes"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

// A value outside its range is an error at its line, saying the range and the value.
#[test]
fn out_of_range_value_reports_file_line_and_field() {
    let (error, message) = load_error("out-of-range", "# comment\n\n[workload]\nclients = 65\n");
    assert_eq!(error.line(), Some(4), "{message}");
    assert_eq!(error.field(), Some("workload.clients"), "{message}");
    assert!(
        message.ends_with("must be in 1..=64, found 65"),
        "{message}"
    );
}

// writes_min above writes_max blames writes_max at its line, with both values.
#[test]
fn writes_min_above_writes_max_reports_file_line_and_field() {
    let (error, message) = load_error(
        "min-max",
        "[workload]\nwrites_min = 5\nwrites_max = 2\nkeys = 10\n",
    );
    assert_eq!(error.line(), Some(3), "{message}");
    assert!(
        message.ends_with(":3: field `workload.writes_max`: must be >= writes_min (5), found 2"),
        "{message}"
    );
}

// A crash step that is not a checkpoint step name is an error at the steps line.
#[test]
fn unknown_crash_step_reports_file_line_and_field() {
    let (error, message) = load_error(
        "unknown-step",
        "[crash]\nmode = \"step\"\nsteps = [\"header-written\", \"header-wrote\"]\n",
    );
    assert_eq!(error.line(), Some(3), "{message}");
    assert_eq!(error.field(), Some("crash.steps"), "{message}");
    assert!(message.contains("`header-wrote`"), "{message}");
}

// Crash fates that do not sum to 1 are an error at the first fate written.
#[test]
fn fates_not_summing_to_one_report_file_line_and_field() {
    let (error, message) = load_error(
        "fates",
        "[crash]\nmode = \"io\"\nvanish = 0.5\ntorn = 0.5\n",
    );
    assert_eq!(error.line(), Some(3), "{message}");
    assert!(message.contains("must sum to 1"), "{message}");
    assert!(error.field().unwrap().starts_with("crash."), "{message}");
}

// A swarm scenario draws the same configuration for a seed every time, and different ones
// across seeds.
#[test]
fn swarm_draw_is_deterministic_per_seed_and_varies_across_seeds() {
    let swarm = Scenario::resolve("swarm", &shipped_directory()).unwrap();
    for seed in 0..50 {
        assert_eq!(swarm.for_seed(seed), swarm.for_seed(seed));
    }
    let draws: Vec<Scenario> = (0..50).map(|seed| swarm.for_seed(seed)).collect();
    let distinct_fault_mixes = draws
        .iter()
        .map(|draw| format!("{:?}", draw.faults))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(
        distinct_fault_mixes > 40,
        "only {distinct_fault_mixes} distinct mixes"
    );
    assert!(draws
        .iter()
        .any(|draw| draw.crash.mode != draws[0].crash.mode));
    assert!(draws
        .iter()
        .any(|draw| draw.engine.sync_mode != draws[0].engine.sync_mode));
}

fn crashpoint(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(arguments)
        .env("CRASHPOINT_SCENARIOS", shipped_directory())
        .env("CI", "1")
        .output()
        .unwrap()
}

// A bad scenario file is a configuration error: exit 2, with the file and line on stderr.
#[test]
fn cli_exits_2_on_bad_scenario() {
    let path = write_scenario("cli-bad", "[workload]\nclients = 0\n");
    let output = crashpoint(&["run", path.to_str().unwrap(), "--seeds", "0..2"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", path.display())),
        "{stderr}"
    );
}

// A malformed or empty --seeds value is a usage error: exit 2.
#[test]
fn cli_exits_2_on_bad_seeds() {
    for seeds in ["ten", "5..5", "3..1"] {
        let output = crashpoint(&["run", "smoke", "--seeds", seeds]);
        assert_eq!(output.status.code(), Some(2), "--seeds {seeds}");
    }
}
