//! `crashpoint soak`: continuous fuzzing, as TigerBeetle's VOPR runs it. Random seeds run
//! across every default scenario (and strategy) until the time is up; each failure is appended
//! to a JSON-lines file the moment it is found, with the line that replays it; at the end come
//! the summary table, seeds per second and the failures.
//!
//! Work item `i` runs scenario `i % M` of the M scenarios with seed `start + i / M`, so each
//! seed runs under every scenario in turn and a soak is a deterministic sequence of
//! deterministic seeds: `start` comes from CRASHPOINT_SEED or OS entropy, and is printed. How
//! far the sequence gets depends only on the time and the machine.
//!
//! The failure file survives the process being killed at any moment: each failure is one line,
//! written with a single call and synced before the soak moves on, so the file holds whole
//! lines plus at most one torn last line; a later soak appending to it first ends a torn line,
//! so every line but that one stays valid JSON. SIGINT and SIGTERM stop it like `run`: the
//! seeds in flight finish, the summary prints, and it exits 130.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::Serialize;

use super::interrupt::{self, StopRequest};
use super::output::Human;
use super::run::{choose_scenarios, random_start, seed_from_environment};
use super::workers::{for_each_in_parallel, SeedRunner, ABANDONED_SEEDS_MAX};
use super::{check_canary, install_logging, job_count, DurationArgument};
use super::{SoakArguments, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_SUCCESS, SEED_VARIABLE};
use crate::driver::SeedOptions;
use crate::outcome::SeedOutcome;
use crate::report::{failure_lines, replay_command, Binary, ScenarioSummary, SummaryTable};
use crate::scenario::Scenario;

/// How often a soak that is not quiet prints a progress line to standard error.
const STATUS_INTERVAL: Duration = Duration::from_secs(60);

pub fn soak(arguments: SoakArguments) -> anyhow::Result<i32> {
    check_canary(arguments.common.canary.as_deref())?;
    install_logging("off");
    let scenarios = choose_scenarios(&arguments.scenarios, arguments.common.strategy)?;
    let (start, from_environment) = match seed_from_environment()? {
        Some(start) => (start, true),
        None => (random_start(0), false),
    };
    // Opened before any seed runs, so a bad path fails in a second rather than at the first
    // failure, perhaps an hour in.
    let log = FailureLog::open(&arguments.failures)?;
    let mut human = Human::new(&arguments.output, false);
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
    if !human.quiet {
        let source = if from_environment {
            format!("from {SEED_VARIABLE}")
        } else {
            "drawn at random".to_string()
        };
        human.line(format!(
            "soaking {} scenarios for {} on {jobs} threads, seeds from {start} ({source}); \
             failures are appended to {}; Ctrl-C stops after the seeds in flight",
            scenarios.len(),
            arguments.duration,
            arguments.failures.display()
        ))?;
        human.line(format!(
            "to run the same seeds again: {SEED_VARIABLE}={start} crashpoint soak ..."
        ))?;
        human.flush()?;
    }
    let soak = Soak {
        scenarios: &scenarios,
        start,
        runner: &runner,
        canary: arguments.common.canary.as_deref(),
        binary: Binary::current(),
        log: Mutex::new(log),
        human: Mutex::new(human),
        tally: Mutex::new(Tally::new(&scenarios)),
        failures: AtomicU64::new(0),
        log_error: Mutex::new(None),
    };
    let (ran, elapsed, stopped) = soak.run_for(&arguments.duration, jobs, &stop);
    soak.finish(ran, elapsed, jobs, stopped, &arguments.failures)
}

/// Why a soak stopped before its time was up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    Interrupted,
    HungSeeds,
    LogFailed,
}

/// What the workers share.
struct Soak<'a> {
    scenarios: &'a [Scenario],
    start: u64,
    runner: &'a SeedRunner,
    canary: Option<&'a str>,
    binary: Binary,
    log: Mutex<FailureLog>,
    human: Mutex<Human>,
    tally: Mutex<Tally>,
    failures: AtomicU64,
    /// The first error writing the failure file; it stops the soak.
    log_error: Mutex<Option<anyhow::Error>>,
}

impl Soak<'_> {
    /// Runs work items on `jobs` threads until `duration` is up or the soak must stop; returns
    /// how many ran, in what time, and why it stopped early, if it did.
    fn run_for(
        &self,
        duration: &DurationArgument,
        jobs: usize,
        stop: &StopRequest,
    ) -> (u64, Duration, Option<Stopped>) {
        let began = Instant::now();
        let deadline = began + duration.duration;
        let stopped = || {
            if stop.requested() {
                Some(Stopped::Interrupted)
            } else if self.runner.abandoned() >= ABANDONED_SEEDS_MAX {
                Some(Stopped::HungSeeds)
            } else if self.log_error.lock().expect("not poisoned").is_some() {
                Some(Stopped::LogFailed)
            } else {
                None
            }
        };
        let next_status = Mutex::new(began + STATUS_INTERVAL);
        let quiet = self.human.lock().expect("not poisoned").quiet;
        let ran = for_each_in_parallel(
            u64::MAX,
            jobs,
            &|| Instant::now() >= deadline || stopped().is_some(),
            |item| {
                self.run(item);
                let mut next = next_status.lock().expect("not poisoned");
                if !quiet && Instant::now() >= *next {
                    *next += STATUS_INTERVAL;
                    let tally = self.tally.lock().expect("not poisoned");
                    let elapsed = began.elapsed();
                    eprintln!(
                        "soak: {:.0} s of {duration}, {}",
                        elapsed.as_secs_f64(),
                        tally.progress(elapsed)
                    );
                }
            },
        );
        (ran, began.elapsed(), stopped())
    }

    /// Runs work item `item`: scenario `item % M` with seed `start + item / M`.
    fn run(&self, item: u64) {
        let count = self.scenarios.len() as u64;
        let scenario = &self.scenarios[(item % count) as usize];
        let seed = self.start.wrapping_add(item / count);
        let began = Instant::now();
        let outcome = self.runner.run(scenario, seed);
        let seconds = began.elapsed().as_secs_f64();
        if let Some(failure) = &outcome.failure {
            self.failures.fetch_add(1, Ordering::SeqCst);
            let line = FailureLine {
                outcome: &outcome,
                replay: replay_command(
                    &scenario.path,
                    seed,
                    scenario.replay_strategy(),
                    self.canary,
                ),
                canary: self.canary,
                binary: &self.binary,
                found_at_unix_seconds: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs()),
            };
            let written = self.log.lock().expect("not poisoned").append(&line);
            if let Err(error) = written {
                self.log_error
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert(error);
            }
            let lines = failure_lines(&outcome, failure, &scenario.path, self.canary);
            let mut human = self.human.lock().expect("not poisoned");
            // A closed standard output must not stop the soak; the failure file has it.
            let _ = human.failure(&lines).and_then(|()| human.flush());
        }
        self.tally
            .lock()
            .expect("not poisoned")
            .add((item % count) as usize, &outcome, seconds);
    }

    /// Prints the table, the rate and the failures, and picks the exit code.
    fn finish(
        self,
        ran: u64,
        elapsed: Duration,
        jobs: usize,
        stopped: Option<Stopped>,
        failures_path: &Path,
    ) -> anyhow::Result<i32> {
        let mut human = self.human.into_inner().expect("not poisoned");
        let tally = self.tally.into_inner().expect("not poisoned");
        let summaries = tally.summaries(jobs);
        if !human.quiet {
            human.text(SummaryTable {
                summaries: &summaries,
            })?;
        }
        debug_assert_eq!(
            summaries.iter().map(|summary| summary.seeds).sum::<u64>(),
            ran
        );
        let failures = self.failures.load(Ordering::SeqCst);
        let verdict = if failures > 0 {
            human.red(&format!(
                "{failures} failures, appended to {}",
                failures_path.display()
            ))
        } else {
            human.green("no failures")
        };
        let reason = match stopped {
            None => String::new(),
            Some(Stopped::Interrupted) => "interrupted by a signal; ".to_string(),
            Some(Stopped::HungSeeds) => format!(
                "stopped after {ABANDONED_SEEDS_MAX} seeds hung past the wall-clock limit; "
            ),
            Some(Stopped::LogFailed) => "stopped: the failure file cannot be written; ".to_string(),
        };
        human.line(format!(
            "{}soak ran {} seeds in {:.1} s ({:.1} seeds/s) from seed {}: {verdict}",
            human.yellow(&reason),
            tally.seeds,
            elapsed.as_secs_f64(),
            tally.per_second(elapsed),
            self.start
        ))?;
        human.flush()?;
        if let Some(error) = self.log_error.into_inner().expect("not poisoned") {
            return Err(error);
        }
        Ok(match stopped {
            Some(Stopped::Interrupted) => EXIT_INTERRUPTED,
            Some(Stopped::HungSeeds) => EXIT_CHECK_FAILED,
            _ if failures > 0 => EXIT_CHECK_FAILED,
            _ => EXIT_SUCCESS,
        })
    }
}

/// Per scenario: the summary of the seeds that ran and the seconds they took.
struct Tally {
    summaries: Vec<ScenarioSummary>,
    seconds: Vec<f64>,
    seeds: u64,
}

impl Tally {
    fn new(scenarios: &[Scenario]) -> Self {
        Self {
            summaries: scenarios
                .iter()
                .map(|scenario| {
                    ScenarioSummary::empty(
                        &scenario.name,
                        scenario.strategy_label(),
                        &scenario.path,
                    )
                })
                .collect(),
            seconds: vec![0.0; scenarios.len()],
            seeds: 0,
        }
    }

    fn add(&mut self, scenario: usize, outcome: &SeedOutcome, seconds: f64) {
        self.summaries[scenario].add(outcome);
        self.seconds[scenario] += seconds;
        self.seeds += 1;
    }

    fn per_second(&self, elapsed: Duration) -> f64 {
        let seconds = elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.seeds as f64 / seconds
        } else {
            0.0
        }
    }

    /// `12345 seeds (205.7 seeds/s), 0 failures`.
    fn progress(&self, elapsed: Duration) -> String {
        let failures: u64 = self.summaries.iter().map(|summary| summary.failures).sum();
        format!(
            "{} seeds ({:.1} seeds/s), {failures} failures",
            self.seeds,
            self.per_second(elapsed)
        )
    }

    /// The summaries, each scenario's time being its share of the wall clock: the seconds its
    /// seeds took over the workers that ran them side by side.
    fn summaries(&self, jobs: usize) -> Vec<ScenarioSummary> {
        self.summaries
            .iter()
            .zip(&self.seconds)
            .filter(|(summary, _)| summary.seeds > 0)
            .map(|(summary, seconds)| {
                let mut summary = summary.clone();
                summary.set_elapsed(seconds / jobs as f64);
                summary
            })
            .collect()
    }
}

/// One line of the failure file: the seed's outcome and how to replay it.
#[derive(Serialize)]
struct FailureLine<'a> {
    #[serde(flatten)]
    outcome: &'a SeedOutcome,
    replay: String,
    canary: Option<&'a str>,
    binary: &'a Binary,
    /// When the failure was found, in seconds since the Unix epoch.
    found_at_unix_seconds: u64,
}

/// The JSON-lines file failures are appended to.
struct FailureLog {
    path: PathBuf,
    file: File,
}

impl FailureLog {
    /// Opens `path` for appending, creating it. If an earlier writer was killed in the middle
    /// of a line, that line is ended first, so the next one starts on a line of its own.
    fn open(path: &Path) -> anyhow::Result<Self> {
        let context = || format!("cannot open the failure file {}", path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .with_context(context)?;
        let length = file.metadata().with_context(context)?.len();
        if length > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(length - 1))
                .and_then(|_| file.read_exact(&mut last))
                .with_context(context)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").with_context(context)?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one line with a single write and syncs it, so a kill at any moment leaves
    /// whole lines behind.
    fn append(&mut self, line: &FailureLine) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec(line).context("a failure serializes")?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot append to the failure file {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, FailureKind};

    fn failing(seed: u64) -> SeedOutcome {
        SeedOutcome {
            scenario: "smoke".to_string(),
            strategy: "sharp".to_string(),
            seed,
            failure: Some(Failure {
                kind: FailureKind::Divergence,
                crash_index: Some(1),
                message: "key 7:\nexpected 1, found 2".to_string(),
            }),
            ..SeedOutcome::default()
        }
    }

    fn line(outcome: &SeedOutcome, binary: &Binary) -> String {
        let line = FailureLine {
            outcome,
            replay: "cargo run -- replay --seed 1".to_string(),
            canary: None,
            binary,
            found_at_unix_seconds: 1,
        };
        let mut bytes = serde_json::to_vec(&line).unwrap();
        bytes.push(b'\n');
        String::from_utf8(bytes).unwrap()
    }

    // Each failure is one line of JSON with the outcome's fields and its replay line; a file
    // left with a torn last line gets that line ended, so the lines appended after it parse.
    #[test]
    fn failures_append_as_whole_lines_after_a_torn_one() {
        let directory = std::env::temp_dir().join(format!("soak-log-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("failures.jsonl");
        let binary = Binary::current();
        let whole = line(&failing(1), &binary);
        let torn = &whole[..whole.len() / 2];
        std::fs::write(&path, format!("{whole}{torn}")).unwrap();
        let mut log = FailureLog::open(&path).unwrap();
        for seed in [2, 3] {
            let outcome = failing(seed);
            log.append(&FailureLine {
                outcome: &outcome,
                replay: format!("replay {seed}"),
                canary: None,
                binary: &binary,
                found_at_unix_seconds: 1,
            })
            .unwrap();
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[1], torn);
        for (index, seed) in [(0, 1), (2, 2), (3, 3)] {
            let value: serde_json::Value = serde_json::from_str(lines[index]).unwrap();
            assert_eq!(value["seed"], seed);
            assert_eq!(value["failure"]["kind"], "divergence");
            assert!(value["replay"].as_str().unwrap().contains("replay"));
            assert_eq!(value["binary"]["version"], env!("CARGO_PKG_VERSION"));
        }
        assert!(text.ends_with('\n'));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
