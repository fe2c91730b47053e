//! Seeds on the command line: `--seeds` takes any u64 (the largest too, alone or in `A..=B`),
//! `bench --seeds` is a range as in `run`, and a seed-less `run --random N` (or
//! `CRASHPOINT_SEED`) runs N seeds from a random (or the given) start and prints how to run them
//! again, with each failing seed's replay line.

use std::process::{Command, Output};

fn crashpoint(arguments: &[&str], seed_variable: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crashpoint"));
    command.args(arguments).env("CI", "1");
    match seed_variable {
        Some(seed) => command.env("CRASHPOINT_SEED", seed),
        None => command.env_remove("CRASHPOINT_SEED"),
    };
    command.output().expect("the binary runs")
}

fn seeds_run(output: &Output) -> Vec<u64> {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|outcome| outcome["seed"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_largest_u64_is_a_seed() {
    // Proves --seeds 18446744073709551615 and an inclusive range ending there run exactly those seeds.
    let max = u64::MAX;
    let output = crashpoint(
        &["run", "smoke", "--seeds", &max.to_string(), "--json", "-"],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(seeds_run(&output), vec![max]);
    let range = format!("{}..={max}", max - 1);
    let output = crashpoint(&["run", "smoke", "--seeds", &range, "--json", "-"], None);
    assert_eq!(seeds_run(&output), vec![max - 1, max]);
}

#[test]
fn bench_seeds_is_a_range_as_in_run() {
    // Proves bench --seeds 5..7 runs the two seeds 5 and 6, not a count of seeds from 0.
    let output = crashpoint(&["bench", "--scenario", "smoke", "--seeds", "5..7"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2 seeds (5..7)"), "{stdout}");
}

#[test]
fn random_runs_n_seeds_from_crashpoint_seed_or_a_printed_random_start() {
    // Proves --random N runs N seeds from CRASHPOINT_SEED when set, and otherwise from a random start it prints.
    let output = crashpoint(
        &["run", "smoke", "--random", "3", "--json", "-"],
        Some("40"),
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(seeds_run(&output), vec![40, 41, 42]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CRASHPOINT_SEED=40 crashpoint run --random 3"),
        "{stderr}"
    );

    let starts: Vec<u64> = (0..2)
        .map(|_| {
            let output = crashpoint(&["run", "smoke", "--random", "2", "--json", "-"], None);
            let seeds = seeds_run(&output);
            assert_eq!(seeds.len(), 2);
            assert_eq!(seeds[1], seeds[0] + 1);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("CRASHPOINT_SEED={}", seeds[0])),
                "{stderr}"
            );
            seeds[0]
        })
        .collect();
    assert_ne!(starts[0], starts[1], "two random runs drew the same start");
}

#[test]
fn crashpoint_seed_alone_runs_that_seed() {
    // Proves CRASHPOINT_SEED without --seeds or --random runs just that seed, and --seeds wins over it.
    let output = crashpoint(&["run", "smoke", "--json", "-"], Some("77"));
    assert_eq!(seeds_run(&output), vec![77]);
    let output = crashpoint(&["run", "smoke", "--seeds", "3", "--json", "-"], Some("77"));
    assert_eq!(seeds_run(&output), vec![3]);
    let output = crashpoint(&["run", "smoke"], Some("not-a-seed"));
    assert_eq!(output.status.code(), Some(2));
}

#[cfg(feature = "canary")]
#[test]
fn a_random_run_prints_each_failing_seeds_replay_line() {
    // Proves a failing seed of a --random run prints the line that replays exactly it.
    let output = crashpoint(
        &[
            "run",
            "every-checkpoint-step",
            "--random",
            "1",
            "--canary",
            "header-before-pages",
        ],
        Some("0"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL every-checkpoint-step (sharp) seed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("replay --scenario")
            && stdout.contains("--seed 0 --strategy sharp --canary header-before-pages"),
        "{stdout}"
    );
}
