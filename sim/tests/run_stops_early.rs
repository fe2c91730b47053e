//! A long `run` stops early and still reports: on SIGINT or SIGTERM after the seeds in flight
//! (exit 130, the partial summary, a JSON report marked incomplete), at the first failure with
//! `--fail-fast`, and per seed at the wall-clock limit (a `hang`, not a frozen run).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn crashpoint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crashpoint"));
    command.env_remove("CRASHPOINT_SEED").env("CI", "1");
    command
}

fn read_json(path: &PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the JSON report exists"))
        .expect("the JSON report is complete JSON")
}

/// Starts a run far too long to finish, waits until it has started and run a little, sends
/// `signal`, and checks it stops with 130, the partial summary and an incomplete JSON report.
fn stops_on(signal: i32, name: &str) {
    let json = scratch(&format!("run_stops_on_{name}.json"));
    let mut child = crashpoint()
        .args([
            "run",
            "smoke",
            "--seeds",
            "0..1000000",
            "--jobs",
            "1",
            "--json",
        ])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = stderr.any(|line| line.is_ok_and(|line| line.starts_with("running ")));
    assert!(started, "the run did not say it started");
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill only sends a signal to the child we spawned.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill failed");
    let output = child.wait_with_output().expect("the run ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.starts_with("scenario "),
        "the partial summary: {stdout}"
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["complete"], false, "{report}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["stopped"], "interrupted");
    assert_eq!(report["seeds_requested"], 1_000_000);
    let ran = report["outcomes"].as_array().unwrap().len();
    assert!(ran > 0 && ran < 1_000_000, "{ran} seeds ran");
    assert_eq!(report["summaries"][0]["seeds"], ran as u64);
}

#[test]
fn sigint_stops_after_the_seeds_in_flight_with_an_incomplete_report() {
    // Proves Ctrl-C ends a run with exit 130, the summary of what ran, and a JSON report marked incomplete.
    stops_on(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_stops_like_sigint() {
    // Proves SIGTERM (a CI job's cancel) gets the same orderly stop as Ctrl-C.
    stops_on(libc::SIGTERM, "sigterm");
}

#[test]
fn a_seed_past_the_wall_clock_limit_is_reported_as_a_hang() {
    // Proves a seed that runs too long becomes a `hang` failure within about the limit, instead of a run that never ends.
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("slow-scenario");
    std::fs::create_dir_all(&directory).unwrap();
    let scenario = directory.join("slow.toml");
    std::fs::write(
        &scenario,
        "description = \"far more work than one second allows\"\n\
         [workload]\nclients = 64\ntransactions_per_client = 100000\n",
    )
    .unwrap();
    let junit = scratch("hang.xml");
    let started = Instant::now();
    let output = crashpoint()
        .arg("run")
        .arg(&scenario)
        .args(["--seeds", "0", "--seed-time-limit-seconds", "1", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the limit did not apply"
    );
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL slow (sharp) seed 0: hang"),
        "{stdout}"
    );
    assert!(stdout.contains("wall-clock limit of 1 s"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<failure type="hang""#), "{xml}");
}

#[cfg(feature = "canary")]
#[test]
fn fail_fast_stops_at_the_first_failing_seed() {
    // Proves --fail-fast ends the run once a seed fails (one worker: at that seed), reports it, and marks the report incomplete.
    let json = scratch("fail_fast.json");
    let output = crashpoint()
        .args([
            "run",
            "every-checkpoint-step",
            "--seeds",
            "0..50",
            "--jobs",
            "1",
            "--canary",
            "header-before-pages",
            "--fail-fast",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("--fail-fast"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["stopped"], "fail-fast");
    assert_eq!(report["complete"], false);
    let outcomes = report["outcomes"].as_array().unwrap();
    assert!(outcomes.last().unwrap()["failure"].is_object());
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| outcome["failure"].is_object())
            .count(),
        1
    );
}
