//! Scenario files: what one simulated run does, loaded from TOML and validated.
//!
//! A scenario names a workload (clients, transaction sizes, key space), the engine settings, the
//! rates of injected disk faults and how crashes are chosen. Every field has a default, so a file
//! only states what it changes; unknown fields are errors, so a typo cannot silently fall back to
//! a default. Errors name the file, the line and the field (`scenarios/bad.toml:7: field
//! `workload.writes_max`: ...`).
//!
//! A swarm scenario does not run its configured rates directly: [`Scenario::for_seed`] draws a
//! concrete scenario per seed (some faults off, others at a random fraction of their maximum),
//! because one fixed mix of faults explores far fewer interleavings than many random mixes.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fs;
use crate::subjects::SubjectName;

/// The environment variable that overrides the default scenario directory.
pub const SCENARIO_DIRECTORY_VARIABLE: &str = "CRASHPOINT_SCENARIOS";

/// Mixed into a seed before drawing a swarm configuration, so the swarm draw and the driver's
/// own random streams (seeded from the same seed) are not correlated.
const SWARM_SEED_SALT: u64 = 0x5357_4152_4d5f_4452; // "SWARM_DR"

/// The directory scenario names resolve in: `$CRASHPOINT_SCENARIOS`, else the `scenarios`
/// directory of the repository this binary was built from, so names work from any directory.
pub fn default_directory() -> PathBuf {
    std::env::var_os(SCENARIO_DIRECTORY_VARIABLE)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the simulator crate lives inside the repository")
                .join("scenarios")
        })
}

/// A scenario that cannot be loaded. Every variant names the file; parse and validation errors
/// also name the line and, where known, the field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read scenario file", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot list scenario directory", .path.display())]
    ListDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown field.
    #[error("{}:{line}: {}{message}", .path.display(), field_prefix(.field.as_deref()))]
    Toml {
        path: PathBuf,
        line: usize,
        field: Option<String>,
        message: String,
    },
    /// Well-formed TOML with a value the harness cannot run.
    #[error("{}:{line}: field `{field}`: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

fn field_prefix(field: Option<&str>) -> String {
    match field {
        Some(field) => format!("field `{field}`: "),
        None => String::new(),
    }
}

impl ScenarioError {
    /// The 1-based line the error points at, if it is a parse or validation error.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Toml { line, .. } | ScenarioError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The dotted field path the error is about (`workload.writes_max`), if known.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Toml { field, .. } => field.as_deref(),
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            ScenarioError::Read { path, .. }
            | ScenarioError::ListDirectory { path, .. }
            | ScenarioError::Toml { path, .. }
            | ScenarioError::Invalid { path, .. } => path,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// From `name`, else the file stem.
    pub name: String,
    /// Where the scenario was loaded from; not part of the TOML.
    pub path: PathBuf,
    pub description: String,
    /// Part of the default set `run` uses when no scenario is named.
    pub default: bool,
    /// Draw fault rates, sync mode, cache size and crash mode per seed ([`Scenario::for_seed`]).
    pub swarm: bool,
    /// Crashes (each followed by recovery and a check) per seed.
    pub crashes_per_seed: u32,
    /// The system under test (`subject = "redb"`); crashpoint when not given.
    pub subject: SubjectName,
    pub workload: Workload,
    pub engine: EngineConfig,
    /// The simulated disk's own fault configuration: rates, sector size, latency.
    pub faults: fs::FaultConfig,
    pub crash: CrashSection,
    /// A schedule (JSON, written by `shrink`) that scripts the run: each client's operations,
    /// the faults, the crashes. Relative paths are resolved against the scenario's directory.
    pub schedule: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    Uniform,
    /// Most operations hit a few hot keys, so pages are rewritten while their checkpoint is
    /// pending and clones are exercised.
    Skewed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    pub clients: u32,
    /// Transactions each client runs per phase (between two crashes).
    pub transactions_per_client: u32,
    pub writes_min: u32,
    pub writes_max: u32,
    /// Size of the key space.
    pub keys: u64,
    pub key_distribution: KeyDistribution,
    pub value_size_min: u32,
    pub value_size_max: u32,
    /// Fraction of writes that are deletes.
    pub delete_ratio: f64,
    /// Fraction of client operations that are a get or a scan instead of a transaction.
    pub read_ratio: f64,
    pub think_time_max_ms: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            clients: 3,
            transactions_per_client: 30,
            writes_min: 1,
            writes_max: 4,
            keys: 200,
            key_distribution: KeyDistribution::Uniform,
            value_size_min: 1,
            value_size_max: 64,
            delete_ratio: 0.1,
            read_ratio: 0.2,
            think_time_max_ms: 2,
        }
    }
}

/// The engine's [`crashpoint::SyncMode`], as scenario files spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncModeName {
    Instant,
    Periodic,
    NoSync,
}

impl SyncModeName {
    pub const ALL: [SyncModeName; 3] = [
        SyncModeName::Instant,
        SyncModeName::Periodic,
        SyncModeName::NoSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncModeName::Instant => "instant",
            SyncModeName::Periodic => "periodic",
            SyncModeName::NoSync => "no-sync",
        }
    }
}

impl From<SyncModeName> for crashpoint::SyncMode {
    fn from(name: SyncModeName) -> Self {
        match name {
            SyncModeName::Instant => crashpoint::SyncMode::Instant,
            SyncModeName::Periodic => crashpoint::SyncMode::Periodic,
            SyncModeName::NoSync => crashpoint::SyncMode::NoSync,
        }
    }
}

impl fmt::Display for SyncModeName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The checkpoint design: "sharp", "fuzzy" or "physical-log".
    #[serde(with = "strategy_name")]
    pub strategy: crashpoint::Strategy,
    pub sync_mode: SyncModeName,
    pub checkpoint_interval_ms: u64,
    /// Period of the group-commit log sync (sync mode periodic).
    pub log_sync_interval_ms: u64,
    pub cache_pages: usize,
    pub page_size_bytes: usize,
    pub log_segment_bytes: u64,
    /// Checkpoint trigger: redo log bytes since the last checkpoint (PostgreSQL's
    /// max_wal_size).
    pub checkpoint_log_bytes: u64,
    /// Checkpoint trigger: dirty page bytes in the cache over this (Lealone's
    /// dirty_page_cache_size); default four times the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirty_bytes_limit: Option<u64>,
    /// How often the checkpointer polls the triggers (Lealone's loop interval); default
    /// `checkpoint_interval_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_poll_interval_ms: Option<u64>,
    /// Checkpoint trigger: the log's capacity (GBase 8t); at 90% full writers wait for a
    /// checkpoint. Default: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_capacity_bytes: Option<u64>,
    /// The chance that a checkpointer poll requests a forced checkpoint
    /// (`request_checkpoint`) instead of checking the triggers.
    pub forced_checkpoint_ratio: f64,
}

impl EngineConfig {
    /// The dirty-bytes trigger's limit: as written, else four times the cache.
    pub fn dirty_bytes_limit(&self) -> u64 {
        self.dirty_bytes_limit
            .unwrap_or((self.cache_pages * 4 * self.page_size_bytes) as u64)
    }

    /// The checkpointer's poll interval: as written, else the checkpoint interval.
    pub fn checkpoint_poll_interval_ms(&self) -> u64 {
        self.checkpoint_poll_interval_ms
            .unwrap_or(self.checkpoint_interval_ms)
            .max(1)
    }
}

/// `crashpoint::Strategy` as scenario files spell it.
mod strategy_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        strategy: &crashpoint::Strategy,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(strategy.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<crashpoint::Strategy, D::Error> {
        let name = String::deserialize(deserializer)?;
        crashpoint::Strategy::from_name(&name).ok_or_else(|| {
            let known: Vec<&str> = crashpoint::Strategy::ALL.iter().map(|s| s.name()).collect();
            serde::de::Error::custom(format!(
                "unknown strategy `{name}`, expected one of: {}",
                known.join(", ")
            ))
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            strategy: crashpoint::Strategy::Sharp,
            sync_mode: SyncModeName::Instant,
            checkpoint_interval_ms: 20,
            log_sync_interval_ms: 2,
            cache_pages: 16,
            page_size_bytes: 512,
            log_segment_bytes: 8192,
            checkpoint_log_bytes: 1 << 20,
            dirty_bytes_limit: None,
            checkpoint_poll_interval_ms: None,
            log_capacity_bytes: None,
            forced_checkpoint_ratio: 1.0 / 3.0,
        }
    }
}

/// How the crash point of a phase is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashMode {
    /// Right after a named checkpoint step.
    Step,
    /// At the k-th I/O inside a checkpoint window.
    Io,
    /// At a random simulated time after the phase starts.
    Random,
}

impl CrashMode {
    pub const ALL: [CrashMode; 3] = [CrashMode::Step, CrashMode::Io, CrashMode::Random];

    pub fn name(self) -> &'static str {
        match self {
            CrashMode::Step => "step",
            CrashMode::Io => "io",
            CrashMode::Random => "random",
        }
    }
}

impl fmt::Display for CrashMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The `[crash]` section: when each phase crashes, and (embedded, the simulated disk's own
/// [`fs::CrashConfig`]) what the crash does to the writes that were not yet durable.
///
/// `fates` is flattened, so a file writes `survive`, `vanish`, `torn` and `reorder` right under
/// `[crash]`. Serde cannot deny unknown fields across a flatten, so [`Scenario::parse`] checks
/// this section's keys itself ([`check_flattened_section`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrashSection {
    pub mode: CrashMode,
    /// Mode step: the checkpoint steps to crash at; empty means every step.
    pub steps: Vec<String>,
    /// Mode io: crash at the k-th I/O of a checkpoint window, k in 1..=io_max.
    pub io_max: u32,
    /// Mode step: half the crashes land on a step, half on the k-th I/O call after it, k in
    /// 1..=step_io_max (or on the next step, if it comes first); 0: only on the steps.
    pub step_io_max: u32,
    /// Mode random: crash at a time in 1..=time_max_ms after the phase starts.
    pub time_max_ms: u64,
    /// The fate of each unsynced write at a crash; `survive + vanish + torn` must be 1.
    #[serde(flatten)]
    pub fates: fs::CrashConfig,
}

impl Default for CrashSection {
    fn default() -> Self {
        Self {
            mode: CrashMode::Random,
            steps: Vec::new(),
            io_max: 40,
            step_io_max: 8,
            time_max_ms: 300,
            fates: fs::CrashConfig::default(),
        }
    }
}

/// The file as written: like [`Scenario`] but with the name optional and no path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_true")]
    default: bool,
    #[serde(default)]
    swarm: bool,
    #[serde(default = "default_crashes_per_seed")]
    crashes_per_seed: u32,
    #[serde(default)]
    subject: SubjectName,
    #[serde(default)]
    workload: Workload,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    faults: fs::FaultConfig,
    #[serde(default)]
    schedule: Option<PathBuf>,
    #[serde(default)]
    crash: CrashSection,
}

fn default_true() -> bool {
    true
}

fn default_crashes_per_seed() -> u32 {
    3
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` names the scenario in errors and supplies the
    /// default name.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let toml_error = |error: toml::de::Error| {
            let line = error
                .span()
                .map_or(1, |span| line_of_offset(text, span.start));
            ScenarioError::Toml {
                path: path.to_path_buf(),
                line,
                field: field_at_line(text, line),
                message: error.message().trim_end().to_string(),
            }
        };
        // Syntax first, then the sections with flattened parts key by key (their errors would
        // otherwise lose the key), then everything typed.
        let table: toml::Table = toml::from_str(text).map_err(toml_error)?;
        if let Some(toml::Value::Table(crash)) = table.get("crash") {
            check_flattened_section::<CrashSection>(crash, "crash").map_err(|invalid| {
                ScenarioError::Toml {
                    path: path.to_path_buf(),
                    line: line_of_field(text, &invalid.field),
                    field: Some(invalid.field),
                    message: invalid.message,
                }
            })?;
        }
        let file: ScenarioFile = toml::from_str(text).map_err(toml_error)?;
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let scenario = Scenario {
            name,
            path: path.to_path_buf(),
            description: file.description,
            default: file.default,
            swarm: file.swarm,
            crashes_per_seed: file.crashes_per_seed,
            subject: file.subject,
            workload: file.workload,
            engine: file.engine,
            faults: file.faults,
            crash: file.crash,
            schedule: file.schedule.map(|schedule| match path.parent() {
                Some(directory) if schedule.is_relative() => directory.join(schedule),
                _ => schedule,
            }),
        };
        scenario
            .validate()
            .map_err(|invalid| ScenarioError::Invalid {
                path: path.to_path_buf(),
                line: line_of_field(text, &invalid.field),
                field: invalid.field,
                message: invalid.message,
            })?;
        Ok(scenario)
    }

    /// `smoke` → `smoke.toml` under `dir`; a path with a '/' or ending in `.toml` is used as is.
    pub fn resolve(name_or_path: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            Scenario::load(Path::new(name_or_path))
        } else {
            Scenario::load(&dir.join(format!("{name_or_path}.toml")))
        }
    }

    /// Every `*.toml` in `dir` with `default = true`, sorted by name.
    pub fn default_set(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let mut scenarios = Scenario::all(dir)?;
        scenarios.retain(|scenario| scenario.default);
        Ok(scenarios)
    }

    /// Every `*.toml` in `dir`, sorted by name.
    pub fn all(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let list_error = |source| ScenarioError::ListDirectory {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(list_error)? {
            let path = entry.map_err(list_error)?.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "toml")
                && path.is_file()
            {
                paths.push(path);
            }
        }
        // Sort paths first so that, should two files share a name, the order is still stable.
        paths.sort();
        let mut scenarios = paths
            .iter()
            .map(|path| Scenario::load(path))
            .collect::<Result<Vec<_>, _>>()?;
        scenarios.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(scenarios)
    }

    /// The concrete scenario for `seed`. For a swarm scenario: each fault rate is off with
    /// probability 1/2, else uniform in [0, configured rate]; the sync mode and crash mode are
    /// drawn from all three; cache_pages is uniform in [8, configured]; the sector size is any
    /// power of two from 64 bytes up to the configured one, the log segment size any power of
    /// two from 4 KiB to 64 KiB; and one seed in four draws a tiny tree: 1 to 16 keys (a page
    /// or a few) under misdirected writes up to four times the configured rate, where a
    /// misdirected write in a small data file lands on live translation and page blocks. The
    /// result has `swarm` off, so drawing again from it is a no-op. Other scenarios come back
    /// unchanged.
    pub fn for_seed(&self, seed: u64) -> Scenario {
        let mut concrete = self.clone();
        if !self.swarm {
            return concrete;
        }
        // The draw order is part of the replay contract: changing it changes every swarm seed.
        // Draws added after the first seven rates come from a second stream, so the first
        // stream's draws stay where they were.
        let mut random = ChaCha8Rng::seed_from_u64(seed ^ SWARM_SEED_SALT);
        let mut wider = random.clone();
        wider.set_stream(1);
        for (name, rate) in concrete.faults.rates_mut() {
            let stream = if FIRST_STREAM_RATES.contains(&name) {
                &mut random
            } else {
                &mut wider
            };
            *rate = if stream.gen_bool(0.5) {
                0.0
            } else {
                *rate * stream.gen::<f64>()
            };
        }
        concrete.engine.sync_mode = *SyncModeName::ALL.choose(&mut random).expect("not empty");
        concrete.engine.cache_pages = random.gen_range(CACHE_PAGES_MIN..=self.engine.cache_pages);
        concrete.crash.mode = *CrashMode::ALL.choose(&mut random).expect("not empty");

        let sector_sizes: Vec<u64> = (SECTOR_SIZE_MIN.trailing_zeros()
            ..=self.faults.sector_size_bytes.trailing_zeros())
            .map(|shift| 1u64 << shift)
            .collect();
        concrete.faults.sector_size_bytes = *sector_sizes.choose(&mut wider).expect("not empty");
        concrete.engine.log_segment_bytes = 1 << wider.gen_range(12..=16);
        if wider.gen_ratio(1, 4) {
            concrete.workload.keys =
                wider.gen_range(1..=TINY_TREE_KEYS_MAX.min(self.workload.keys));
            concrete.faults.misdirected_write =
                (self.faults.misdirected_write * 4.0 * wider.gen::<f64>()).min(1.0);
        }
        concrete.swarm = false;
        concrete
    }

    /// The checkpoint steps a step-mode crash picks from: the scenario's `crash.steps` that
    /// its strategy has, or every step of the strategy when the list is empty or names none of
    /// them (a list written for another strategy).
    pub fn step_names(&self) -> Vec<&'static str> {
        let steps = self.engine.strategy.steps();
        let chosen: Vec<&'static str> = steps
            .iter()
            .map(|step| step.name)
            .filter(|name| self.crash.steps.iter().any(|wanted| wanted == name))
            .collect();
        if chosen.is_empty() {
            steps.iter().map(|step| step.name).collect()
        } else {
            chosen
        }
    }

    /// What reports name the run by beside the scenario: the checkpoint strategy for
    /// crashpoint, else the subject (strategies are crashpoint's alone).
    pub fn strategy_label(&self) -> &'static str {
        if self.subject.is_dedicated() {
            self.engine.strategy.name()
        } else {
            self.subject.name()
        }
    }

    /// The strategy a replay line names: crashpoint's, or None for another subject, whose
    /// scenario has none.
    pub fn replay_strategy(&self) -> Option<crashpoint::Strategy> {
        self.subject.is_dedicated().then_some(self.engine.strategy)
    }

    /// This scenario run with `strategy` instead of its own, checked as a file would be.
    pub fn with_strategy(&self, strategy: crashpoint::Strategy) -> Result<Scenario, String> {
        let mut scenario = self.clone();
        scenario.engine.strategy = strategy;
        scenario.check_engine_options().map_err(|invalid| {
            format!(
                "scenario {} with the {strategy} strategy: {}: {}",
                self.name, invalid.field, invalid.message
            )
        })?;
        Ok(scenario)
    }

    /// The engine must accept the options the scenario makes (the in-place strategies need an
    /// entry to fit half a page).
    fn check_engine_options(&self) -> Result<(), InvalidField> {
        crate::driver::engine_options(self, None)
            .map(|_| ())
            .map_err(|message| InvalidField::new("engine.strategy", message))
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidField::new(
                "name",
                format!(
                    "must be non-empty and use only letters, digits, '-' and '_', found {:?}",
                    self.name
                ),
            ));
        }
        in_range("crashes_per_seed", self.crashes_per_seed, 1, 100)?;
        if !self.subject.promise().has_checkpoint_steps
            && (self.swarm || self.crash.mode == CrashMode::Step)
        {
            return Err(InvalidField::new(
                if self.swarm { "swarm" } else { "crash.mode" },
                format!(
                    "subject {} reports no checkpoint steps, so it can't crash at one (swarm \
                     draws step crashes too): use crash mode io or random",
                    self.subject
                ),
            ));
        }

        let workload = &self.workload;
        in_range("workload.clients", workload.clients, 1, 64)?;
        in_range(
            "workload.transactions_per_client",
            workload.transactions_per_client,
            1,
            100_000,
        )?;
        in_range(
            "workload.writes_min",
            workload.writes_min,
            1,
            WRITES_PER_TRANSACTION_MAX,
        )?;
        not_below(
            "workload.writes_max",
            workload.writes_max,
            "writes_min",
            workload.writes_min,
        )?;
        in_range(
            "workload.writes_max",
            workload.writes_max,
            1,
            WRITES_PER_TRANSACTION_MAX,
        )?;
        in_range("workload.keys", workload.keys, 1, KEYS_MAX)?;
        in_range(
            "workload.value_size_min",
            workload.value_size_min,
            1,
            VALUE_SIZE_MAX,
        )?;
        not_below(
            "workload.value_size_max",
            workload.value_size_max,
            "value_size_min",
            workload.value_size_min,
        )?;
        in_range(
            "workload.value_size_max",
            workload.value_size_max,
            1,
            VALUE_SIZE_MAX,
        )?;
        probability("workload.delete_ratio", workload.delete_ratio)?;
        probability("workload.read_ratio", workload.read_ratio)?;
        in_range(
            "workload.think_time_max_ms",
            workload.think_time_max_ms,
            0,
            60_000,
        )?;

        let engine = &self.engine;
        in_range(
            "engine.checkpoint_interval_ms",
            engine.checkpoint_interval_ms,
            1,
            3_600_000,
        )?;
        in_range(
            "engine.log_sync_interval_ms",
            engine.log_sync_interval_ms,
            1,
            60_000,
        )?;
        in_range(
            "engine.cache_pages",
            engine.cache_pages,
            CACHE_PAGES_MIN,
            1 << 20,
        )?;
        in_range(
            "engine.page_size_bytes",
            engine.page_size_bytes,
            256,
            1 << 20,
        )?;
        in_range(
            "engine.log_segment_bytes",
            engine.log_segment_bytes,
            4096,
            1 << 30,
        )?;
        in_range(
            "engine.checkpoint_log_bytes",
            engine.checkpoint_log_bytes,
            1,
            1 << 40,
        )?;
        if let Some(limit) = engine.dirty_bytes_limit {
            in_range(
                "engine.dirty_bytes_limit",
                limit,
                engine.page_size_bytes as u64,
                1 << 40,
            )?;
        }
        if let Some(interval) = engine.checkpoint_poll_interval_ms {
            in_range("engine.checkpoint_poll_interval_ms", interval, 1, 3_600_000)?;
        }
        if let Some(capacity) = engine.log_capacity_bytes {
            in_range(
                "engine.log_capacity_bytes",
                capacity,
                4 * engine.log_segment_bytes,
                1 << 40,
            )?;
        }
        probability(
            "engine.forced_checkpoint_ratio",
            engine.forced_checkpoint_ratio,
        )?;

        let faults = &self.faults;
        for (name, rate) in faults.rates() {
            probability(&format!("faults.{name}"), rate)?;
        }
        // The engine aligns data blocks to 512 bytes, so no block shares a sector with another
        // on such disks; on larger sectors a torn write would garble durable neighbours, a
        // disk the engine does not claim to survive.
        in_range(
            "faults.sector_size_bytes",
            faults.sector_size_bytes,
            SECTOR_SIZE_MIN,
            crashpoint::allocator::BLOCK_ALIGNMENT_BYTES,
        )?;
        if !faults.sector_size_bytes.is_power_of_two() {
            return Err(InvalidField::new(
                "faults.sector_size_bytes",
                format!("must be a power of two, found {}", faults.sector_size_bytes),
            ));
        }
        in_range(
            "faults.latency_min_us",
            faults.latency_min_us,
            0,
            10_000_000,
        )?;
        not_below(
            "faults.latency_max_us",
            faults.latency_max_us,
            "latency_min_us",
            faults.latency_min_us,
        )?;
        in_range(
            "faults.latency_max_us",
            faults.latency_max_us,
            0,
            10_000_000,
        )?;

        let crash = &self.crash;
        let known = crashpoint::Strategy::all_step_names();
        for step in &crash.steps {
            if !known.contains(&step.as_str()) {
                return Err(InvalidField::new(
                    "crash.steps",
                    format!(
                        "unknown checkpoint step `{step}`, expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        self.check_engine_options()?;
        in_range("crash.io_max", crash.io_max, 1, 1_000_000)?;
        in_range("crash.step_io_max", crash.step_io_max, 0, 1_000_000)?;
        in_range("crash.time_max_ms", crash.time_max_ms, 1, 3_600_000)?;
        let fates = &crash.fates;
        probability("crash.survive", fates.survive)?;
        probability("crash.vanish", fates.vanish)?;
        probability("crash.torn", fates.torn)?;
        probability("crash.cut", fates.cut)?;
        let sum = fates.survive + fates.vanish + fates.torn;
        if (sum - 1.0).abs() > 1e-9 {
            return Err(InvalidField::new(
                "crash.survive",
                format!(
                    "survive + vanish + torn must sum to 1, found {} + {} + {} = {sum}",
                    fates.survive, fates.vanish, fates.torn
                ),
            ));
        }
        if fates.survive + fates.vanish <= 0.0 {
            // A torn write needs whole writes beside it to tear against.
            return Err(InvalidField::new(
                "crash.survive",
                "survive and vanish can't both be 0: the crash model needs whole writes too"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// The engine refuses smaller caches; swarm draws never go below it either.
const CACHE_PAGES_MIN: usize = 8;
/// The smallest sector a scenario may ask for.
const SECTOR_SIZE_MIN: u64 = 64;
/// A swarm tiny tree has at most this many keys.
const TINY_TREE_KEYS_MAX: u64 = 16;
/// The rates swarm draws from its first stream, in the order it always has.
const FIRST_STREAM_RATES: [&str; 7] = [
    "write_error",
    "no_space",
    "misdirected_write",
    "lying_fsync",
    "fsync_error",
    "short_read",
    "bit_rot",
];
/// Bounds that keep one seed cheap and every buffer in the driver bounded.
const WRITES_PER_TRANSACTION_MAX: u32 = 1_000;
const KEYS_MAX: u64 = 1 << 32;
const VALUE_SIZE_MAX: u32 = 16_384;

/// A validation failure before the file position is known.
struct InvalidField {
    field: String,
    message: String,
}

impl InvalidField {
    fn new(field: &str, message: String) -> Self {
        Self {
            field: field.to_string(),
            message,
        }
    }
}

fn in_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), InvalidField>
where
    T: PartialOrd + fmt::Display,
{
    if value < min || value > max {
        return Err(InvalidField::new(
            field,
            format!("must be in {min}..={max}, found {value}"),
        ));
    }
    Ok(())
}

fn not_below<T>(field: &str, value: T, other_name: &str, other: T) -> Result<(), InvalidField>
where
    T: PartialOrd + fmt::Display,
{
    if value < other {
        return Err(InvalidField::new(
            field,
            format!("must be >= {other_name} ({other}), found {value}"),
        ));
    }
    Ok(())
}

fn probability(field: &str, value: f64) -> Result<(), InvalidField> {
    // Written so NaN fails too.
    if !(0.0..=1.0).contains(&value) {
        return Err(InvalidField::new(
            field,
            format!("must be in 0..=1, found {value}"),
        ));
    }
    Ok(())
}

/// Checks each key of a section whose type flattens other types into it: the key must be a
/// field of `T` (its own or a flattened part's), and its value alone must deserialize into `T`.
/// Serde cannot deny unknown fields across a flatten, and a type error inside a flattened part
/// reports the section instead of the key, so the section is checked key by key first.
fn check_flattened_section<T>(section: &toml::Table, name: &str) -> Result<(), InvalidField>
where
    T: DeserializeOwned + Serialize + Default,
{
    let known: Vec<String> = match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    };
    for (key, value) in section {
        let field = format!("{name}.{key}");
        if !known.contains(key) {
            let expected: Vec<String> = known.iter().map(|known| format!("`{known}`")).collect();
            return Err(InvalidField::new(
                &field,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            ));
        }
        let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
        if let Err(error) = T::deserialize(toml::Value::Table(alone)) {
            return Err(InvalidField::new(
                &field,
                error.message().trim_end().to_string(),
            ));
        }
    }
    Ok(())
}

/// The 1-based line holding byte `offset`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

/// One line of a scenario file, as far as locating fields needs: a table header or a key.
enum LineKind {
    Header(String),
    /// The full dotted key path the line assigns (table prefix included).
    Key(String),
    Other,
}

/// Classifies each line, tracking the current table. This is not a TOML parser: it only has to
/// find where a field of an already-parsed, valid file is written, so multi-line strings that
/// contain `key = value` text could mislead it, which at worst points at the wrong line.
fn classify_lines(text: &str) -> Vec<LineKind> {
    let mut table = String::new();
    let mut kinds = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim_start_matches('[');
            table = normalize_key(name);
            kinds.push(LineKind::Header(table.clone()));
        } else if let Some((key, _)) = trimmed.split_once('=') {
            if trimmed.starts_with('#') || key.trim().is_empty() {
                kinds.push(LineKind::Other);
                continue;
            }
            let key = normalize_key(key);
            let full = if table.is_empty() {
                key
            } else {
                format!("{table}.{key}")
            };
            kinds.push(LineKind::Key(full));
        } else {
            kinds.push(LineKind::Other);
        }
    }
    kinds
}

/// `workload . "writes_max"` → `workload.writes_max`.
fn normalize_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// The field a TOML error at `line` is about: the key assigned on that line, or the table whose
/// header it is.
fn field_at_line(text: &str, line: usize) -> Option<String> {
    match classify_lines(text).into_iter().nth(line.checked_sub(1)?)? {
        LineKind::Header(table) => Some(table),
        LineKind::Key(key) => Some(key),
        LineKind::Other => None,
    }
}

/// The line to blame for an invalid `field`: where it is written; else, for the sum of the
/// crash fates, whichever fate is written first; else the header of its table (or the inline
/// table assigning it); else line 1, since a default value broke a rule only through some other
/// field.
fn line_of_field(text: &str, field: &str) -> usize {
    let kinds = classify_lines(text);
    let find = |wanted: &str| {
        kinds
            .iter()
            .position(|kind| matches!(kind, LineKind::Key(key) if key == wanted))
    };
    if let Some(index) = find(field) {
        return index + 1;
    }
    if field == "crash.survive" {
        if let Some(index) = ["crash.vanish", "crash.torn"].into_iter().find_map(find) {
            return index + 1;
        }
    }
    if let Some((table, _)) = field.rsplit_once('.') {
        let table_line = kinds.iter().position(|kind| match kind {
            LineKind::Header(header) => header == table,
            LineKind::Key(key) => key == table,
            LineKind::Other => false,
        });
        if let Some(index) = table_line {
            return index + 1;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("scenarios/test.toml"))
    }

    // An empty file is a complete scenario named after its file, with the documented defaults.
    #[test]
    fn empty_file_gets_defaults_and_file_stem_name() {
        let scenario = parse("").unwrap();
        assert_eq!(scenario.name, "test");
        assert!(scenario.default);
        assert!(!scenario.swarm);
        assert_eq!(scenario.crashes_per_seed, 3);
        assert_eq!(scenario.workload, Workload::default());
        assert_eq!(scenario.engine, EngineConfig::default());
        assert_eq!(scenario.faults, fs::FaultConfig::default());
        assert_eq!(scenario.crash, CrashSection::default());
    }

    // Enum values are spelled in kebab case in files.
    #[test]
    fn enums_use_kebab_case_names() {
        let scenario = parse(
            "[engine]\nsync_mode = \"no-sync\"\n[crash]\nmode = \"io\"\n\
             [workload]\nkey_distribution = \"skewed\"\n",
        )
        .unwrap();
        assert_eq!(scenario.engine.sync_mode, SyncModeName::NoSync);
        assert_eq!(scenario.crash.mode, CrashMode::Io);
        assert_eq!(scenario.workload.key_distribution, KeyDistribution::Skewed);
    }

    // A min > max error points at the max field's line and says both values.
    #[test]
    fn writes_max_below_writes_min_names_line_and_field() {
        let error = parse("name = \"x\"\n\n[workload]\nclients = 2\nwrites_max = 0\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "scenarios/test.toml:5: field `workload.writes_max`: must be >= writes_min (1), found 0"
        );
    }

    // A bad checkpoint trigger field names its line and field: a log capacity below four
    // segments, a forced ratio that is no probability, a zero poll interval.
    #[test]
    fn checkpoint_trigger_fields_name_line_and_field() {
        let cases = [
            ("log_capacity_bytes = 100", "engine.log_capacity_bytes"),
            (
                "forced_checkpoint_ratio = 1.5",
                "engine.forced_checkpoint_ratio",
            ),
            (
                "checkpoint_poll_interval_ms = 0",
                "engine.checkpoint_poll_interval_ms",
            ),
            ("dirty_bytes_limit = 1", "engine.dirty_bytes_limit"),
        ];
        for (line, field) in cases {
            let error = parse(&format!("[engine]\ncache_pages = 16\n{line}\n")).unwrap_err();
            assert_eq!(error.field(), Some(field), "{error}");
            assert_eq!(error.line(), Some(3), "{error}");
        }
        let scenario = parse("[engine]\ncache_pages = 20\npage_size_bytes = 512\n").unwrap();
        assert_eq!(scenario.engine.dirty_bytes_limit(), 4 * 20 * 512);
        assert_eq!(
            scenario.engine.checkpoint_poll_interval_ms(),
            scenario.engine.checkpoint_interval_ms
        );
    }

    // A type error names the line and the dotted key even though toml reports only a span.
    #[test]
    fn wrong_type_names_key_path() {
        let error = parse("[engine]\n\ncache_pages = \"many\"\n").unwrap_err();
        assert_eq!(error.line(), Some(3));
        assert_eq!(error.field(), Some("engine.cache_pages"));
    }

    // Dotted keys at the top level are located like keys under a table header.
    #[test]
    fn dotted_keys_are_located() {
        let error = parse("# header\nworkload.clients = 0\n").unwrap_err();
        assert_eq!(error.line(), Some(2));
        assert_eq!(error.field(), Some("workload.clients"));
    }

    // A rule broken by a default value blames the table that set the other side.
    #[test]
    fn default_value_blames_table_header() {
        let error = parse("\n[workload]\nwrites_min = 9\n").unwrap_err();
        assert_eq!(error.field(), Some("workload.writes_max"));
        assert_eq!(error.line(), Some(2));
    }

    // The disk's own crash fields, flattened under [crash], still get their line and dotted
    // key for a typo or a wrong type, as do the scenario's own crash fields beside them.
    #[test]
    fn flattened_crash_fields_keep_line_and_field_errors() {
        let error = parse("[crash]\nmode = \"io\"\nsurvve = 0.5\n").unwrap_err();
        assert_eq!(
            (error.line(), error.field()),
            (Some(3), Some("crash.survve"))
        );
        assert!(
            error.to_string().contains("unknown field `survve`"),
            "{error}"
        );
        let error = parse("[crash]\n\ntorn = \"half\"\n").unwrap_err();
        assert_eq!((error.line(), error.field()), (Some(3), Some("crash.torn")));
        let error = parse("[crash]\nio_max = -1\n").unwrap_err();
        assert_eq!(
            (error.line(), error.field()),
            (Some(2), Some("crash.io_max"))
        );
        let scenario =
            parse("[crash]\nmode = \"io\"\nsurvive = 0.5\nvanish = 0.5\ntorn = 0\n").unwrap();
        assert_eq!(scenario.crash.mode, CrashMode::Io);
        assert_eq!(scenario.crash.fates.survive, 0.5);
        assert!(scenario.crash.fates.reorder);
    }

    // The [faults] section is the disk's FaultConfig itself: its fields and its typo errors.
    #[test]
    fn faults_section_is_the_disk_fault_config() {
        let scenario = parse("[faults]\nbit_rot = 0.25\nsector_size_bytes = 128\n").unwrap();
        assert_eq!(scenario.faults.bit_rot, 0.25);
        assert_eq!(scenario.faults.sector_size_bytes, 128);
        let error = parse("[faults]\n\nbit_rott = 0.1\n").unwrap_err();
        assert_eq!(
            (error.line(), error.field()),
            (Some(3), Some("faults.bit_rott"))
        );
    }

    // Swarm reaches what only a hand-written scenario did: tiny trees under heavy
    // misdirected writes, every allowed sector size, segment sizes across a range, and every
    // draw is a valid scenario.
    #[test]
    fn swarm_draws_tiny_trees_and_every_sector_size() {
        let swarm = parse(
            "swarm = true\n[workload]\nkeys = 300\n[faults]\nmisdirected_write = 0.02\n\
             bit_rot = 0.02\n",
        )
        .unwrap();
        let draws: Vec<Scenario> = (0..400).map(|seed| swarm.for_seed(seed)).collect();
        for draw in &draws {
            draw.validate()
                .unwrap_or_else(|invalid| panic!("{}", invalid.message));
        }
        let tiny: Vec<&Scenario> = draws
            .iter()
            .filter(|draw| draw.workload.keys <= TINY_TREE_KEYS_MAX)
            .collect();
        assert!(
            (60..=140).contains(&tiny.len()),
            "{} of 400 draws are tiny trees",
            tiny.len()
        );
        assert!(tiny
            .iter()
            .any(|draw| draw.faults.misdirected_write > 0.02 && draw.workload.keys <= 4));
        assert!(draws
            .iter()
            .all(|draw| draw.workload.keys == 300 || draw.workload.keys <= TINY_TREE_KEYS_MAX));
        let sectors: std::collections::BTreeSet<u64> = draws
            .iter()
            .map(|draw| draw.faults.sector_size_bytes)
            .collect();
        assert_eq!(sectors, [64, 128, 256, 512].into_iter().collect());
        let segments: std::collections::BTreeSet<u64> = draws
            .iter()
            .map(|draw| draw.engine.log_segment_bytes)
            .collect();
        assert_eq!(segments.len(), 5);
    }

    // for_seed leaves non-swarm scenarios alone and keeps swarm draws within the configured caps.
    #[test]
    fn swarm_draws_stay_within_configured_rates() {
        let plain = parse("[faults]\nbit_rot = 0.5\n").unwrap();
        assert_eq!(plain.for_seed(7), plain);
        let swarm =
            parse("swarm = true\n[faults]\nbit_rot = 0.5\n[engine]\ncache_pages = 20\n").unwrap();
        for seed in 0..200 {
            let concrete = swarm.for_seed(seed);
            assert!(!concrete.swarm);
            assert!((0.0..=0.5).contains(&concrete.faults.bit_rot));
            assert_eq!(concrete.faults.write_error, 0.0);
            assert!((8..=20).contains(&concrete.engine.cache_pages));
            assert_eq!(concrete.for_seed(seed), concrete);
        }
    }
}
