//! Scenario names resolve in the repository's `scenarios` directory from any working
//! directory, or in `CRASHPOINT_SCENARIOS` when set, and `list-scenarios` shows what a name can
//! be: name, whether a scenario-less `run` includes it, and its description.

use std::path::PathBuf;
use std::process::{Command, Output};

fn crashpoint_in(directory: &PathBuf, arguments: &[&str], scenarios: Option<&PathBuf>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crashpoint"));
    command
        .current_dir(directory)
        .args(arguments)
        .env_remove("CRASHPOINT_SEED")
        .env("CI", "1");
    match scenarios {
        Some(path) => command.env("CRASHPOINT_SCENARIOS", path),
        None => command.env_remove("CRASHPOINT_SCENARIOS"),
    };
    command.output().expect("the binary runs")
}

fn elsewhere() -> PathBuf {
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("elsewhere");
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

#[test]
fn list_scenarios_shows_name_default_and_description_from_anywhere() {
    // Proves list-scenarios, run outside the repository, lists the shipped scenarios with their default flag and description.
    let output = crashpoint_in(&elsewhere(), &["list-scenarios"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.starts_with("name") && header.contains("default") && header.contains("description")
    );
    let smoke = stdout
        .lines()
        .find(|line| line.starts_with("smoke "))
        .expect("smoke is listed");
    assert!(smoke.contains(" yes "), "{smoke}");
    assert!(smoke.contains("No faults"), "{smoke}");
}

#[test]
fn a_scenario_name_runs_from_another_directory() {
    // Proves `run smoke` works with a working directory outside the repository.
    let output = crashpoint_in(&elsewhere(), &["run", "smoke", "--seeds", "0"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("all 1 seeds passed"), "{stdout}");
}

#[test]
fn crashpoint_scenarios_names_another_directory() {
    // Proves CRASHPOINT_SCENARIOS replaces the scenario directory for names and for list-scenarios.
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("own-scenarios");
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(
        directory.join("tiny.toml"),
        "description = \"one client, a few transactions\"\ndefault = false\n\
         [workload]\nclients = 1\ntransactions_per_client = 3\n",
    )
    .unwrap();
    let output = crashpoint_in(&elsewhere(), &["list-scenarios"], Some(&directory));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tiny"), "{stdout}");
    assert!(!stdout.contains("smoke"), "{stdout}");
    assert!(stdout.contains(" no "), "{stdout}");
    let output = crashpoint_in(
        &elsewhere(),
        &["run", "tiny", "--seeds", "0"],
        Some(&directory),
    );
    assert_eq!(output.status.code(), Some(0));
}
