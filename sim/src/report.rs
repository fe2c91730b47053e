//! What the command line prints: the per-scenario summary table, the line that replays a
//! failing seed, one seed's details for `replay`, and the JSON report of `run --json` and
//! `merge --json`.
//!
//! Everything here is pure formatting over [`SeedOutcome`]s so it can be tested without running
//! the engine; wall-clock time is measured by the caller and passed in. `provenance` says which
//! binary and scenario files a report came from, `merge` joins the reports of shards into one,
//! `compare` finds where two reports differ in what a run determines, and `latency` prints
//! the checkpoint measures of `run --latency` and the `compare` command.

mod compare;
mod latency;
mod merge;
mod provenance;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::SeedRange;
use crate::outcome::{Failure, SeedOutcome};
use crate::scenario::Scenario;

pub use compare::differences;
pub use latency::LatencyTable;
pub use merge::{merge, MergeError, NamedReport, Progression, SeedGroup};
pub use provenance::{scenario_digest, Binary};

/// Totals over the seeds of one scenario in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    /// The checkpoint strategy the seeds ran with.
    pub strategy: String,
    pub path: PathBuf,
    pub seeds: u64,
    pub crashes: u64,
    pub recoveries: u64,
    pub states_checked: u64,
    pub transactions: u64,
    pub io_ops: u64,
    /// Injected faults by kind name, summed over seeds.
    pub faults: BTreeMap<String, u64>,
    /// Seeds whose run failed a check.
    pub failures: u64,
    /// Wall-clock time spent on this scenario's seeds, measured outside the seeds.
    pub elapsed_seconds: f64,
    /// `states_checked / elapsed_seconds`; 0 when no time was measured.
    pub checks_per_second: f64,
    /// Checkpoints by trigger, blocking windows, commit latency, write amplification and redo
    /// at recovery, summed over seeds (`run --latency`, `compare`).
    #[serde(default)]
    pub measures: crate::measures::Measures,
}

impl ScenarioSummary {
    pub fn from_outcomes(scenario: &Scenario, outcomes: &[SeedOutcome], elapsed: Duration) -> Self {
        let mut summary =
            ScenarioSummary::empty(&scenario.name, scenario.strategy_label(), &scenario.path);
        for outcome in outcomes {
            summary.add(outcome);
        }
        summary.set_elapsed(elapsed.as_secs_f64());
        summary
    }

    /// A summary of no seeds yet.
    pub fn empty(scenario: &str, strategy: &str, path: &Path) -> Self {
        ScenarioSummary {
            scenario: scenario.to_string(),
            strategy: strategy.to_string(),
            path: path.to_path_buf(),
            ..ScenarioSummary::default()
        }
    }

    /// Counts one more seed.
    pub fn add(&mut self, outcome: &SeedOutcome) {
        self.seeds += 1;
        self.crashes += outcome.crashes;
        self.recoveries += outcome.recoveries;
        self.states_checked += outcome.states_checked;
        self.transactions += outcome.transactions;
        self.io_ops += outcome.io_ops;
        add_faults(&mut self.faults, &outcome.faults);
        self.failures += u64::from(outcome.failure.is_some());
        self.measures.add(&outcome.measures);
    }

    /// Sets the wall-clock time the seeds took, and so the checks per second.
    pub fn set_elapsed(&mut self, seconds: f64) {
        self.elapsed_seconds = seconds;
        self.checks_per_second = rate(self.states_checked, seconds);
    }

    /// The sum of several summaries, named `total`.
    pub fn total(summaries: &[ScenarioSummary]) -> Self {
        let mut total = ScenarioSummary {
            scenario: "total".to_string(),
            ..ScenarioSummary::default()
        };
        for summary in summaries {
            total.seeds += summary.seeds;
            total.crashes += summary.crashes;
            total.recoveries += summary.recoveries;
            total.states_checked += summary.states_checked;
            total.transactions += summary.transactions;
            total.io_ops += summary.io_ops;
            add_faults(&mut total.faults, &summary.faults);
            total.failures += summary.failures;
            total.measures.add(&summary.measures);
            total.elapsed_seconds += summary.elapsed_seconds;
        }
        total.checks_per_second = rate(total.states_checked, total.elapsed_seconds);
        total
    }
}

fn add_faults(into: &mut BTreeMap<String, u64>, faults: &BTreeMap<String, u64>) {
    for (kind, count) in faults {
        *into.entry(kind.clone()).or_default() += count;
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Column widths shared by the header and the rows.
const NAME_WIDTH: usize = 24;
const STRATEGY_WIDTH: usize = 12;

/// One table row; the header is [`SummaryTable`]'s.
impl fmt::Display for ScenarioSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:<NAME_WIDTH$} {:<STRATEGY_WIDTH$} {:>7} {:>8} {:>10} {:>8} {:>8} {:>10.0}  {}",
            self.scenario,
            self.strategy,
            self.seeds,
            self.crashes,
            self.recoveries,
            self.states_checked,
            self.failures,
            self.checks_per_second,
            format_faults(&self.faults),
        )
    }
}

/// The summary table of a run: a header, one row per scenario and, for several scenarios, a
/// total row.
pub struct SummaryTable<'a> {
    pub summaries: &'a [ScenarioSummary],
}

impl fmt::Display for SummaryTable<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "{:<NAME_WIDTH$} {:<STRATEGY_WIDTH$} {:>7} {:>8} {:>10} {:>8} {:>8} {:>10}  faults injected",
            "scenario",
            "strategy",
            "seeds",
            "crashes",
            "recoveries",
            "states",
            "failures",
            "checks/s",
        )?;
        for summary in self.summaries {
            writeln!(formatter, "{summary}")?;
        }
        if self.summaries.len() > 1 {
            writeln!(formatter, "{}", ScenarioSummary::total(self.summaries))?;
        }
        Ok(())
    }
}

/// `torn-write=12 lying-fsync=3`, zero counts left out; `none` when nothing was injected.
pub fn format_faults(faults: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = faults
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

/// `after crash 2` or, for a failure outside any crash, `in the quiet phase`.
fn failure_place(failure: &Failure) -> String {
    match failure.crash_index {
        Some(index) => format!("after crash {index}"),
        None => "in the quiet phase".to_string(),
    }
}

/// The two lines a failing seed prints: what failed, and the command that replays it.
///
/// The message is folded onto one line so each failure stays one grep-able line.
pub fn failure_lines(
    outcome: &SeedOutcome,
    failure: &Failure,
    scenario_path: &Path,
    canary: Option<&str>,
) -> String {
    let message = failure.message.lines().collect::<Vec<_>>().join(" | ");
    // Another subject than crashpoint names itself here, and its scenario has no strategy.
    let subject = crate::subjects::SubjectName::ALL
        .into_iter()
        .find(|subject| !subject.is_dedicated() && subject.name() == outcome.strategy);
    let (shown, strategy) = match subject {
        Some(subject) => (subject.name(), None),
        None => {
            let strategy = crashpoint::Strategy::from_name(&outcome.strategy).unwrap_or_default();
            (strategy.name(), Some(strategy))
        }
    };
    let replay = replay_command(scenario_path, outcome.seed, strategy, canary);
    format!(
        "FAIL {} ({}) seed {}: {} {}: {}\n  replay: {}",
        outcome.scenario,
        shown,
        outcome.seed,
        failure.kind.name(),
        failure_place(failure),
        message,
        replay,
    )
}

/// The command that reruns one seed. It names the package so it works from anywhere in the
/// workspace, and turns the `canary` feature on when a canary is set, since the planted bugs are
/// compiled only with it. `strategy` is None for another subject's scenario, which has none
/// ([`crate::scenario::Scenario::replay_strategy`]).
pub fn replay_command(
    scenario_path: &Path,
    seed: u64,
    strategy: Option<crashpoint::Strategy>,
    canary: Option<&str>,
) -> String {
    let mut command = String::from("cargo run --release -p crashpoint-sim");
    if canary.is_some() {
        command.push_str(" --features canary");
    }
    command.push_str(&format!(
        " -- replay --scenario {} --seed {seed}",
        scenario_path.display()
    ));
    if let Some(strategy) = strategy {
        command.push_str(&format!(" --strategy {strategy}"));
    }
    if let Some(canary) = canary {
        command.push_str(&format!(" --canary {canary}"));
    }
    command
}

/// Everything about one seed, for `replay`.
pub struct SeedDetails<'a> {
    pub outcome: &'a SeedOutcome,
    pub scenario_path: &'a Path,
    pub canary: Option<&'a str>,
}

impl fmt::Display for SeedDetails<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = self.outcome;
        writeln!(
            formatter,
            "scenario {} ({}) seed {}",
            outcome.scenario, outcome.strategy, outcome.seed
        )?;
        writeln!(
            formatter,
            "  crashes {}, recoveries {}, states checked {}, transactions {}, io ops {}",
            outcome.crashes,
            outcome.recoveries,
            outcome.states_checked,
            outcome.transactions,
            outcome.io_ops,
        )?;
        writeln!(
            formatter,
            "  faults injected: {}",
            format_faults(&outcome.faults)
        )?;
        writeln!(
            formatter,
            "  trace digest {:#018x}, final state digest {:#018x}",
            outcome.trace_digest, outcome.final_state_digest,
        )?;
        match &outcome.failure {
            None => writeln!(formatter, "ok: every check held"),
            Some(failure) => writeln!(
                formatter,
                "{}",
                failure_lines(outcome, failure, self.scenario_path, self.canary)
            ),
        }
    }
}

/// One scenario run with one strategy, as a report records what it was asked for, whether or
/// not its seeds ran: enough to tell which reports belong together and which seeds are missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedScenario {
    pub scenario: String,
    pub strategy: String,
    /// The scenario file as the run named it (replay lines use it); not compared by `merge`.
    pub path: PathBuf,
    /// [`scenario_digest`]: reports of one scenario name merge only if their digests agree.
    pub digest: String,
    /// The seed ranges asked for, before a shard took its part; a merged report lists the
    /// union of its reports' ranges.
    pub seed_ranges: Vec<SeedRange>,
    /// The part of `seed_ranges` this report ran: `K/N` (`--shard K/N`, or `--shard-count N`
    /// with K from `JOB_COMPLETION_INDEX`), `hash:K/N` (`--partition`); None: all of them.
    pub shard: Option<String>,
    /// Seeds of `seed_ranges` the shard selects.
    pub seeds_requested: u64,
}

impl PlannedScenario {
    /// `scenario`'s seeds `seeds_requested` of `seed_ranges`, selected by `shard`.
    pub fn new(
        scenario: &Scenario,
        seed_ranges: Vec<SeedRange>,
        shard: Option<String>,
        seeds_requested: u64,
    ) -> Self {
        Self {
            scenario: scenario.name.clone(),
            strategy: scenario.strategy_label().to_string(),
            path: scenario.path.clone(),
            digest: scenario_digest(scenario),
            seed_ranges,
            shard,
            seeds_requested,
        }
    }

    /// `smoke (sharp)`: how reports and messages name a scenario run.
    pub fn label(&self) -> String {
        format!("{} ({})", self.scenario, self.strategy)
    }
}

/// The JSON document `run --json` and `merge --json` write, and `merge` reads. The large parts
/// are borrowed when writing and owned when read back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JsonReport<'a> {
    /// Every requested seed ran (once) and every check held.
    pub passed: bool,
    /// Every requested seed ran; false when the run stopped early (see `stopped`), or for a
    /// merge, when seeds are missing or ran more than once (see `missing_seeds`).
    pub complete: bool,
    /// Why the run stopped early: `interrupted`, `fail-fast` or `hung-seeds`; None if it did not
    /// (always None in a merged report).
    pub stopped: Option<String>,
    /// Seeds the run was asked for, over all scenarios (`outcomes` holds those that ran).
    pub seeds_requested: u64,
    /// The binary that wrote the report.
    pub binary: Binary,
    /// The planted bug the seeds ran with, if any.
    pub canary: Option<String>,
    /// What was asked for: every scenario and strategy, with its digest and seeds.
    pub scenarios: Cow<'a, [PlannedScenario]>,
    /// What ran: one summary per scenario and strategy that ran any seed, in `scenarios` order.
    pub summaries: Cow<'a, [ScenarioSummary]>,
    /// Every seed that ran, grouped as `summaries` and in increasing seed order in each group.
    pub outcomes: Cow<'a, [SeedOutcome]>,
    /// Merged reports only: requested seeds that no report ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_seeds: Vec<SeedGroup>,
    /// Merged reports only: seeds that more than one report ran (the first is kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_seeds: Vec<SeedGroup>,
    /// Merged reports only: duplicate seeds whose runs disagree, which only nondeterminism (or
    /// a wall-clock `hang`) explains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicting_seeds: Vec<SeedGroup>,
}

impl<'a> JsonReport<'a> {
    /// The report of a run of `scenarios` that ran `outcomes` and stopped early for `stopped`,
    /// if it did.
    pub fn of_run(
        scenarios: &'a [PlannedScenario],
        summaries: &'a [ScenarioSummary],
        outcomes: &'a [SeedOutcome],
        canary: Option<&str>,
        stopped: Option<&str>,
    ) -> Self {
        let seeds_requested = scenarios.iter().fold(0u64, |sum, planned| {
            sum.saturating_add(planned.seeds_requested)
        });
        let complete = stopped.is_none() && outcomes.len() as u64 == seeds_requested;
        let passed = complete && outcomes.iter().all(|outcome| outcome.failure.is_none());
        Self {
            passed,
            complete,
            stopped: stopped.map(str::to_string),
            seeds_requested,
            binary: Binary::current(),
            canary: canary.map(str::to_string),
            scenarios: Cow::Borrowed(scenarios),
            summaries: Cow::Borrowed(summaries),
            outcomes: Cow::Borrowed(outcomes),
            missing_seeds: Vec::new(),
            duplicate_seeds: Vec::new(),
            conflicting_seeds: Vec::new(),
        }
    }

    /// Reads a report written by `run --json` or `merge --json`.
    pub fn read(reader: impl std::io::Read) -> serde_json::Result<JsonReport<'static>> {
        serde_json::from_reader(std::io::BufReader::new(reader))
    }

    pub fn write(&self, writer: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(writer, self)
    }

    /// The planned scenario an outcome belongs to.
    pub fn planned(&self, outcome: &SeedOutcome) -> Option<&PlannedScenario> {
        self.scenarios.iter().find(|planned| {
            planned.scenario == outcome.scenario && planned.strategy == outcome.strategy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureKind;

    fn scenario() -> Scenario {
        Scenario::parse("", Path::new("scenarios/smoke.toml")).unwrap()
    }

    fn outcome(seed: u64, faults: &[(&str, u64)], failure: Option<Failure>) -> SeedOutcome {
        SeedOutcome {
            scenario: "smoke".to_string(),
            strategy: "sharp".to_string(),
            seed,
            crashes: 3,
            recoveries: 3,
            states_checked: 3,
            transactions: 60,
            io_ops: 500,
            faults: faults
                .iter()
                .map(|(kind, count)| (kind.to_string(), *count))
                .collect(),
            failure,
            ..SeedOutcome::default()
        }
    }

    fn divergence() -> Failure {
        Failure {
            kind: FailureKind::Divergence,
            crash_index: Some(2),
            message: "key 7: expected v1, found v2".to_string(),
        }
    }

    // A summary adds up counters and faults over seeds and derives checks per second.
    #[test]
    fn summary_sums_outcomes() {
        let outcomes = [
            outcome(0, &[("torn-write", 2)], None),
            outcome(
                1,
                &[("torn-write", 3), ("lying-fsync", 1)],
                Some(divergence()),
            ),
        ];
        let summary =
            ScenarioSummary::from_outcomes(&scenario(), &outcomes, Duration::from_secs(2));
        assert_eq!(summary.seeds, 2);
        assert_eq!(summary.crashes, 6);
        assert_eq!(summary.states_checked, 6);
        assert_eq!(summary.failures, 1);
        assert_eq!(summary.faults["torn-write"], 5);
        assert_eq!(summary.checks_per_second, 3.0);
        assert_eq!(format_faults(&summary.faults), "lying-fsync=1 torn-write=5");
    }

    // No elapsed time gives zero checks per second rather than infinity or NaN.
    #[test]
    fn zero_elapsed_gives_zero_rate() {
        let summary =
            ScenarioSummary::from_outcomes(&scenario(), &[outcome(0, &[], None)], Duration::ZERO);
        assert_eq!(summary.checks_per_second, 0.0);
        assert_eq!(format_faults(&summary.faults), "none");
    }

    // The table has a header, one row per scenario and a total row when there are several.
    #[test]
    fn table_has_header_rows_and_total() {
        let one = ScenarioSummary::from_outcomes(
            &scenario(),
            &[outcome(0, &[], None)],
            Duration::from_secs(1),
        );
        let table = SummaryTable {
            summaries: std::slice::from_ref(&one),
        }
        .to_string();
        assert_eq!(table.lines().count(), 2);
        assert!(table.lines().next().unwrap().starts_with("scenario"));
        let table = SummaryTable {
            summaries: &[one.clone(), one],
        }
        .to_string();
        assert_eq!(table.lines().count(), 4);
        assert!(table.lines().last().unwrap().starts_with("total"));
    }

    // A failure prints one line saying what broke and one line that replays exactly that seed.
    #[test]
    fn failure_lines_replay_the_seed() {
        let failing = outcome(17, &[], Some(divergence()));
        let lines = failure_lines(
            &failing,
            failing.failure.as_ref().unwrap(),
            Path::new("scenarios/smoke.toml"),
            None,
        );
        assert_eq!(
            lines,
            "FAIL smoke (sharp) seed 17: divergence after crash 2: key 7: expected v1, found v2\n  \
             replay: cargo run --release -p crashpoint-sim -- replay --scenario \
             scenarios/smoke.toml --seed 17 --strategy sharp"
        );
        let with_canary = replay_command(
            Path::new("scenarios/smoke.toml"),
            3,
            Some(crashpoint::Strategy::PhysicalLog),
            Some("skip-data-fsync"),
        );
        assert!(with_canary.contains("--features canary"));
        assert!(with_canary.ends_with("--seed 3 --strategy physical-log --canary skip-data-fsync"));
    }

    fn planned(seeds: u64) -> PlannedScenario {
        PlannedScenario::new(&scenario(), vec!["0..10".parse().unwrap()], None, seeds)
    }

    // The JSON report carries the verdict, the binary, the plan with the scenario's digest, the
    // summaries and every outcome, and reads back as it was written.
    #[test]
    fn json_report_has_provenance_summaries_and_outcomes() {
        let outcomes = [outcome(0, &[], None), outcome(1, &[], Some(divergence()))];
        let summaries = [ScenarioSummary::from_outcomes(
            &scenario(),
            &outcomes,
            Duration::from_secs(1),
        )];
        let plan = [planned(2)];
        let mut buffer = Vec::new();
        let report = JsonReport::of_run(&plan, &summaries, &outcomes, None, None);
        report.write(&mut buffer).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(value["passed"], false);
        assert_eq!(value["complete"], true);
        assert_eq!(value["binary"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(value["scenarios"][0]["strategy"], "sharp");
        assert_eq!(value["scenarios"][0]["seed_ranges"][0], "0..10");
        assert_eq!(
            value["scenarios"][0]["digest"],
            scenario_digest(&scenario())
        );
        assert_eq!(value["summaries"][0]["failures"], 1);
        assert_eq!(value["outcomes"][1]["failure"]["kind"], "divergence");
        assert!(value.get("missing_seeds").is_none());
        let read = JsonReport::read(buffer.as_slice()).unwrap();
        assert_eq!(read.scenarios[..], plan[..]);
        assert_eq!(read.summaries[..], summaries[..]);
        assert_eq!(read.outcomes.len(), 2);
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
    }

    // A run that stopped early is marked incomplete, says why, and never claims to have passed.
    #[test]
    fn json_report_of_a_stopped_run_is_incomplete() {
        let outcomes = [outcome(0, &[], None)];
        let summaries = [ScenarioSummary::from_outcomes(
            &scenario(),
            &outcomes,
            Duration::from_secs(1),
        )];
        let plan = [planned(10)];
        let mut buffer = Vec::new();
        JsonReport::of_run(&plan, &summaries, &outcomes, None, Some("interrupted"))
            .write(&mut buffer)
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(value["complete"], false);
        assert_eq!(value["passed"], false);
        assert_eq!(value["stopped"], "interrupted");
        assert_eq!(value["seeds_requested"], 10);
        assert_eq!(value["outcomes"].as_array().unwrap().len(), 1);
    }
}
