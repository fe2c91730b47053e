//! `crashpoint run`: many seeds of one or more scenarios, a summary table, one replay line per
//! failure and, on request, JSON and JUnit reports.
//!
//! Scenarios run one after another, each across every worker, so the wall time measured for a
//! scenario (and so its checks per second) is its own. A run stops early, after the seeds in
//! flight, on SIGINT or SIGTERM (exit 130), on the first failure with `--fail-fast`, or when
//! too many seeds hung past the wall-clock limit; it then reports what ran, marked incomplete.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::RngCore;

use super::interrupt::{self, StopRequest};
use super::output::{Human, ReportFile};
use super::seeds::{choose_partition, Partition, SeedRange, SeedSelection, JOB_INDEX_VARIABLE};
use super::workers::{map_in_parallel, progress_bar, SeedRunner, ABANDONED_SEEDS_MAX};
use super::{check_canary, install_logging, job_count, resolve_scenario, shown_path};
use super::{with_strategies, StrategyChoice};
use super::{RunArguments, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_SUCCESS, SEED_VARIABLE};
use crate::driver::SeedOptions;
use crate::outcome::SeedOutcome;
use crate::report::{JsonReport, LatencyTable, PlannedScenario, ScenarioSummary};
use crate::scenario::{default_directory, Scenario};

/// Seeds `run` uses when nothing names any.
const DEFAULT_SEEDS: SeedRange = SeedRange { start: 0, last: 99 };

/// Why a run stopped before every requested seed ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    Interrupted,
    FailFast,
    HungSeeds,
}

impl Stopped {
    fn name(self) -> &'static str {
        match self {
            Stopped::Interrupted => "interrupted",
            Stopped::FailFast => "fail-fast",
            Stopped::HungSeeds => "hung-seeds",
        }
    }

    fn explain(self) -> String {
        match self {
            Stopped::Interrupted => "interrupted by a signal".to_string(),
            Stopped::FailFast => "stopped at the first failure (--fail-fast)".to_string(),
            Stopped::HungSeeds => {
                format!("stopped after {ABANDONED_SEEDS_MAX} seeds hung past the wall-clock limit")
            }
        }
    }
}

/// The seeds of this run and, for `--random`, where they came from.
struct Seeds {
    range: SeedRange,
    /// `--random N`: (start, N, whether the start came from CRASHPOINT_SEED).
    random: Option<(u64, u64, bool)>,
}

/// The seed in CRASHPOINT_SEED, if it is set.
pub(super) fn seed_from_environment() -> anyhow::Result<Option<u64>> {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => Ok(Some(text.trim().parse::<u64>().with_context(|| {
            format!("{SEED_VARIABLE}={text:?} is not a seed (a number from 0 to 2^64 - 1)")
        })?)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(error) => anyhow::bail!("{SEED_VARIABLE}: {error}"),
    }
}

/// A random seed from OS entropy below 2^64 - `room`, so `room` more seeds follow it. This is
/// the one nondeterministic choice of `run --random` and `soak`, and both print it.
pub(super) fn random_start(room: u64) -> u64 {
    rand::rngs::OsRng.next_u64() % (u64::MAX - room)
}

/// `--seeds`, else `--random N` (from CRASHPOINT_SEED or a random start), else the one seed in
/// CRASHPOINT_SEED, else the default range.
fn choose_seeds(arguments: &RunArguments) -> anyhow::Result<Seeds> {
    let from_environment = seed_from_environment()?;
    if let Some(range) = arguments.seeds {
        return Ok(Seeds {
            range,
            random: None,
        });
    }
    if let Some(count) = arguments.random {
        let start = match from_environment {
            Some(start) => start,
            // Drawn so that all `count` seeds fit below 2^64, and printed below.
            None => random_start(count - 1),
        };
        let range = SeedRange::starting_at(start, count).with_context(|| {
            format!("{SEED_VARIABLE}={start} leaves no room for {count} seeds below 2^64")
        })?;
        return Ok(Seeds {
            range,
            random: Some((start, count, from_environment.is_some())),
        });
    }
    let range = match from_environment {
        Some(seed) => SeedRange {
            start: seed,
            last: seed,
        },
        None => DEFAULT_SEEDS,
    };
    Ok(Seeds {
        range,
        random: None,
    })
}

/// The named scenarios with their own strategy (or `--strategy`'s), or with none named, every
/// default scenario with every strategy (or `--strategy`'s).
pub(super) fn choose_scenarios(
    names: &[String],
    strategy: Option<StrategyChoice>,
) -> anyhow::Result<Vec<Scenario>> {
    if !names.is_empty() {
        let scenarios = names
            .iter()
            .map(|name| resolve_scenario(name))
            .collect::<Result<_, _>>()?;
        return with_strategies(scenarios, strategy);
    }
    let directory = default_directory();
    let mut scenarios = Scenario::default_set(&directory)?;
    if scenarios.is_empty() {
        anyhow::bail!("no default scenarios in {}", directory.display());
    }
    for scenario in &mut scenarios {
        scenario.path = shown_path(&scenario.path);
    }
    with_strategies(scenarios, strategy.or(Some(StrategyChoice::All)))
}

pub fn run(arguments: RunArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging("off");
    let scenarios = choose_scenarios(&arguments.scenarios, arguments.common.strategy)?;
    let seeds = choose_seeds(&arguments)?;
    // Opened before any seed runs, so a bad path fails in a second rather than after the run.
    let json = match &arguments.json {
        Some(path) => Some(ReportFile::create(path, "JSON report", true)?),
        None => None,
    };
    let junit = match &arguments.junit {
        Some(path) => Some(ReportFile::create(path, "JUnit report", false)?),
        None => None,
    };
    let mut human = Human::new(
        &arguments.output,
        json.as_ref().is_some_and(ReportFile::is_stdout),
    );
    let selection = choose_selection(&arguments, &human, seeds.range)?;
    let plan: Vec<PlannedScenario> = scenarios
        .iter()
        .map(|scenario| {
            PlannedScenario::new(
                scenario,
                vec![seeds.range],
                selection.partition().map(|partition| partition.to_string()),
                selection.len(),
            )
        })
        .collect();
    let jobs = job_count(arguments.jobs);
    let stop = interrupt::install()?;
    let time_limit = (arguments.seed_time_limit_seconds > 0)
        .then(|| Duration::from_secs(arguments.seed_time_limit_seconds));
    let runner = SeedRunner::new(
        SeedOptions {
            record_trace: false,
            canary: arguments.common.canary.clone(),
            ..SeedOptions::default()
        },
        time_limit,
    );
    let requested = selection.len().saturating_mul(scenarios.len() as u64);
    if !human.quiet {
        eprintln!(
            "running {} seeds ({}) of {} scenarios on {jobs} threads; Ctrl-C stops after the \
             seeds in flight",
            selection.len(),
            seeds.range,
            scenarios.len()
        );
        if let Some((start, count, from_environment)) = seeds.random {
            let source = if from_environment {
                format!("from {SEED_VARIABLE}")
            } else {
                "drawn at random".to_string()
            };
            human.line(format!(
                "random seeds {} ({source}); to run them again: {SEED_VARIABLE}={start} \
                 crashpoint run --random {count} ... or --seeds {}",
                seeds.range, seeds.range
            ))?;
        }
    }

    let ran = run_scenarios(
        &scenarios,
        &selection,
        jobs,
        &runner,
        &stop,
        arguments.fail_fast,
        human.quiet,
    );
    report(&arguments, &mut human, &ran, &plan, requested, json, junit)
}

/// The seeds of `range` this machine runs: all, or the part `--shard`, `--shard-count` (with
/// JOB_COMPLETION_INDEX) or `--partition` selects, which must not be empty.
fn choose_selection(
    arguments: &RunArguments,
    human: &Human,
    range: SeedRange,
) -> anyhow::Result<SeedSelection> {
    let job_index = std::env::var(JOB_INDEX_VARIABLE).ok();
    let partition = choose_partition(
        arguments.shard,
        arguments.shard_count,
        arguments.partition,
        job_index.as_deref(),
    )?;
    if partition.is_none() && job_index.is_some() && !human.quiet {
        // An Indexed Job whose pods all run every seed is almost always a forgotten flag.
        eprintln!(
            "note: {JOB_INDEX_VARIABLE} is set but none of --shard-count, --shard, --partition \
             is given, so this runs every seed of {range}"
        );
    }
    let selection = SeedSelection::partitioned(range, partition)?;
    if selection.is_empty() {
        // Only a partition can empty a (non-empty) range; running nothing would look like a
        // pass.
        let partition = partition
            .as_ref()
            .map(Partition::to_string)
            .unwrap_or_default();
        anyhow::bail!("shard {partition} selects no seeds from {range}");
    }
    Ok(selection)
}

/// What ran: per scenario its summary and outcomes, in order, and why it stopped early.
struct Ran<'a> {
    summaries: Vec<ScenarioSummary>,
    outcomes: Vec<SeedOutcome>,
    /// The scenario of each outcome.
    owners: Vec<&'a Scenario>,
    stopped: Option<Stopped>,
}

fn run_scenarios<'a>(
    scenarios: &'a [Scenario],
    selection: &SeedSelection,
    jobs: usize,
    runner: &SeedRunner,
    stop: &StopRequest,
    fail_fast: bool,
    quiet: bool,
) -> Ran<'a> {
    let failed = AtomicBool::new(false);
    let stopped = || {
        if stop.requested() {
            Some(Stopped::Interrupted)
        } else if fail_fast && failed.load(Ordering::SeqCst) {
            Some(Stopped::FailFast)
        } else if runner.abandoned() >= ABANDONED_SEEDS_MAX {
            Some(Stopped::HungSeeds)
        } else {
            None
        }
    };
    let progress = progress_bar(
        selection.len().saturating_mul(scenarios.len() as u64),
        quiet,
    );
    let mut ran = Ran {
        summaries: Vec::with_capacity(scenarios.len()),
        outcomes: Vec::new(),
        owners: Vec::new(),
        stopped: None,
    };
    for scenario in scenarios {
        if stopped().is_some() {
            break;
        }
        progress.set_message(format!("{} {}", scenario.name, scenario.engine.strategy));
        let started = Instant::now();
        let outcomes = map_in_parallel(
            selection.len(),
            jobs,
            &progress,
            &|| stopped().is_some(),
            |position| {
                let outcome = runner.run(scenario, selection.seed(position));
                if outcome.failure.is_some() {
                    failed.store(true, Ordering::SeqCst);
                }
                outcome
            },
        );
        ran.summaries.push(ScenarioSummary::from_outcomes(
            scenario,
            &outcomes,
            started.elapsed(),
        ));
        ran.owners.extend(outcomes.iter().map(|_| scenario));
        ran.outcomes.extend(outcomes);
    }
    progress.finish_and_clear();
    let every_seed_ran =
        ran.outcomes.len() as u64 == selection.len().saturating_mul(scenarios.len() as u64);
    ran.stopped = if every_seed_ran { None } else { stopped() };
    ran
}

/// Prints the table, the failures and the verdict, writes the reports, and picks the exit code.
fn report(
    arguments: &RunArguments,
    human: &mut Human,
    ran: &Ran<'_>,
    plan: &[PlannedScenario],
    requested: u64,
    json: Option<ReportFile>,
    junit: Option<ReportFile>,
) -> anyhow::Result<i32> {
    let canary = arguments.common.canary.as_deref();
    let failed = human.table_and_failures(
        &ran.summaries,
        ran.outcomes
            .iter()
            .zip(ran.owners.iter().map(|scenario| scenario.path.as_path())),
        canary,
    )?;
    if arguments.latency && !ran.summaries.is_empty() {
        human.text(LatencyTable {
            summaries: &ran.summaries,
        })?;
    }
    let total = ran.outcomes.len();
    let stopped = ran.stopped.map(Stopped::name);
    if let Some(json) = json {
        let report = JsonReport::of_run(plan, &ran.summaries, &ran.outcomes, canary, stopped);
        debug_assert_eq!(report.seeds_requested, requested);
        json.write("JSON report", |out| {
            report.write(&mut *out).map_err(std::io::Error::from)
        })?;
    }
    if let Some(junit) = junit {
        junit.write("JUnit report", |out| {
            crate::junit::write(out, &ran.summaries, &ran.outcomes, canary)
        })?;
    }
    let verdict = if failed > 0 {
        human.red(&format!("{failed} of {total} seeds failed"))
    } else {
        human.green(&format!("all {total} seeds passed"))
    };
    let code = match ran.stopped {
        Some(stopped) => {
            human.line(format!(
                "{}: {verdict}",
                human.yellow(&format!(
                    "{}; {total} of {requested} seeds ran, the report is incomplete",
                    stopped.explain()
                ))
            ))?;
            if stopped == Stopped::Interrupted {
                EXIT_INTERRUPTED
            } else {
                EXIT_CHECK_FAILED
            }
        }
        None => {
            human.line(verdict)?;
            if failed > 0 {
                EXIT_CHECK_FAILED
            } else {
                EXIT_SUCCESS
            }
        }
    };
    human.flush()?;
    Ok(code)
}
