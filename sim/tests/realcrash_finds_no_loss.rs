//! `crashpoint realcrash` kills a real child process running the engine on the real filesystem,
//! recovers and checks: a correct engine loses no acknowledged commit under every strategy, and
//! (with the `canary` feature) a child that acknowledges commits before they are durable is
//! caught, so the check can fail. Bounded by kills, not by time.

use std::process::{Command, Output};

fn crashpoint(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_acknowledged_commit_survives_sigkill_under_every_strategy() {
    // Proves eight kills per strategy (some held inside checkpoint steps) recover every
    // acknowledged commit as a prefix of the log order.
    let output = crashpoint(&["realcrash", "--iterations", "8", "--strategy", "all"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    for strategy in ["sharp", "fuzzy", "physical-log"] {
        assert!(
            printed
                .lines()
                .any(|line| line.starts_with(strategy) && line.contains(" 8 ")),
            "{strategy} ran 8 kills: {printed}"
        );
    }
    assert!(printed.contains("every acknowledged commit survived every kill"));
}

#[test]
fn a_planted_canary_needs_the_feature_or_a_known_name() {
    // Proves --canary is refused as a usage error (exit 2) when it cannot be planted.
    let output = crashpoint(&[
        "realcrash",
        "--iterations",
        "1",
        "--canary",
        "no-such-canary",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[cfg(feature = "canary")]
#[test]
fn a_child_that_acknowledges_before_durable_is_caught() {
    // Proves the check fails: a child that runs without syncing and reports every commit
    // durable loses acknowledged commits with its memory when killed, and realcrash says so.
    let output = crashpoint(&[
        "realcrash",
        "--iterations",
        "60",
        "--strategy",
        "sharp",
        "--canary",
        "acknowledge-before-durable",
    ]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("FAIL sharp kill"), "{printed}");
    assert!(printed.contains("expected"), "{printed}");
    assert!(printed.contains("reproduce"), "{printed}");
}
