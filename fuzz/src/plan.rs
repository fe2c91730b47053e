//! The `sim_structured` and `sim_canary` targets: a bounded plan for one simulated seed.
//!
//! A [`Plan`] is a seed and a small scenario (up to 3 clients of up to 20 transactions, fault
//! rates up to 0.05, up to 3 crashes). It is rendered as scenario TOML and loaded with
//! [`Scenario::parse`], so the fuzzer exercises the scenario parser and validation as well,
//! then run with [`run_seed`]: the workload, the crashes, recovery and the checks against the
//! simulator's model. A failed check panics with its kind, message and a replay command, so
//! libFuzzer saves the input as a crash artifact.

use std::fmt::Write as _;
use std::path::Path;

use arbitrary::Arbitrary;
use crashpoint::Strategy;
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::scenario::Scenario;

use crate::bounded::Bounded;

/// A rate in thousandths.
type Permille<const MAX: u64> = Bounded<0, MAX>;

#[derive(Arbitrary, Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub crashes_per_seed: Bounded<1, 3>,
    pub workload: WorkloadPlan,
    pub engine: EnginePlan,
    pub faults: FaultPlan,
    pub crash: CrashPlan,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct WorkloadPlan {
    pub clients: Bounded<1, 3>,
    pub transactions_per_client: Bounded<1, 20>,
    pub keys: Bounded<1, 200>,
    /// writes_min and writes_max are the smaller and the larger of these two.
    pub writes: [Bounded<1, 4>; 2],
    pub skewed: bool,
    /// value_size_min and value_size_max are the smaller and the larger of these two.
    pub value_sizes: [Bounded<1, 128>; 2],
    pub delete_ratio: Permille<1000>,
    pub read_ratio: Permille<1000>,
    pub think_time_max_ms: Bounded<0, 3>,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncModePlan {
    Instant,
    Periodic,
    NoSync,
}

impl SyncModePlan {
    fn name(self) -> &'static str {
        match self {
            SyncModePlan::Instant => "instant",
            SyncModePlan::Periodic => "periodic",
            SyncModePlan::NoSync => "no-sync",
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct EnginePlan {
    pub sync_mode: SyncModePlan,
    pub checkpoint_interval_ms: Bounded<1, 50>,
    pub log_sync_interval_ms: Bounded<1, 10>,
    pub cache_pages: Bounded<8, 32>,
    /// 1024-byte pages instead of 512.
    pub large_pages: bool,
    pub log_segment_bytes: Bounded<4096, 16_384>,
    /// An index into `Strategy::ALL`: every checkpoint design is fuzzed.
    pub strategy: Bounded<0, 2>,
}

impl EnginePlan {
    pub fn strategy(&self) -> Strategy {
        Strategy::ALL[self.strategy.get_usize()]
    }
}

/// Each rate in thousandths, at most 0.05.
#[derive(Arbitrary, Debug, Clone)]
pub struct FaultPlan {
    pub write_error: Permille<50>,
    pub no_space: Permille<50>,
    pub misdirected_write: Permille<50>,
    pub lying_fsync: Permille<50>,
    pub fsync_error: Permille<50>,
    pub short_read: Permille<50>,
    pub bit_rot: Permille<50>,
    /// An index into [`SECTOR_SIZES`].
    pub sector_size: Bounded<0, 2>,
    pub latency_max_us: Bounded<0, 100>,
}

/// The simulated disk's sector sizes a plan draws from. Sectors larger than the engine's
/// 512-byte data block alignment (`crashpoint::allocator::BLOCK_ALIGNMENT_BYTES`) are left out:
/// a torn write then garbles durable neighbour blocks in the same sector, which the oracle does
/// not excuse, so every such plan would fail the same known way.
pub const SECTOR_SIZES: [u64; 3] = [128, 256, 512];
const _: () = assert!(SECTOR_SIZES[2] <= crashpoint::allocator::BLOCK_ALIGNMENT_BYTES);

#[derive(Arbitrary, Debug, Clone)]
pub enum CrashModePlan {
    /// Right after one named checkpoint step: an index into the plan's strategy's steps,
    /// taken modulo their number.
    Step { step: Bounded<0, 31> },
    /// At the k-th I/O inside a checkpoint window, k in 1..=io_max.
    Io { io_max: Bounded<1, 60> },
    /// At a random time in 1..=time_max_ms.
    Random { time_max_ms: Bounded<1, 300> },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct CrashPlan {
    pub mode: CrashModePlan,
    /// Weights of the fates of an unsynced write at a crash: survive, vanish, torn. Zero
    /// weights for both survive and vanish mean the defaults: the simulated disk refuses a
    /// torn-only mix that scenario validation accepts (reported as a finding).
    pub fates: [Bounded<0, 8>; 3],
    pub reorder: bool,
}

impl Plan {
    /// The scenario TOML for this plan.
    pub fn scenario_toml(&self) -> String {
        let mut text = String::new();
        let workload = &self.workload;
        let engine = &self.engine;
        let faults = &self.faults;
        let crash = &self.crash;
        let (writes_min, writes_max) = min_max(workload.writes[0].get(), workload.writes[1].get());
        let (value_min, value_max) =
            min_max(workload.value_sizes[0].get(), workload.value_sizes[1].get());
        let _ = writeln!(text, "description = \"fuzz plan\"");
        let _ = writeln!(text, "crashes_per_seed = {}", self.crashes_per_seed.get());
        let _ = writeln!(text, "\n[workload]");
        let _ = writeln!(text, "clients = {}", workload.clients.get());
        let _ = writeln!(
            text,
            "transactions_per_client = {}",
            workload.transactions_per_client.get()
        );
        let _ = writeln!(text, "writes_min = {writes_min}\nwrites_max = {writes_max}");
        let _ = writeln!(text, "keys = {}", workload.keys.get());
        let distribution = if workload.skewed { "skewed" } else { "uniform" };
        let _ = writeln!(text, "key_distribution = \"{distribution}\"");
        let _ = writeln!(
            text,
            "value_size_min = {value_min}\nvalue_size_max = {value_max}"
        );
        let _ = writeln!(
            text,
            "delete_ratio = {}",
            fraction(workload.delete_ratio.get(), 1000)
        );
        let _ = writeln!(
            text,
            "read_ratio = {}",
            fraction(workload.read_ratio.get(), 1000)
        );
        let _ = writeln!(
            text,
            "think_time_max_ms = {}",
            workload.think_time_max_ms.get()
        );
        let _ = writeln!(text, "\n[engine]");
        let _ = writeln!(text, "strategy = \"{}\"", engine.strategy().name());
        let _ = writeln!(text, "sync_mode = \"{}\"", engine.sync_mode.name());
        let _ = writeln!(
            text,
            "checkpoint_interval_ms = {}",
            engine.checkpoint_interval_ms.get()
        );
        let _ = writeln!(
            text,
            "log_sync_interval_ms = {}",
            engine.log_sync_interval_ms.get()
        );
        let _ = writeln!(text, "cache_pages = {}", engine.cache_pages.get());
        let page_size = if engine.large_pages { 1024 } else { 512 };
        let _ = writeln!(text, "page_size_bytes = {page_size}");
        let _ = writeln!(
            text,
            "log_segment_bytes = {}",
            engine.log_segment_bytes.get()
        );
        let _ = writeln!(text, "\n[faults]");
        for (name, rate) in [
            ("write_error", faults.write_error),
            ("no_space", faults.no_space),
            ("misdirected_write", faults.misdirected_write),
            ("lying_fsync", faults.lying_fsync),
            ("fsync_error", faults.fsync_error),
            ("short_read", faults.short_read),
            ("bit_rot", faults.bit_rot),
        ] {
            let _ = writeln!(text, "{name} = {}", fraction(rate.get(), 1000));
        }
        let sector_size = SECTOR_SIZES[faults.sector_size.get_usize()];
        let _ = writeln!(text, "sector_size_bytes = {sector_size}");
        let _ = writeln!(
            text,
            "latency_min_us = 0\nlatency_max_us = {}",
            faults.latency_max_us.get()
        );
        let _ = writeln!(text, "\n[crash]");
        match &crash.mode {
            CrashModePlan::Step { step } => {
                let steps = engine.strategy().steps();
                let name = steps[step.get_usize() % steps.len()].name;
                let _ = writeln!(text, "mode = \"step\"\nsteps = [\"{name}\"]");
            }
            CrashModePlan::Io { io_max } => {
                let _ = writeln!(text, "mode = \"io\"\nio_max = {}", io_max.get());
            }
            CrashModePlan::Random { time_max_ms } => {
                let _ = writeln!(
                    text,
                    "mode = \"random\"\ntime_max_ms = {}",
                    time_max_ms.get()
                );
            }
        }
        let weights = crash.fates.map(Bounded::get);
        let total: u64 = weights.iter().sum();
        if weights[0] + weights[1] > 0 {
            // The last fate takes the remainder, so the three sum to exactly 1.
            let survive = weights[0] as f64 / total as f64;
            let vanish = weights[1] as f64 / total as f64;
            let torn = (1.0 - survive - vanish).max(0.0);
            let _ = writeln!(
                text,
                "survive = {survive:?}\nvanish = {vanish:?}\ntorn = {torn:?}"
            );
        }
        let _ = writeln!(text, "reorder = {}", crash.reorder);
        text
    }

    /// The scenario: the rendered TOML, parsed and validated like a scenario file.
    pub fn scenario(&self, name: &str) -> (Scenario, String) {
        let text = self.scenario_toml();
        let path = Path::new(name).with_extension("toml");
        match Scenario::parse(&text, &path) {
            Ok(scenario) => (scenario, text),
            // Every plan is valid by construction, so a refusal is a bug in the plan or the
            // parser.
            Err(error) => panic!("a fuzz plan was refused: {error}\n{text}"),
        }
    }
}

fn min_max(left: u64, right: u64) -> (u64, u64) {
    (left.min(right), left.max(right))
}

/// `numerator / denominator` written so TOML reads it as a float.
fn fraction(numerator: u64, denominator: u64) -> String {
    format!("{:?}", numerator as f64 / denominator as f64)
}

/// Runs one seed of `plan` as scenario `name`, with `canary` planted if given, and panics with
/// the failure, the seed and the scenario if a check fails.
pub fn run(plan: &Plan, name: &str, canary: Option<&str>) {
    let (scenario, text) = plan.scenario(name);
    let options = SeedOptions {
        canary: canary.map(str::to_string),
        ..SeedOptions::default()
    };
    let outcome = run_seed(&scenario, plan.seed, &options);
    if let Some(failure) = outcome.failure {
        let (features, canary_flag) = match canary {
            Some(canary) => (" --features canary", format!(" --canary {canary}")),
            None => ("", String::new()),
        };
        panic!(
            "{} at crash {:?} of seed {}: {}\n\
             replay: save the scenario below as {name}.toml, then run\n  \
             cargo run --release -p crashpoint-sim{features} -- replay --scenario {name}.toml --seed {}{canary_flag}\n\
             ---- {name}.toml ----\n{text}",
            failure.kind.name(),
            failure.crash_index,
            plan.seed,
            failure.message,
            plan.seed,
        );
    }
}
