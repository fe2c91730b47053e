//! `run`'s reports follow the conventions people and CI systems expect: `--quiet` prints only
//! failures and the verdict, `--color always|never|auto` colors verdicts (auto: a terminal,
//! unless NO_COLOR), `--junit FILE` writes one JUnit test case per seed, and `completions`
//! prints shell completion scripts.

use std::path::PathBuf;
use std::process::{Command, Output};

fn crashpoint(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .args(arguments)
        .env_remove("CRASHPOINT_SEED")
        .env_remove("NO_COLOR")
        .env("CI", "1")
        .output()
        .expect("the binary runs")
}

#[test]
fn quiet_prints_only_the_verdict() {
    // Proves --quiet leaves out the start line and the summary table of a passing run.
    let output = crashpoint(&["run", "smoke", "--seeds", "0..2", "--quiet"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "all 2 seeds passed\n"
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn color_always_colors_and_never_and_auto_off_a_terminal_do_not() {
    // Proves --color always paints the verdict, while never and auto (output is a pipe here) write plain text.
    let colored = crashpoint(&["run", "smoke", "--seeds", "0", "--color", "always"]);
    assert!(String::from_utf8_lossy(&colored.stdout).contains("\x1b[32mall 1 seeds passed\x1b[0m"));
    for when in ["never", "auto"] {
        let plain = crashpoint(&["run", "smoke", "--seeds", "0", "--color", when]);
        assert!(
            !String::from_utf8_lossy(&plain.stdout).contains('\x1b'),
            "--color {when}"
        );
    }
}

#[test]
fn junit_has_one_case_per_seed() {
    // Proves --junit writes a JUnit document with a suite per scenario and a passing case per seed.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run.junit.xml");
    let _ = std::fs::remove_file(&path);
    let output = crashpoint(&[
        "run",
        "smoke",
        "torn-writes",
        "--seeds",
        "0..3",
        "--junit",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(
        xml.contains(r#"<testsuites name="crashpoint" tests="6" failures="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="torn-writes" tests="3" failures="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase classname="crashpoint.smoke" name="seed 2"/>"#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 6);
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    // Proves `completions SHELL` prints a script that knows the commands and run's flags.
    for shell in ["bash", "zsh", "fish"] {
        let output = crashpoint(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for word in ["crashpoint", "list-scenarios", "fail-fast", "junit"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert_eq!(crashpoint(&["completions", "tcsh"]).status.code(), Some(2));
}
