//! Where two reports differ in what a run determines, for `merge --compare`: a sweep split
//! over machines and merged must equal one run of the same seeds.
//!
//! Compared: the verdict (`passed`, `complete`, `seeds_requested`), the binary and canary, each
//! scenario's digest and seeds, each summary's counts, each seed's outcome (counters, faults,
//! failure, trace and final-state digests) and the missing, duplicate and conflicting seeds.
//! Not compared: wall-clock figures (`elapsed_seconds`, `checks_per_second`), which differ
//! from run to run, and what names a run rather than its results (scenario paths, `shard`,
//! `stopped`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::JsonReport;

/// A difference's values are cut to this many characters.
const VALUE_CHARACTERS_MAX: usize = 120;

/// The differences between `left` and `right` (named `left_name` and `right_name` in the
/// lines), at most `limit` lines, the last saying how many more there are. Empty: they agree.
pub fn differences(
    left_name: &str,
    left: &JsonReport,
    right_name: &str,
    right: &JsonReport,
    limit: usize,
) -> Vec<String> {
    let mut found = Found {
        names: [left_name, right_name],
        lines: Vec::new(),
        limit,
        more: 0,
    };
    found.values("report", &verdict(left), &verdict(right));
    found.keyed("scenario", &plan(left), &plan(right));
    found.keyed("summary", &summaries(left), &summaries(right));
    found.keyed("seed", &outcomes(left), &outcomes(right));
    if found.more > 0 {
        found
            .lines
            .push(format!("... and {} more differences", found.more));
    }
    found.lines
}

/// (scenario, strategy, seed) names a compared part.
type Key = (String, String, Option<u64>);

fn keyed(parts: impl Iterator<Item = (Key, Value)>) -> BTreeMap<Key, Value> {
    parts.collect()
}

fn verdict(report: &JsonReport) -> Value {
    serde_json::json!({
        "passed": report.passed,
        "complete": report.complete,
        "seeds_requested": report.seeds_requested,
        "binary": report.binary,
        "canary": report.canary,
        "missing_seeds": report.missing_seeds,
        "duplicate_seeds": report.duplicate_seeds,
        "conflicting_seeds": report.conflicting_seeds,
    })
}

fn plan(report: &JsonReport) -> BTreeMap<Key, Value> {
    keyed(report.scenarios.iter().map(|planned| {
        let key = (planned.scenario.clone(), planned.strategy.clone(), None);
        (
            key,
            without(planned, &["scenario", "strategy", "path", "shard"]),
        )
    }))
}

fn summaries(report: &JsonReport) -> BTreeMap<Key, Value> {
    keyed(report.summaries.iter().map(|summary| {
        let key = (summary.scenario.clone(), summary.strategy.clone(), None);
        (
            key,
            without(
                summary,
                &[
                    "scenario",
                    "strategy",
                    "path",
                    "elapsed_seconds",
                    "checks_per_second",
                ],
            ),
        )
    }))
}

fn outcomes(report: &JsonReport) -> BTreeMap<Key, Value> {
    keyed(report.outcomes.iter().map(|outcome| {
        let key = (
            outcome.scenario.clone(),
            outcome.strategy.clone(),
            Some(outcome.seed),
        );
        (key, without(outcome, &["scenario", "strategy", "seed"]))
    }))
}

/// `part` as a JSON object without `fields`.
fn without(part: &impl serde::Serialize, fields: &[&str]) -> Value {
    let mut value = serde_json::to_value(part).expect("report parts serialize");
    if let Value::Object(object) = &mut value {
        for field in fields {
            object.remove(*field);
        }
    }
    value
}

/// The differences found so far.
struct Found<'a> {
    names: [&'a str; 2],
    lines: Vec<String>,
    limit: usize,
    /// Differences past `limit`, counted but not described.
    more: u64,
}

impl Found<'_> {
    fn add(&mut self, line: String) {
        if self.lines.len() < self.limit {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    /// Compares parts by key: `smoke (sharp) seed 17`, or `smoke (sharp)` for keys without a
    /// seed, with `what` naming the kind of part a missing key is.
    fn keyed(&mut self, what: &str, left: &BTreeMap<Key, Value>, right: &BTreeMap<Key, Value>) {
        let mut keys: Vec<&Key> = left.keys().chain(right.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (scenario, strategy, seed) = key;
            let place = match seed {
                Some(seed) => format!("{scenario} ({strategy}) seed {seed}"),
                None => format!("{what} {scenario} ({strategy})"),
            };
            match (left.get(key), right.get(key)) {
                (Some(left), Some(right)) => self.values(&place, left, right),
                (Some(_), None) => self.add(format!("{place}: only in {}", self.names[0])),
                (None, Some(_)) => self.add(format!("{place}: only in {}", self.names[1])),
                (None, None) => unreachable!("the key came from one side"),
            }
        }
    }

    /// Compares two values field by field, naming each differing field by its dotted path.
    fn values(&mut self, place: &str, left: &Value, right: &Value) {
        self.walk(place, "", left, right);
    }

    fn walk(&mut self, place: &str, path: &str, left: &Value, right: &Value) {
        if left == right {
            return;
        }
        match (left, right) {
            (Value::Object(left), Value::Object(right)) => {
                let mut fields: Vec<&String> = left.keys().chain(right.keys()).collect();
                fields.sort();
                fields.dedup();
                for field in fields {
                    let inner = if path.is_empty() {
                        field.clone()
                    } else {
                        format!("{path}.{field}")
                    };
                    let missing = Value::Null;
                    self.walk(
                        place,
                        &inner,
                        left.get(field).unwrap_or(&missing),
                        right.get(field).unwrap_or(&missing),
                    );
                }
            }
            _ => {
                let field = if path.is_empty() {
                    String::new()
                } else {
                    format!(" {path}")
                };
                self.add(format!(
                    "{place}{field}: {} in {}, {} in {}",
                    shown(left),
                    self.names[0],
                    shown(right),
                    self.names[1]
                ));
            }
        }
    }
}

/// A value as compact JSON, cut to [`VALUE_CHARACTERS_MAX`] characters.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= VALUE_CHARACTERS_MAX {
        return text;
    }
    let cut: String = text.chars().take(VALUE_CHARACTERS_MAX).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::path::PathBuf;

    use super::*;
    use crate::outcome::{Failure, FailureKind, SeedOutcome};
    use crate::report::{Binary, PlannedScenario, ScenarioSummary};

    fn report(elapsed_seconds: f64) -> JsonReport<'static> {
        let outcomes: Vec<SeedOutcome> = (0..3)
            .map(|seed| SeedOutcome {
                scenario: "smoke".to_string(),
                strategy: "sharp".to_string(),
                seed,
                crashes: 3,
                trace_digest: seed + 100,
                ..SeedOutcome::default()
            })
            .collect();
        let path = PathBuf::from("scenarios/smoke.toml");
        let mut summary = ScenarioSummary::empty("smoke", "sharp", &path);
        outcomes.iter().for_each(|outcome| summary.add(outcome));
        summary.set_elapsed(elapsed_seconds);
        JsonReport {
            passed: true,
            complete: true,
            stopped: None,
            seeds_requested: 3,
            binary: Binary::current(),
            canary: None,
            scenarios: Cow::Owned(vec![PlannedScenario {
                scenario: "smoke".to_string(),
                strategy: "sharp".to_string(),
                path,
                digest: "d".to_string(),
                seed_ranges: vec!["0..3".parse().unwrap()],
                shard: None,
                seeds_requested: 3,
            }]),
            summaries: Cow::Owned(vec![summary]),
            outcomes: Cow::Owned(outcomes),
            missing_seeds: Vec::new(),
            duplicate_seeds: Vec::new(),
            conflicting_seeds: Vec::new(),
        }
    }

    // Two runs that differ only in wall-clock figures, paths and shard names agree.
    #[test]
    fn wall_clock_and_paths_are_not_compared() {
        let mut other = report(9.5);
        other.scenarios.to_mut()[0].path = PathBuf::from("/elsewhere/smoke.toml");
        other.scenarios.to_mut()[0].shard = Some("0/1".to_string());
        other.summaries.to_mut()[0].path = PathBuf::from("/elsewhere/smoke.toml");
        assert_eq!(
            differences("a", &report(1.0), "b", &other, 10),
            Vec::<String>::new()
        );
    }

    // A differing outcome is named by its seed and field, with both values; a seed only one
    // side ran is named too; the summary's counts follow.
    #[test]
    fn differing_outcomes_are_named_by_seed_and_field() {
        let mut other = report(1.0);
        other.outcomes.to_mut()[1].failure = Some(Failure {
            kind: FailureKind::Hang,
            crash_index: None,
            message: "slow".to_string(),
        });
        other.outcomes.to_mut()[2].trace_digest = 7;
        other.outcomes.to_mut().push(SeedOutcome {
            scenario: "smoke".to_string(),
            strategy: "sharp".to_string(),
            seed: 3,
            ..SeedOutcome::default()
        });
        let found = differences("merged", &report(1.0), "single.json", &other, 10);
        assert!(
            found.contains(&"smoke (sharp) seed 1 failure: null in merged, {\"crash_index\":null,\"kind\":\"hang\",\"message\":\"slow\"} in single.json".to_string()),
            "{found:#?}"
        );
        assert!(
            found.contains(
                &"smoke (sharp) seed 2 trace_digest: 102 in merged, 7 in single.json".to_string()
            ),
            "{found:#?}"
        );
        assert!(
            found.contains(&"smoke (sharp) seed 3: only in single.json".to_string()),
            "{found:#?}"
        );
        let limited = differences("merged", &report(1.0), "single.json", &other, 1);
        assert_eq!(limited.len(), 2);
        assert!(limited[1].starts_with("... and "), "{limited:?}");
    }
}
