//! `merge`: joins the JSON reports of a sweep's shards, any number in any order, into the
//! report of one run.
//!
//! Reports merge only if they belong together: one binary (version and git hash), one canary,
//! and for each scenario name the same strategies with the same scenario digests. Anything else
//! is refused with a [`MergeError`], since the result would describe no run at all. Reports
//! that belong together may still not add up: for each scenario and strategy the seeds asked
//! for are the union of the reports' seed ranges, and those that no report ran are
//! `missing_seeds` (a lost or interrupted shard); seeds that more than one report ran are
//! `duplicate_seeds` (a shard given twice, overlapping ranges), of which the first report's
//! outcome is kept, and duplicates whose outcomes differ are also `conflicting_seeds`. Either
//! leaves the merged report incomplete.
//!
//! Seed lists are arithmetic progressions: a lost shard `K/N` of a range is one progression of
//! step N, so the lists stay short, and they never hold more entries than there were outcomes
//! and ranges to read.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{JsonReport, PlannedScenario, ScenarioSummary};
use crate::cli::SeedRange;
use crate::outcome::SeedOutcome;

/// A report and the name (its file) that messages call it by.
pub struct NamedReport {
    pub name: String,
    pub report: JsonReport<'static>,
}

/// Reports that do not belong together.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge")]
    Nothing,
    #[error(
        "{other} was written by {other_binary} but {first} by {first_binary}: reports of \
         different binaries do not merge (run every shard with one build)"
    )]
    Binaries {
        first: String,
        /// The binary, as `crashpoint 0.1.0 (git 1a2b3c4d5e6f)`.
        first_binary: String,
        other: String,
        other_binary: String,
    },
    #[error(
        "{other} ran with canary {other_canary} but {first} with {first_canary}: reports of \
         different planted bugs do not merge"
    )]
    Canaries {
        first: String,
        first_canary: String,
        other: String,
        other_canary: String,
    },
    #[error(
        "scenario {scenario}: {other} ran it with the strategies {other_strategies} but {first} \
         with {first_strategies}: reports of different strategies do not merge"
    )]
    Strategies {
        scenario: String,
        first: String,
        first_strategies: String,
        other: String,
        other_strategies: String,
    },
    #[error(
        "scenario {scenario}: {other} ran a different scenario than {first} (digest \
         {other_digest}, not {first_digest}): reports of different scenario files do not merge"
    )]
    Digests {
        /// The scenario and strategy, as `smoke (fuzzy)`.
        scenario: String,
        first: String,
        first_digest: String,
        other: String,
        other_digest: String,
    },
    #[error(
        "{report}: seed {seed} ran {scenario} ({strategy}), which the report's `scenarios` does \
         not list"
    )]
    Unplanned {
        report: String,
        scenario: String,
        strategy: String,
        seed: u64,
    },
}

/// Seeds `first`, `first + step`, ..., `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progression {
    pub first: u64,
    pub last: u64,
    /// At least 1.
    pub step: u64,
}

impl Progression {
    pub fn count(&self) -> u64 {
        (self.last - self.first) / self.step + 1
    }
}

/// `7`; `3..10` as `--seeds` spells a run of consecutive seeds; `2..=59 step 3` otherwise.
impl fmt::Display for Progression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.step == 1 {
            let range = SeedRange {
                start: self.first,
                last: self.last,
            };
            write!(formatter, "{range}")
        } else {
            write!(
                formatter,
                "{}..={} step {}",
                self.first, self.last, self.step
            )
        }
    }
}

/// Some seeds of one scenario and strategy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedGroup {
    pub scenario: String,
    pub strategy: String,
    /// How many seeds `seeds` holds.
    pub count: u64,
    /// The seeds in increasing order, as progressions.
    pub seeds: Vec<Progression>,
}

/// Progressions a line shows before saying how many more there are.
const PROGRESSIONS_SHOWN: usize = 4;

/// `smoke (sharp): 20 seeds: 2..=59 step 3`, at most [`PROGRESSIONS_SHOWN`] progressions.
impl fmt::Display for SeedGroup {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.count == 1 { "seed" } else { "seeds" };
        write!(
            formatter,
            "{} ({}): {} {noun}: ",
            self.scenario, self.strategy, self.count
        )?;
        let shown: Vec<String> = self
            .seeds
            .iter()
            .take(PROGRESSIONS_SHOWN)
            .map(Progression::to_string)
            .collect();
        write!(formatter, "{}", shown.join(", "))?;
        if self.seeds.len() > PROGRESSIONS_SHOWN {
            write!(
                formatter,
                " and {} more runs",
                self.seeds.len() - PROGRESSIONS_SHOWN
            )?;
        }
        Ok(())
    }
}

/// Builds a [`SeedGroup`]'s progressions from seeds and runs of seeds in increasing order.
#[derive(Default)]
struct Progressions {
    list: Vec<Progression>,
    count: u64,
}

impl Progressions {
    /// Adds the seeds `first..=last`, all greater than any added before.
    fn push_run(&mut self, first: u64, last: u64) {
        debug_assert!(first <= last);
        debug_assert!(self
            .list
            .last()
            .is_none_or(|previous| previous.last < first));
        self.count = self.count.saturating_add(last - first).saturating_add(1);
        if first == last {
            if let Some(previous) = self.list.last_mut() {
                if previous.first == previous.last {
                    // A lone seed and this one start a progression of whatever step they have.
                    previous.step = first - previous.last;
                    previous.last = first;
                    return;
                }
                if first - previous.last == previous.step {
                    previous.last = first;
                    return;
                }
            }
        }
        self.list.push(Progression {
            first,
            last,
            step: 1,
        });
    }

    fn into_group(self, planned: &PlannedScenario) -> Option<SeedGroup> {
        (self.count > 0).then(|| SeedGroup {
            scenario: planned.scenario.clone(),
            strategy: planned.strategy.clone(),
            count: self.count,
            seeds: self.list,
        })
    }
}

/// Ranges sorted, with overlapping and adjacent ones joined.
fn union(ranges: impl IntoIterator<Item = SeedRange>) -> Vec<SeedRange> {
    let mut sorted: Vec<SeedRange> = ranges.into_iter().collect();
    sorted.sort();
    let mut joined: Vec<SeedRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match joined.last_mut() {
            Some(previous) if previous.last.saturating_add(1) >= range.start => {
                previous.last = previous.last.max(range.last);
            }
            _ => joined.push(range),
        }
    }
    joined
}

/// What the merge gathers for one scenario and strategy.
#[derive(Default)]
struct Group {
    /// Each seed that ran, with the first outcome read for it.
    outcomes: BTreeMap<u64, SeedOutcome>,
    duplicates: BTreeSet<u64>,
    conflicts: BTreeSet<u64>,
    /// Wall-clock seconds the reports spent on it, summed.
    elapsed_seconds: f64,
}

impl Group {
    fn add(&mut self, outcome: &SeedOutcome) {
        match self.outcomes.entry(outcome.seed) {
            Entry::Vacant(vacant) => {
                vacant.insert(outcome.clone());
            }
            Entry::Occupied(occupied) => {
                self.duplicates.insert(outcome.seed);
                if occupied.get() != outcome {
                    self.conflicts.insert(outcome.seed);
                }
            }
        }
    }

    /// The summary of the seeds that ran, over the time the reports spent on them.
    fn summary(&self, planned: &PlannedScenario) -> ScenarioSummary {
        let mut summary =
            ScenarioSummary::empty(&planned.scenario, &planned.strategy, &planned.path);
        for outcome in self.outcomes.values() {
            summary.add(outcome);
        }
        summary.set_elapsed(self.elapsed_seconds);
        summary
    }

    /// The seeds of `ranges` (sorted, disjoint) that did not run.
    fn missing(&self, ranges: &[SeedRange]) -> Progressions {
        let mut missing = Progressions::default();
        for range in ranges {
            // The next seed of the range not yet accounted for; None past the last u64.
            let mut next = Some(range.start);
            for &seed in self
                .outcomes
                .range(range.start..=range.last)
                .map(|(seed, _)| seed)
            {
                let expected = next.expect("seeds in the range come before its end");
                if seed > expected {
                    missing.push_run(expected, seed - 1);
                }
                next = seed.checked_add(1);
            }
            if let Some(expected) = next.filter(|expected| *expected <= range.last) {
                missing.push_run(expected, range.last);
            }
        }
        missing
    }
}

/// Merges reports that belong together (see the module documentation).
pub fn merge(reports: &[NamedReport]) -> Result<JsonReport<'static>, MergeError> {
    let first = reports.first().ok_or(MergeError::Nothing)?;
    for other in &reports[1..] {
        check_binary(first, other)?;
        check_canary(first, other)?;
    }
    check_scenarios(reports)?;
    let plan = merged_plan(reports);
    let groups = gather(reports, &plan)?;
    let mut merged = JsonReport {
        passed: false,
        complete: false,
        stopped: None,
        seeds_requested: 0,
        binary: first.report.binary.clone(),
        canary: first.report.canary.clone(),
        scenarios: Cow::Owned(Vec::new()),
        summaries: Cow::Owned(Vec::new()),
        outcomes: Cow::Owned(Vec::new()),
        missing_seeds: Vec::new(),
        duplicate_seeds: Vec::new(),
        conflicting_seeds: Vec::new(),
    };
    let (mut summaries, mut outcomes) = (Vec::new(), Vec::new());
    for (planned, group) in plan.iter().zip(groups) {
        merged.seeds_requested = merged
            .seeds_requested
            .saturating_add(planned.seeds_requested);
        merged
            .missing_seeds
            .extend(group.missing(&planned.seed_ranges).into_group(planned));
        merged
            .duplicate_seeds
            .extend(progressions(&group.duplicates).into_group(planned));
        merged
            .conflicting_seeds
            .extend(progressions(&group.conflicts).into_group(planned));
        if !group.outcomes.is_empty() {
            summaries.push(group.summary(planned));
            outcomes.extend(group.outcomes.into_values());
        }
    }
    merged.complete = merged.missing_seeds.is_empty() && merged.duplicate_seeds.is_empty();
    merged.passed = merged.complete && outcomes.iter().all(|outcome| outcome.failure.is_none());
    merged.scenarios = Cow::Owned(plan);
    merged.summaries = Cow::Owned(summaries);
    merged.outcomes = Cow::Owned(outcomes);
    Ok(merged)
}

/// Every report's outcomes and wall-clock time, gathered by the scenario and strategy of
/// `plan` they belong to.
fn gather(reports: &[NamedReport], plan: &[PlannedScenario]) -> Result<Vec<Group>, MergeError> {
    let position: HashMap<(&str, &str), usize> = plan
        .iter()
        .enumerate()
        .map(|(index, planned)| {
            (
                (planned.scenario.as_str(), planned.strategy.as_str()),
                index,
            )
        })
        .collect();
    let mut groups: Vec<Group> = plan.iter().map(|_| Group::default()).collect();
    for named in reports {
        let report = &named.report;
        for summary in report.summaries.iter() {
            let key = (summary.scenario.as_str(), summary.strategy.as_str());
            if let Some(&index) = position.get(&key) {
                groups[index].elapsed_seconds += summary.elapsed_seconds;
            }
        }
        for outcome in report.outcomes.iter() {
            let key = (outcome.scenario.as_str(), outcome.strategy.as_str());
            let index = *position.get(&key).ok_or_else(|| MergeError::Unplanned {
                report: named.name.clone(),
                scenario: outcome.scenario.clone(),
                strategy: outcome.strategy.clone(),
                seed: outcome.seed,
            })?;
            groups[index].add(outcome);
        }
    }
    Ok(groups)
}

fn progressions(seeds: &BTreeSet<u64>) -> Progressions {
    let mut progressions = Progressions::default();
    for &seed in seeds {
        progressions.push_run(seed, seed);
    }
    progressions
}

fn check_binary(first: &NamedReport, other: &NamedReport) -> Result<(), MergeError> {
    if other.report.binary == first.report.binary {
        return Ok(());
    }
    Err(MergeError::Binaries {
        first: first.name.clone(),
        first_binary: first.report.binary.to_string(),
        other: other.name.clone(),
        other_binary: other.report.binary.to_string(),
    })
}

fn check_canary(first: &NamedReport, other: &NamedReport) -> Result<(), MergeError> {
    if other.report.canary == first.report.canary {
        return Ok(());
    }
    let name = |canary: &Option<String>| canary.clone().unwrap_or_else(|| "none".to_string());
    Err(MergeError::Canaries {
        first: first.name.clone(),
        first_canary: name(&first.report.canary),
        other: other.name.clone(),
        other_canary: name(&other.report.canary),
    })
}

/// Every report that names a scenario ran it with the same strategies and the same digests.
fn check_scenarios(reports: &[NamedReport]) -> Result<(), MergeError> {
    // Scenario name -> (the first report naming it, its strategies with their digests).
    let mut seen: BTreeMap<&str, (&str, BTreeMap<&str, &str>)> = BTreeMap::new();
    for named in reports {
        let mut mine: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for planned in named.report.scenarios.iter() {
            mine.entry(&planned.scenario)
                .or_default()
                .insert(&planned.strategy, &planned.digest);
        }
        for (scenario, strategies) in mine {
            let Some((first, first_strategies)) = seen.get(scenario) else {
                seen.insert(scenario, (&named.name, strategies));
                continue;
            };
            if !first_strategies.keys().eq(strategies.keys()) {
                let list =
                    |map: &BTreeMap<&str, &str>| map.keys().copied().collect::<Vec<_>>().join(", ");
                return Err(MergeError::Strategies {
                    scenario: scenario.to_string(),
                    first: first.to_string(),
                    first_strategies: list(first_strategies),
                    other: named.name.clone(),
                    other_strategies: list(&strategies),
                });
            }
            for (strategy, digest) in &strategies {
                let first_digest = first_strategies[strategy];
                if first_digest != *digest {
                    return Err(MergeError::Digests {
                        scenario: format!("{scenario} ({strategy})"),
                        first: first.to_string(),
                        first_digest: first_digest.to_string(),
                        other: named.name.clone(),
                        other_digest: digest.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Every scenario and strategy of the reports, in the order they first appear, each asked for
/// the union of the reports' seed ranges.
fn merged_plan(reports: &[NamedReport]) -> Vec<PlannedScenario> {
    let mut plan: Vec<PlannedScenario> = Vec::new();
    for named in reports {
        for planned in named.report.scenarios.iter() {
            let same = |entry: &&mut PlannedScenario| {
                entry.scenario == planned.scenario && entry.strategy == planned.strategy
            };
            match plan.iter_mut().find(same) {
                Some(entry) => entry.seed_ranges.extend(&planned.seed_ranges),
                None => plan.push(planned.clone()),
            }
        }
    }
    for entry in &mut plan {
        entry.seed_ranges = union(std::mem::take(&mut entry.seed_ranges));
        entry.shard = None;
        entry.seeds_requested = entry
            .seed_ranges
            .iter()
            .fold(0u64, |sum, range| sum.saturating_add(range.count()));
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::outcome::{Failure, FailureKind};
    use crate::report::Binary;

    fn planned(
        scenario: &str,
        strategy: &str,
        range: &str,
        shard: Option<&str>,
    ) -> PlannedScenario {
        PlannedScenario {
            scenario: scenario.to_string(),
            strategy: strategy.to_string(),
            path: PathBuf::from(format!("scenarios/{scenario}.toml")),
            digest: format!("{scenario}-{strategy}-digest"),
            seed_ranges: vec![range.parse().unwrap()],
            shard: shard.map(str::to_string),
            seeds_requested: 0,
        }
    }

    fn outcome(scenario: &str, strategy: &str, seed: u64) -> SeedOutcome {
        SeedOutcome {
            scenario: scenario.to_string(),
            strategy: strategy.to_string(),
            seed,
            crashes: 1 + seed % 3,
            states_checked: 2,
            trace_digest: seed.wrapping_mul(0x9e37),
            failure: (seed % 7 == 3).then(|| Failure {
                kind: FailureKind::Divergence,
                crash_index: Some(0),
                message: format!("seed {seed}"),
            }),
            ..SeedOutcome::default()
        }
    }

    /// The report shard `index` of `count` of `range` would write for smoke under two strategies.
    fn shard(name: &str, range: &str, index: u64, count: u64) -> NamedReport {
        let parsed: SeedRange = range.parse().unwrap();
        let shard_name = format!("{index}/{count}");
        let mut scenarios = Vec::new();
        let mut summaries = Vec::new();
        let mut outcomes = Vec::new();
        for strategy in ["sharp", "fuzzy"] {
            let mut plan = planned("smoke", strategy, range, Some(&shard_name));
            let mine: Vec<SeedOutcome> = (parsed.start..=parsed.last)
                .filter(|seed| seed % count == index)
                .map(|seed| outcome("smoke", strategy, seed))
                .collect();
            plan.seeds_requested = mine.len() as u64;
            let mut summary = ScenarioSummary::empty("smoke", strategy, &plan.path);
            mine.iter().for_each(|outcome| summary.add(outcome));
            summary.set_elapsed(1.0);
            scenarios.push(plan);
            summaries.push(summary);
            outcomes.extend(mine);
        }
        let report = JsonReport {
            passed: false,
            complete: true,
            stopped: None,
            seeds_requested: outcomes.len() as u64,
            binary: Binary::current(),
            canary: None,
            scenarios: Cow::Owned(scenarios),
            summaries: Cow::Owned(summaries),
            outcomes: Cow::Owned(outcomes),
            missing_seeds: Vec::new(),
            duplicate_seeds: Vec::new(),
            conflicting_seeds: Vec::new(),
        };
        NamedReport {
            name: name.to_string(),
            report,
        }
    }

    fn seeds_of(report: &JsonReport, strategy: &str) -> Vec<u64> {
        report
            .outcomes
            .iter()
            .filter(|outcome| outcome.strategy == strategy)
            .map(|outcome| outcome.seed)
            .collect()
    }

    // Three shards in any order merge into one report holding every seed once, in order, with
    // summaries summed over the shards and the plan's range whole again.
    #[test]
    fn shards_in_any_order_merge_into_the_whole_range() {
        let shards = [
            shard("b", "0..60", 2, 3),
            shard("a", "0..60", 0, 3),
            shard("c", "0..60", 1, 3),
        ];
        let merged = merge(&shards).unwrap();
        assert!(merged.complete);
        assert!(!merged.passed, "seeds 3, 10, ... fail");
        assert_eq!(merged.seeds_requested, 120);
        assert_eq!(seeds_of(&merged, "sharp"), (0..60).collect::<Vec<_>>());
        assert_eq!(seeds_of(&merged, "fuzzy"), (0..60).collect::<Vec<_>>());
        assert_eq!(merged.scenarios.len(), 2);
        assert_eq!(merged.scenarios[0].shard, None);
        assert_eq!(
            merged.scenarios[0].seed_ranges,
            vec!["0..60".parse().unwrap()]
        );
        assert_eq!(merged.summaries[0].seeds, 60);
        assert_eq!(merged.summaries[0].failures, 9);
        assert_eq!(merged.summaries[0].elapsed_seconds, 3.0);
        let reversed = merge(&[
            shard("c", "0..60", 1, 3),
            shard("a", "0..60", 0, 3),
            shard("b", "0..60", 2, 3),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_value(&reversed).unwrap(),
            serde_json::to_value(&merged).unwrap()
        );
    }

    // A lost shard is reported as one progression per strategy; a shard given twice as
    // duplicates (kept once), which agree, so none conflict.
    #[test]
    fn missing_and_duplicate_shards_are_named() {
        let merged = merge(&[shard("a", "0..60", 0, 3), shard("b", "0..60", 1, 3)]).unwrap();
        assert!(!merged.complete);
        assert!(!merged.passed);
        assert_eq!(merged.missing_seeds.len(), 2);
        let missing = &merged.missing_seeds[0];
        assert_eq!(missing.count, 20);
        assert_eq!(
            missing.seeds,
            vec![Progression {
                first: 2,
                last: 59,
                step: 3
            }]
        );
        assert_eq!(
            missing.to_string(),
            "smoke (sharp): 20 seeds: 2..=59 step 3"
        );

        let twice = merge(&[
            shard("a", "0..60", 0, 3),
            shard("b", "0..60", 1, 3),
            shard("c", "0..60", 2, 3),
            shard("c again", "0..60", 2, 3),
        ])
        .unwrap();
        assert!(!twice.complete);
        assert!(twice.missing_seeds.is_empty());
        assert_eq!(twice.duplicate_seeds[0].count, 20);
        assert!(twice.conflicting_seeds.is_empty());
        assert_eq!(seeds_of(&twice, "sharp").len(), 60);
    }

    // A seed that ran twice with different outcomes is a conflict as well as a duplicate.
    #[test]
    fn duplicates_that_differ_conflict() {
        let mut other = shard("b", "0..6", 0, 1);
        let outcomes = other.report.outcomes.to_mut();
        outcomes[4].trace_digest ^= 1;
        let merged = merge(&[shard("a", "0..6", 0, 1), other]).unwrap();
        assert_eq!(merged.duplicate_seeds[0].count, 6);
        assert_eq!(
            merged.conflicting_seeds[0].to_string(),
            "smoke (sharp): 1 seed: 4"
        );
    }

    // Reports split by range rather than by shard merge too; a range nobody reported cannot be
    // missed, but a hole between reported ranges of one report is.
    #[test]
    fn reports_of_adjacent_ranges_merge() {
        let merged = merge(&[shard("a", "0..30", 0, 1), shard("b", "30..60", 0, 1)]).unwrap();
        assert!(merged.complete);
        assert_eq!(
            merged.scenarios[0].seed_ranges,
            vec!["0..60".parse().unwrap()]
        );
        let mut holed = shard("a", "0..30", 0, 1);
        holed
            .report
            .outcomes
            .to_mut()
            .retain(|outcome| outcome.seed != 0 && outcome.seed != 29);
        let merged = merge(&[holed]).unwrap();
        assert_eq!(
            merged.missing_seeds[0].to_string(),
            "smoke (sharp): 2 seeds: 0..=29 step 29"
        );
    }

    // Reports of different binaries, canaries, strategies or scenario files are refused.
    #[test]
    fn reports_that_do_not_belong_together_are_refused() {
        let mut other = shard("b", "0..60", 1, 3);
        other.report.binary.git_hash = "another".to_string();
        let refused = merge(&[shard("a", "0..60", 0, 3), other]).unwrap_err();
        assert!(matches!(refused, MergeError::Binaries { .. }), "{refused}");

        let mut other = shard("b", "0..60", 1, 3);
        other.report.canary = Some("skip-checksum".to_string());
        let refused = merge(&[shard("a", "0..60", 0, 3), other]).unwrap_err();
        assert!(matches!(refused, MergeError::Canaries { .. }), "{refused}");

        let mut other = shard("b", "0..60", 1, 3);
        other
            .report
            .scenarios
            .to_mut()
            .retain(|planned| planned.strategy == "sharp");
        other
            .report
            .outcomes
            .to_mut()
            .retain(|outcome| outcome.strategy == "sharp");
        let refused = merge(&[shard("a", "0..60", 0, 3), other]).unwrap_err();
        assert!(
            matches!(refused, MergeError::Strategies { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("fuzzy, sharp"), "{refused}");

        let mut other = shard("b", "0..60", 1, 3);
        other.report.scenarios.to_mut()[1].digest = "edited".to_string();
        let refused = merge(&[shard("a", "0..60", 0, 3), other]).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("scenario smoke (fuzzy): b ran a different scenario"),
            "{refused}"
        );

        let mut other = shard("b", "0..60", 1, 3);
        other.report.outcomes.to_mut()[0].scenario = "swarm".to_string();
        let refused = merge(&[other]).unwrap_err();
        assert!(matches!(refused, MergeError::Unplanned { .. }), "{refused}");
        assert_eq!(merge(&[]).unwrap_err(), MergeError::Nothing);
    }

    // Runs of consecutive seeds print as --seeds spells them, lone seeds alone, strides with a
    // step; the largest seeds do not overflow.
    #[test]
    fn progressions_compress_seed_lists() {
        let mut list = Progressions::default();
        list.push_run(1, 4);
        list.push_run(7, 7);
        list.push_run(9, 9);
        list.push_run(11, 11);
        list.push_run(20, 20);
        list.push_run(u64::MAX - 1, u64::MAX);
        let shown: Vec<String> = list.list.iter().map(Progression::to_string).collect();
        assert_eq!(
            shown,
            [
                "1..5",
                "7..=11 step 2",
                "20",
                "18446744073709551614..=18446744073709551615"
            ]
        );
        assert_eq!(list.count, 4 + 3 + 1 + 2);
        let group = Group::default();
        let missing = group.missing(&["18446744073709551610..=18446744073709551615"
            .parse()
            .unwrap()]);
        assert_eq!(missing.count, 6);
        assert_eq!(
            union([
                "5..9".parse().unwrap(),
                "0..5".parse().unwrap(),
                "20..30".parse().unwrap(),
                "7..12".parse().unwrap()
            ]),
            vec!["0..12".parse().unwrap(), "20..30".parse().unwrap()]
        );
    }
}
