//! `soak` fuzzes continuously: it runs seeds until its `--duration` is up and prints seeds per
//! second, stops like `run` on SIGINT (exit 130, the summary of what ran), and appends each
//! failure as a JSON line with its replay line, which stays valid when the process is killed
//! and replays the failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// How many shipped scenarios are in the default sweep (`default = true`).
fn default_scenarios() -> usize {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .filter(|text| text.lines().any(|line| line.trim() == "default = true"))
        .count()
}

fn crashpoint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crashpoint"));
    command.env_remove("CRASHPOINT_SEED").env("CI", "1");
    command
}

/// The complete lines of the failure file, each parsed; a last line without its newline (a
/// write the kill interrupted) is left out.
fn failure_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"))
        })
        .collect()
}

#[test]
fn soak_stops_when_its_time_is_up_and_prints_seeds_per_second() {
    // Proves a soak of 2 s ends in about 2 s with exit 0, a summary table, its start seed and its rate.
    let failures = scratch("soak_clean.jsonl");
    let started = Instant::now();
    let output = crashpoint()
        .args([
            "soak",
            "smoke",
            "--duration",
            "2s",
            "--jobs",
            "2",
            "--failures",
        ])
        .arg(&failures)
        .env("CRASHPOINT_SEED", "77")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(30),
        "{elapsed:?}"
    );
    assert!(
        stdout.contains("seeds from 77 (from CRASHPOINT_SEED)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nscenario "),
        "the summary table: {stdout}"
    );
    // smoke with no --strategy runs with its own strategy, as `run smoke` does.
    assert!(stdout.contains("\nsmoke "), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("soak ran ") && last.contains(" seeds/s) from seed 77: no failures"),
        "{last}"
    );
    let seeds: u64 = last["soak ran ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seeds > 10, "{seeds} seeds in 2 s");
    assert!(failure_lines(&failures).is_empty());
}

#[test]
fn sigint_stops_a_soak_after_the_seeds_in_flight() {
    // Proves Ctrl-C ends an hour-long soak at once with exit 130 and the summary of the seeds that ran.
    let failures = scratch("soak_sigint.jsonl");
    let mut child = crashpoint()
        .args([
            "soak",
            "--duration",
            "1h",
            "--strategy",
            "all",
            "--jobs",
            "2",
            "--failures",
        ])
        .arg(&failures)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    // The soak's first lines say what it soaks; read only those, so a changed banner fails
    // here instead of waiting out the hour.
    let expected = format!("soaking {} scenarios", 3 * default_scenarios());
    let banner = stdout
        .by_ref()
        .take(4)
        .map_while(Result::ok)
        .find(|line| line.starts_with("soaking "));
    assert!(
        banner
            .as_deref()
            .is_some_and(|line| line.starts_with(&expected)),
        "the soak did not say it started with every default scenario x 3 strategies \
         ({expected}): {banner:?}"
    );
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill only sends a signal to the child we spawned.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let rest: Vec<String> = stdout.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let text = rest.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("\nscenario "), "the summary table: {text}");
    assert!(
        rest.last()
            .unwrap()
            .starts_with("interrupted by a signal; soak ran "),
        "{text}"
    );
}

#[cfg(feature = "canary")]
mod with_a_planted_bug {
    use super::*;

    /// A soak that finds failures quickly: the planted bug fails most seeds of this scenario.
    fn failing_soak(failures: &Path, duration: &str, jobs: &str) -> Command {
        let mut command = crashpoint();
        command
            .args([
                "soak",
                "every-checkpoint-step",
                "--strategy",
                "sharp",
                "--canary",
                "header-before-pages",
                "--duration",
                duration,
                "--jobs",
                jobs,
                "--failures",
            ])
            .arg(failures);
        command
    }

    #[test]
    fn failures_are_json_lines_that_survive_a_kill() {
        // Proves failures reach the file while the soak runs, a SIGKILL leaves only valid lines, and a later soak appends after them.
        let failures = scratch("soak_killed.jsonl");
        let mut child = failing_soak(&failures, "1h", "2")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while failure_lines(&failures).len() < 5 {
            assert!(Instant::now() < deadline, "no failures written within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = failure_lines(&failures);
        assert!(lines.len() >= 5);
        for line in &lines {
            assert_eq!(line["scenario"], "every-checkpoint-step");
            assert!(line["failure"]["kind"].is_string(), "{line}");
            let replay = line["replay"].as_str().unwrap();
            assert!(
                replay.contains(&format!("--seed {} ", line["seed"]))
                    && replay.ends_with("--strategy sharp --canary header-before-pages"),
                "{replay}"
            );
        }
        let output = failing_soak(&failures, "1s", "1").output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let after = failure_lines(&failures);
        assert!(after.len() > lines.len());
        let text = std::fs::read_to_string(&failures).unwrap();
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_logged_failure_replays_and_the_same_start_finds_it_again() {
        // Proves soak seeds are deterministic: the first failure of a soak from CRASHPOINT_SEED is found again from that seed, and its replay line fails the same way.
        let first = |name: &str| {
            let failures = scratch(name);
            let output = failing_soak(&failures, "2s", "1")
                .env("CRASHPOINT_SEED", "4000")
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(1));
            let mut line = failure_lines(&failures).remove(0);
            line.as_object_mut()
                .unwrap()
                .remove("found_at_unix_seconds");
            line
        };
        let line = first("soak_again_1.jsonl");
        assert_eq!(line, first("soak_again_2.jsonl"));
        let replay = line["replay"].as_str().unwrap();
        let arguments: Vec<&str> = replay.split(" -- ").nth(1).unwrap().split(' ').collect();
        let output = crashpoint().args(&arguments).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        let kind = line["failure"]["kind"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("seed {}: {kind} ", line["seed"])),
            "{stdout}"
        );
    }
}
