//! The JUnit XML report of `run --junit FILE`, for CI systems that show test results: one test
//! suite per scenario, one test case per seed that ran, and for each failing seed a `failure`
//! whose type is the failure kind and whose text ends with the line that replays it.
//!
//! Pure formatting over [`SeedOutcome`]s, like [`crate::report`]; the caller passes the times.

use std::io::{self, Write};

use crate::outcome::SeedOutcome;
use crate::report::{failure_lines, ScenarioSummary};

/// Writes the report. `summaries[i].seeds` outcomes of `outcomes`, in order, belong to
/// scenario `i` (as `run` collects them).
pub fn write(
    out: &mut dyn Write,
    summaries: &[ScenarioSummary],
    outcomes: &[SeedOutcome],
    canary: Option<&str>,
) -> io::Result<()> {
    let total = ScenarioSummary::total(summaries);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="crashpoint" tests="{}" failures="{}" time="{:.3}">"#,
        total.seeds, total.failures, total.elapsed_seconds
    )?;
    let mut rest = outcomes;
    for summary in summaries {
        let (mine, later) = rest.split_at((summary.seeds as usize).min(rest.len()));
        rest = later;
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" time="{:.3}">"#,
            escape(&summary.scenario),
            summary.seeds,
            summary.failures,
            summary.elapsed_seconds
        )?;
        for outcome in mine {
            let name = format!("seed {}", outcome.seed);
            let class = format!("crashpoint.{}", summary.scenario);
            match &outcome.failure {
                None => writeln!(
                    out,
                    r#"    <testcase classname="{}" name="{}"/>"#,
                    escape(&class),
                    escape(&name)
                )?,
                Some(failure) => {
                    writeln!(
                        out,
                        r#"    <testcase classname="{}" name="{}">"#,
                        escape(&class),
                        escape(&name)
                    )?;
                    let text = failure_lines(outcome, failure, &summary.path, canary);
                    writeln!(
                        out,
                        r#"      <failure type="{}" message="{}">{}</failure>"#,
                        failure.kind.name(),
                        escape(&failure.message),
                        escape(&text)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Text as XML character data or an attribute value. Characters XML 1.0 cannot hold at all
/// (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' | '\r' => escaped.push(character),
            control if (control as u32) < 0x20 => escaped.push('\u{fffd}'),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::outcome::{Failure, FailureKind};
    use crate::scenario::Scenario;

    fn outcome(seed: u64, failure: Option<Failure>) -> SeedOutcome {
        SeedOutcome {
            scenario: "smoke".to_string(),
            seed,
            failure,
            ..SeedOutcome::default()
        }
    }

    // One suite per scenario, one case per seed, and a failing seed's case carries its kind,
    // its message escaped, and the replay line.
    #[test]
    fn failing_seeds_become_failures_with_their_replay_line() {
        let scenario = Scenario::parse("", Path::new("scenarios/smoke.toml")).unwrap();
        let outcomes = [
            outcome(0, None),
            outcome(
                1,
                Some(Failure {
                    kind: FailureKind::Divergence,
                    crash_index: Some(0),
                    message: "key <a> & \"b\": expected 1, found 2\u{1}".to_string(),
                }),
            ),
        ];
        let summaries = [ScenarioSummary::from_outcomes(
            &scenario,
            &outcomes,
            Duration::from_millis(1500),
        )];
        let mut buffer = Vec::new();
        write(&mut buffer, &summaries, &outcomes, None).unwrap();
        let xml = String::from_utf8(buffer).unwrap();
        assert!(xml.contains(r#"<testsuites name="crashpoint" tests="2" failures="1""#));
        assert!(xml.contains(r#"<testsuite name="smoke" tests="2" failures="1" time="1.500">"#));
        assert!(xml.contains(r#"<testcase classname="crashpoint.smoke" name="seed 0"/>"#));
        assert!(xml.contains(r#"<failure type="divergence" message="key &lt;a&gt; &amp; &quot;b&quot;: expected 1, found 2"#));
        assert!(xml.contains("replay: cargo run --release -p crashpoint-sim -- replay"));
        assert!(!xml.contains('\u{1}'));
        assert_eq!(xml.matches("<testcase").count(), 2);
        assert_eq!(xml.matches("</testsuite>").count(), 1);
    }
}
