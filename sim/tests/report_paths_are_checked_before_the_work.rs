//! Every output path is checked before any seed runs, as `--json`'s always was: `replay
//! --trace`, `shrink --out`, `run --json` and `run --junit` fail at once with exit 2 on a path
//! they cannot write. `--json -` writes the report to standard output instead of a file.

use std::path::PathBuf;
use std::process::{Command, Output};

fn crashpoint(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(arguments)
        .env_remove("CRASHPOINT_SEED")
        .env("CI", "1")
        .output()
        .expect("the binary runs")
}

/// A path inside a directory that does not exist.
fn unwritable(name: &str) -> String {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("no-such-directory")
        .join(name)
        .display()
        .to_string()
}

fn assert_refused_before_running(output: &Output, path: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains(path), "the error names the path: {stderr}");
    assert!(
        !stdout.contains("scenario ") && !stdout.contains("shrunk"),
        "work ran before the path was checked: {stdout}"
    );
}

#[test]
fn replay_checks_its_trace_path_first() {
    // Proves replay --trace to an unwritable path exits 2 before replaying.
    let path = unwritable("trace.json");
    let output = crashpoint(&[
        "replay",
        "--scenario",
        "smoke",
        "--seed",
        "1",
        "--trace",
        &path,
    ]);
    assert_refused_before_running(&output, &path);
}

#[test]
fn shrink_checks_its_out_directory_first() {
    // Proves shrink --out naming an existing file (no directory can be made there) exits 2 before shrinking.
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("out-is-a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.display().to_string();
    let output = crashpoint(&[
        "shrink",
        "--scenario",
        "smoke",
        "--seed",
        "1",
        "--out",
        &path,
    ]);
    assert_refused_before_running(&output, &path);
}

#[test]
fn run_checks_its_json_and_junit_paths_first() {
    // Proves run --json and run --junit to unwritable paths exit 2 before any seed runs.
    for flag in ["--json", "--junit"] {
        let path = unwritable("report");
        let output = crashpoint(&["run", "smoke", "--seeds", "0..2", flag, &path]);
        assert_refused_before_running(&output, &path);
    }
}

#[test]
fn json_dash_writes_the_report_to_standard_output() {
    // Proves --json - puts exactly the JSON document on stdout and the human report on stderr.
    let output = crashpoint(&["run", "smoke", "--seeds", "0..2", "--json", "-"]);
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(report["passed"], true);
    assert_eq!(report["outcomes"].as_array().unwrap().len(), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("all 2 seeds passed"), "{stderr}");
}
