//! The `crashpoint` command line: `run`, `merge`, `soak`, `replay`, `check-determinism`,
//! `explore`, `shrink`, `bench`, `realcrash`, `list-scenarios` and `completions`.
//!
//! This module owns argument parsing and exit codes; each command lives in its own file under
//! `cli/`. Exit codes: 0 when every check held, 1 when a check failed, 2 for a usage or
//! configuration error (clap's errors included), so scripts can tell a bug in the engine from a
//! mistake on the command line, and 130 when SIGINT or SIGTERM stopped a `run` or `soak` early.
//! `merge` exits 1 when the merged report has failures or is incomplete (seeds missing or run
//! twice, or different from `--compare`'s report), and 2 when the reports do not belong
//! together.

mod bench;
mod check_determinism;
mod compare;
mod completions;
mod duration;
mod explore;
mod interrupt;
mod list_scenarios;
mod log_format;
mod merge;
mod output;
mod realcrash;
mod replay;
mod run;
mod seeds;
mod shrink;
mod soak;
mod workers;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use duration::{DurationArgument, DurationError};
pub use seeds::{seed_hash, HashPartition, HashPartitionError, Partition, PartitionError};
pub use seeds::{SeedRange, SeedRangeError, SeedSelection, Shard, ShardError, JOB_INDEX_VARIABLE};

/// Every check held.
pub const EXIT_SUCCESS: i32 = 0;
/// A check failed (or, for `check-determinism`, two runs of a seed differed).
pub const EXIT_CHECK_FAILED: i32 = 1;
/// The command line or a scenario file is wrong.
pub const EXIT_USAGE: i32 = 2;
/// SIGINT or SIGTERM stopped the command before it finished (128 + SIGINT, as shells report).
pub const EXIT_INTERRUPTED: i32 = 130;

/// The environment variable that fixes the seeds of a seed-less `run`, as `MADSIM_TEST_SEED`
/// does for madsim tests: the one seed to run, or with `--random N` the first of N.
pub const SEED_VARIABLE: &str = "CRASHPOINT_SEED";

#[derive(Debug, Parser)]
#[command(
    name = "crashpoint",
    version,
    about = "Deterministic crash and fault-injection simulation of the crashpoint engine"
)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run many seeds of one or more scenarios and summarize.
    Run(RunArguments),
    /// Merge the JSON reports of a sweep's shards into one report and summarize it.
    Merge(MergeArguments),
    /// Run random seeds of every default scenario until the time is up (continuous fuzzing).
    Soak(SoakArguments),
    /// Rerun one seed with logging, to investigate a failure.
    Replay(ReplayArguments),
    /// Run each seed twice and check both runs agree.
    CheckDeterminism(CheckDeterminismArguments),
    /// Check every crash state of one seed's checkpoint windows.
    Explore(ExploreArguments),
    /// Shrink a failing seed to a small scenario plus schedule that replays it.
    Shrink(ShrinkArguments),
    /// Benchmark report with plots (simulator vs real-process crash testing, engine vs
    /// SQLite, cost growth); with --seeds, cycles per second and memory over seeds.
    Bench(BenchArguments),
    /// Run scenarios under every strategy on the same seeds and print one table of
    /// checkpoint measures side by side (as `run --strategy all --latency`).
    Compare(CompareArguments),
    /// Crash-test a real process: SIGKILL the engine in a child, recover, check.
    Realcrash(RealcrashArguments),
    /// realcrash's child process (internal).
    #[command(hide = true)]
    RealcrashChild(RealcrashChildArguments),
    /// List the scenarios that names resolve to: name, default or not, description.
    ListScenarios,
    /// Print a shell completion script (for example `crashpoint completions bash`).
    Completions(CompletionsArguments),
}

#[derive(Debug, Args)]
pub struct RunArguments {
    /// Scenario names (looked up in the scenario directory) or paths to .toml files; none runs
    /// every scenario marked `default = true`.
    pub scenarios: Vec<String>,
    /// Seeds to run: `A..B` (half-open), `A..=B` (inclusive) or a single seed `N`, any u64.
    /// Without it: the seed in CRASHPOINT_SEED if set, else 0..100.
    #[arg(long, conflicts_with = "random")]
    pub seeds: Option<SeedRange>,
    /// Run N seeds from a random start (CRASHPOINT_SEED fixes the start, to rerun them); each
    /// failing seed prints the line that replays it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub random: Option<u64>,
    /// Worker threads; defaults to the available parallelism.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: Option<u32>,
    /// Run only the seeds with `seed % N == K`, to split a range across machines.
    #[arg(long, value_name = "K/N", conflicts_with_all = ["shard_count", "partition"])]
    pub shard: Option<Shard>,
    /// Run shard K of N (as --shard K/N) with K from JOB_COMPLETION_INDEX, which a Kubernetes
    /// Indexed Job sets in each pod.
    #[arg(long, value_name = "N", conflicts_with = "partition",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_count: Option<u64>,
    /// cargo-nextest's naming: `hash:K/N` (K from 1 to N) runs the seeds whose SplitMix64 hash
    /// is K - 1 modulo N.
    #[arg(long, value_name = "hash:K/N")]
    pub partition: Option<HashPartition>,
    /// Write every outcome and the summaries as JSON to this file (`-`: standard output, and
    /// the human-readable report goes to standard error).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per seed) to this file, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Stop after the first failing seed (the seeds in flight finish and are reported).
    #[arg(long)]
    pub fail_fast: bool,
    /// Wall-clock seconds one seed may take before it is reported as a `hang` (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub seed_time_limit_seconds: u64,
    /// Also print the checkpoint table: checkpoints by trigger, blocking window, commit
    /// latency inside and outside checkpoints, write amplification, redo at recovery.
    #[arg(long)]
    pub latency: bool,
    #[command(flatten)]
    pub output: OutputArguments,
    #[command(flatten)]
    pub common: CommonArguments,
}

#[derive(Debug, Args)]
pub struct CompareArguments {
    /// Scenario names or paths to .toml files; none compares on `group-commit`.
    pub scenarios: Vec<String>,
    /// Seeds every strategy runs: `A..B`, `A..=B` or `N`.
    #[arg(long, default_value = "0..50")]
    pub seeds: SeedRange,
    /// Worker threads; defaults to the available parallelism.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: Option<u32>,
    /// Write every outcome and the summaries, measures included, as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArguments,
    /// Enable a planted bug by name (needs the `canary` feature).
    #[arg(long, value_name = "NAME")]
    pub canary: Option<String>,
}

#[derive(Debug, Args)]
pub struct MergeArguments {
    /// JSON reports written by `run --json` (the shards, in any order) or by `merge --json`.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the merged report as JSON to this file (`-`: standard output, and the
    /// human-readable report goes to standard error).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report of the merged seeds to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Compare the merged report with this one (for example one unsharded run of the same
    /// seeds) in everything a run determines; exit 1 if they differ.
    #[arg(long, value_name = "REPORT.json")]
    pub compare: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Debug, Args)]
pub struct SoakArguments {
    /// Scenario names or paths; none runs every scenario marked `default = true` (with every
    /// strategy unless --strategy says otherwise), as `run` does.
    pub scenarios: Vec<String>,
    /// How long to start new seeds: a number and a unit, `s`, `m` or `h` (`60s`, `10m`, `1h`,
    /// `1h30m`). Seeds in flight then finish.
    #[arg(long, value_name = "TIME")]
    pub duration: DurationArgument,
    /// Append each failure, as it happens, as one JSON line (with its replay line) to this file.
    #[arg(long, value_name = "FILE", default_value = "soak-failures.jsonl")]
    pub failures: PathBuf,
    /// Worker threads; defaults to the available parallelism.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: Option<u32>,
    /// Wall-clock seconds one seed may take before it is reported as a `hang` (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub seed_time_limit_seconds: u64,
    #[command(flatten)]
    pub output: OutputArguments,
    #[command(flatten)]
    pub common: CommonArguments,
}

/// How `run`, `merge` and `soak` report to a person.
#[derive(Debug, Args)]
pub struct OutputArguments {
    /// Print only failures and the final verdict: no progress bar, no summary table.
    #[arg(short, long)]
    pub quiet: bool,
    /// Color the verdicts: `auto` colors a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct ReplayArguments {
    /// Scenario name or path to a .toml file.
    #[arg(long)]
    pub scenario: String,
    #[arg(long)]
    pub seed: u64,
    /// Log at debug level (RUST_LOG, when set, wins).
    #[arg(short, long)]
    pub verbose: bool,
    /// Write the run as Chrome trace-event JSON (open in Perfetto or chrome://tracing).
    #[arg(long, value_name = "FILE.json")]
    pub trace: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArguments,
}

#[derive(Debug, Args)]
pub struct CheckDeterminismArguments {
    /// Scenario name or path to a .toml file.
    #[arg(long)]
    pub scenario: String,
    /// Seeds to check: `A..B` (half-open) or a single seed `N`.
    #[arg(long, default_value = "0..20")]
    pub seeds: SeedRange,
    /// Worker threads; defaults to the available parallelism.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: Option<u32>,
    #[command(flatten)]
    pub common: CommonArguments,
}

#[derive(Debug, Args)]
pub struct ExploreArguments {
    /// Scenario name or path to a .toml file.
    #[arg(long)]
    pub scenario: String,
    #[arg(long)]
    pub seed: u64,
    /// Check at most this many crash states, spread fairly over the crash points.
    #[arg(long, default_value_t = crate::explore::MAX_STATES_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_states: u64,
    /// Recovered states that go on past their recovery (durable commits and a checkpoint,
    /// every I/O call of that a second crash point, then a final read-back); 0: none. With
    /// --point and --state, any value but 0 continues that one state.
    #[arg(long = "continue", value_name = "N",
          default_value_t = crate::explore::CONTINUE_STATES_DEFAULT)]
    pub continue_states: u64,
    /// Re-check one crash point (its index in a failure line) with logging; needs --state.
    #[arg(long, requires = "state")]
    pub point: Option<usize>,
    /// The crash state to re-check at --point (its index in a failure line).
    #[arg(long, requires = "point")]
    pub state: Option<u64>,
    #[command(flatten)]
    pub common: CommonArguments,
}

#[derive(Debug, Args)]
pub struct ShrinkArguments {
    /// Scenario name or path to a .toml file.
    #[arg(long)]
    pub scenario: String,
    #[arg(long)]
    pub seed: u64,
    /// Where to write the shrunk scenario and its schedule.
    #[arg(long, value_name = "DIR", default_value = "shrunk")]
    pub out: PathBuf,
    /// Replays the search may spend.
    #[arg(long, default_value_t = crate::shrink::RUNS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    #[command(flatten)]
    pub common: CommonArguments,
}

#[derive(Debug, Args)]
pub struct BenchArguments {
    /// Scenario name or path to a .toml file (default smoke). Alone, or with --seeds, it runs
    /// the cycles-per-second measure instead of the report.
    #[arg(long)]
    pub scenario: Option<String>,
    /// The checkpoint strategy: sharp, fuzzy, physical-log, or all (each in turn; the
    /// report's default).
    #[arg(long, value_name = "NAME")]
    pub strategy: Option<StrategyChoice>,
    /// Measure cycles per second over these seeds (as in `run`: `A..B`, `A..=B` or `N`)
    /// instead of writing the report.
    #[arg(long, conflicts_with_all = ["out", "quick"])]
    pub seeds: Option<SeedRange>,
    /// Where the report (report.md) and its SVG plots go (default bench-report/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A reduced run of every part (under five minutes) that prints the ratios, for CI.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Args)]
pub struct RealcrashArguments {
    /// Scenario whose workload and engine settings the child runs.
    #[arg(long, default_value = "smoke")]
    pub scenario: String,
    /// The checkpoint strategy: sharp, fuzzy, physical-log, or all (default: all, in turn).
    #[arg(long, value_name = "NAME")]
    pub strategy: Option<StrategyChoice>,
    /// How long to keep killing (`60s`, `10m`); the default when --iterations is not given
    /// is 60s.
    #[arg(long, value_name = "TIME", conflicts_with = "iterations")]
    pub duration: Option<DurationArgument>,
    /// Kills per strategy, instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Seeds the kill moments and the children's workloads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The longest a child runs before a random kill, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub kill_delay_max_ms: u64,
    /// Plant a harness bug (needs the canary feature): acknowledge-before-durable.
    #[arg(long, value_name = "NAME")]
    pub canary: Option<String>,
}

#[derive(Debug, Args)]
pub struct RealcrashChildArguments {
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub scenario: String,
    #[arg(long)]
    pub strategy: String,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub hold_at_step: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub hold_at_occurrence: u64,
    #[arg(long)]
    pub planted: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArguments {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CommonArguments {
    /// Enable a planted bug by name (needs the `canary` feature), to prove the checks can fail.
    #[arg(long, value_name = "NAME")]
    pub canary: Option<String>,
    /// The checkpoint strategy: sharp, fuzzy, physical-log, or all (each in turn). Without it
    /// a scenario runs with its own `[engine] strategy`, and `run` with no scenario runs every
    /// strategy.
    #[arg(long, value_name = "NAME")]
    pub strategy: Option<StrategyChoice>,
}

/// `--strategy`: one strategy by name, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyChoice {
    One(crashpoint::Strategy),
    All,
}

impl std::str::FromStr for StrategyChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "all" {
            return Ok(StrategyChoice::All);
        }
        crashpoint::Strategy::from_name(text)
            .map(StrategyChoice::One)
            .ok_or_else(|| {
                let known: Vec<&str> = crashpoint::Strategy::ALL
                    .iter()
                    .map(|strategy| strategy.name())
                    .collect();
                format!(
                    "unknown strategy `{text}`, expected all or one of: {}",
                    known.join(", ")
                )
            })
    }
}

/// The scenarios to run: each of `scenarios` with every strategy `choice` names, or as it is.
fn with_strategies(
    scenarios: Vec<crate::scenario::Scenario>,
    choice: Option<StrategyChoice>,
) -> anyhow::Result<Vec<crate::scenario::Scenario>> {
    let strategies = match choice {
        None => return Ok(scenarios),
        Some(StrategyChoice::One(strategy)) => vec![strategy],
        Some(StrategyChoice::All) => crashpoint::Strategy::ALL.to_vec(),
    };
    let mut concrete = Vec::with_capacity(scenarios.len() * strategies.len());
    for scenario in &scenarios {
        // Checkpoint strategies are crashpoint's: another subject runs once, as it is.
        if scenario.subject != crate::subjects::SubjectName::Crashpoint {
            concrete.push(scenario.clone());
            continue;
        }
        for &strategy in &strategies {
            concrete.push(
                scenario
                    .with_strategy(strategy)
                    .map_err(anyhow::Error::msg)?,
            );
        }
    }
    Ok(concrete)
}

/// One scenario name or path, with each strategy `--strategy` names.
fn resolve_scenarios(
    name_or_path: &str,
    choice: Option<StrategyChoice>,
) -> anyhow::Result<Vec<crate::scenario::Scenario>> {
    with_strategies(vec![resolve_scenario(name_or_path)?], choice)
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let arguments = match Arguments::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            // Help and version requests are clap "errors" too, but they succeeded.
            let code = if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_SUCCESS
            };
            let _ = error.print();
            return code;
        }
    };
    match execute(arguments) {
        Ok(code) => code,
        Err(error) => {
            print_error_chain(&error);
            EXIT_USAGE
        }
    }
}

/// Runs a parsed command. `Err` means a usage or configuration error; a failed check is
/// `Ok(EXIT_CHECK_FAILED)`.
pub fn execute(arguments: Arguments) -> anyhow::Result<i32> {
    match arguments.command {
        Command::Run(arguments) => run::run(arguments),
        Command::Merge(arguments) => merge::merge(arguments),
        Command::Soak(arguments) => soak::soak(arguments),
        Command::Replay(arguments) => replay::replay(arguments),
        Command::CheckDeterminism(arguments) => check_determinism::check_determinism(arguments),
        Command::Explore(arguments) => explore::explore(arguments),
        Command::Shrink(arguments) => shrink::shrink(arguments),
        Command::Bench(arguments) => bench::bench(arguments),
        Command::Compare(arguments) => compare::compare(arguments),
        Command::Realcrash(arguments) => realcrash::realcrash(arguments),
        Command::RealcrashChild(arguments) => realcrash::realcrash_child(arguments),
        Command::ListScenarios => list_scenarios::list_scenarios(),
        Command::Completions(arguments) => completions::completions(arguments),
    }
}

fn print_error_chain(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// Rejects a canary the engine does not have, or any canary when the feature is off, before
/// spending time on seeds that would silently run without it.
fn check_canary(canary: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = canary else { return Ok(()) };
    #[cfg(feature = "canary")]
    {
        let subject_canary = crate::subjects::redb::RedbCanary::from_name(name).is_some();
        if crashpoint::Canary::from_name(name).is_none() && !subject_canary {
            let known: Vec<&str> = crashpoint::Canary::ALL
                .iter()
                .map(|canary| canary.name())
                .chain(crate::subjects::redb::RedbCanary::ALL.map(|canary| canary.name()))
                .collect();
            anyhow::bail!(
                "unknown canary `{name}`; known canaries: {}",
                known.join(", ")
            );
        }
        Ok(())
    }
    #[cfg(not(feature = "canary"))]
    {
        anyhow::bail!(
            "--canary {name} needs a build with the canary feature \
             (cargo run --release -p crashpoint-sim --features canary -- ...)"
        )
    }
}

/// Worker threads: the requested count, else the available parallelism.
fn job_count(jobs: Option<u32>) -> usize {
    jobs.map(|jobs| jobs as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|count| count.get())
            .unwrap_or(1)
    })
}

/// Resolves a scenario name or path against the scenario directory.
fn resolve_scenario(name_or_path: &str) -> anyhow::Result<crate::scenario::Scenario> {
    let directory = crate::scenario::default_directory();
    let mut scenario = crate::scenario::Scenario::resolve(name_or_path, &directory)?;
    scenario.path = shown_path(&scenario.path);
    if let Some(path) = &scenario.schedule {
        // A bad schedule is a configuration error (exit 2), found before any seed runs.
        crate::schedule::Schedule::load(path).map_err(anyhow::Error::msg)?;
    }
    Ok(scenario)
}

/// `path` relative to the current directory when it lies inside it, so replay lines stay short;
/// otherwise as it is (an absolute path replays from anywhere).
fn shown_path(path: &Path) -> PathBuf {
    match std::env::current_dir()
        .ok()
        .and_then(|current| path.strip_prefix(current).ok())
    {
        Some(relative) if relative.as_os_str().is_empty() => PathBuf::from("."),
        Some(relative) => relative.to_path_buf(),
        None => path.to_path_buf(),
    }
}

/// Installs a log subscriber writing to stderr: RUST_LOG when set, else `default_level`.
fn install_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A subscriber may already be installed (tests call `execute` repeatedly); keep it.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(log_format::SimulatedLine)
        .with_env_filter(filter)
        .try_init();
}
