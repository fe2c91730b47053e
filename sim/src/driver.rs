//! Runs one seed of a scenario: create the database, then for each crash run a phase of
//! concurrent clients, checkpoints and log syncs until the crash fires, build the crash image,
//! recover and check it against the model; finally a quiet phase without faults must finish a
//! checkpoint and a clean close, and the reopened state must equal the model exactly.
//!
//! Everything random comes from the seed: madsim's scheduler, and one ChaCha stream per
//! purpose (workload per client and phase, faults and latency per phase, crash choices).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use crashpoint::{Canary, Engine, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fs::{
    CrashDecisions, CrashPoint, DiskImage, FaultRecord, FaultScope, FsConfig, SimFs, TraceEvent,
};
use crate::hub::{now_nanos, CrashTarget, Hub, RecordedPoint, SimClock, TimelineEvent};
use crate::model::{digest, Model};
use crate::oracle::{self, CrashFacts, Verdict};
use crate::outcome::{Failure, FailureKind, SeedOutcome};
use crate::scenario::{CrashMode, Scenario};
use crate::schedule::{planned_faults, Fates, Operation, PhaseSchedule, PlannedCrash, Schedule};
use crate::workload::{self, ClientContext, PhaseFlags, SimEngine};

/// Simulated time one seed may take before it counts as a hang.
pub(crate) const SIMULATED_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// How to run a seed beyond what the scenario says.
#[derive(Clone, Debug, Default)]
pub struct SeedOptions {
    /// Keep the full I/O trace (for `replay --trace`).
    pub record_trace: bool,
    /// A planted bug to enable (engine built with the `canary` feature), by name.
    pub canary: Option<String>,
    /// Record every crash point inside checkpoint windows (for `explore`).
    pub record_crash_points: bool,
    /// Record the run's decisions as a [`Schedule`] (for `shrink`).
    pub record_schedule: bool,
    /// Run this schedule instead of drawing decisions (overrides the scenario's `schedule`).
    pub schedule: Option<std::sync::Arc<Schedule>>,
}

/// One ChaCha stream per purpose, so adding draws to one purpose never shifts another.
pub(crate) mod stream {
    pub const CRASH: u64 = 1;
    pub const FAULTS: u64 = 2;
    pub const LATENCY: u64 = 3;
    pub const CHECKPOINTER: u64 = 4;
    /// Where files end inside writes at each crash.
    pub const CUTS: u64 = 5;
    pub const CLIENT: u64 = 1 << 16;
}

pub fn stream_rng(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

fn stream_seed(seed: u64, purpose: u64) -> u64 {
    stream_rng(seed, purpose).gen()
}

/// Everything a run produced, including the trace when it was asked for.
#[derive(Default)]
pub struct SeedRun {
    pub outcome: SeedOutcome,
    /// Every I/O call of every phase, in order, with the phase number.
    pub trace: Vec<(u32, TraceEvent)>,
    /// Every fault injected, with the phase number.
    pub faults: Vec<(u32, FaultRecord)>,
    /// With `record_crash_points`: every state a crash inside a checkpoint window could leave.
    pub points: Vec<RecordedPoint>,
    /// The model at the end of each crash phase, before recovery trimmed it: the history the
    /// points of that phase index into.
    pub phase_models: Vec<Model>,
    /// With `record_trace`: transactions, reads, checkpoint steps, crashes and checks.
    pub timeline: Vec<TimelineEvent>,
    /// With `record_schedule`: the decisions the run made.
    pub schedule: Option<Schedule>,
}

pub fn run_seed(scenario: &Scenario, seed: u64, options: &SeedOptions) -> SeedOutcome {
    run_seed_full(scenario, seed, options).outcome
}

/// Runs a seed and returns its outcome, trace and faults.
pub fn run_seed_full(scenario: &Scenario, seed: u64, options: &SeedOptions) -> SeedRun {
    if !scenario.subject.is_dedicated() {
        return crate::subjects::driver::run_seed_full(scenario, seed, options);
    }
    let scenario = scenario.for_seed(seed);
    let options = match with_scenario_schedule(&scenario, seed, options) {
        Ok(options) => options,
        Err(refused) => return *refused,
    };
    let options = &options;
    let run = RefCell::new(SeedRun {
        outcome: SeedOutcome {
            scenario: scenario.name.clone(),
            strategy: scenario.engine.strategy.name().to_string(),
            seed,
            ..SeedOutcome::default()
        },
        ..SeedRun::default()
    });
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(SIMULATED_TIME_LIMIT);
    let hub = Hub::default();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(simulate(&scenario, seed, options, &run, &hub))
    }));
    collect_recordings(&hub, &run);
    let mut run = run.into_inner();
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(failure),
        Err(panic) => Some(panic_failure(panic)),
    };
    run.outcome.failure = failure;
    run
}

/// `options` with the scenario's `schedule` file loaded, unless the options carry a schedule
/// already (shrink's candidates do). A file that does not load ends the seed before it runs:
/// the error is the run, as a configuration failure.
pub(crate) fn with_scenario_schedule(
    scenario: &Scenario,
    seed: u64,
    options: &SeedOptions,
) -> Result<SeedOptions, Box<SeedRun>> {
    let mut options = options.clone();
    let (None, Some(path)) = (&options.schedule, &scenario.schedule) else {
        return Ok(options);
    };
    match Schedule::load(path) {
        Ok(schedule) => {
            options.schedule = Some(std::sync::Arc::new(schedule));
            Ok(options)
        }
        Err(message) => {
            let failure = Failure {
                kind: FailureKind::RecoveryError,
                crash_index: None,
                message,
            };
            let outcome = SeedOutcome {
                scenario: scenario.name.clone(),
                strategy: scenario.strategy_label().to_string(),
                seed,
                failure: Some(failure),
                ..SeedOutcome::default()
            };
            Err(Box::new(SeedRun {
                outcome,
                ..SeedRun::default()
            }))
        }
    }
}

/// A panic out of a seed's runtime as a failure: madsim's time limit and deadlock reports are
/// hangs, anything else a panic.
pub(crate) fn panic_failure(panic: Box<dyn std::any::Any + Send>) -> Failure {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_else(|| "panic with a non-text payload".to_string());
    let kind = if message.contains("time limit exceeded")
        || message.contains("all tasks will block forever")
    {
        FailureKind::Hang
    } else {
        FailureKind::Panic
    };
    Failure {
        kind,
        crash_index: None,
        message,
    }
}

/// The engine options a scenario asks for.
pub fn engine_options(scenario: &Scenario, canary: Option<&str>) -> Result<Options, String> {
    let engine = &scenario.engine;
    // With the `canary` feature Options has one more field, which the update fills.
    #[allow(clippy::needless_update)]
    // Workload keys are `key` and at most 10 digits. The in-place strategies size page slots
    // from the largest entry, so they get exactly that bound.
    let key_size_max = if engine.strategy.writes_in_place() {
        16
    } else {
        (engine.page_size_bytes / 4).min(1024)
    };
    let options = Options {
        strategy: engine.strategy,
        page_size_bytes: engine.page_size_bytes,
        cache_pages: engine.cache_pages,
        sync_mode: engine.sync_mode.into(),
        checkpoint_interval: Duration::from_millis(engine.checkpoint_interval_ms),
        dirty_bytes_limit: engine.dirty_bytes_limit(),
        checkpoint_log_bytes: engine.checkpoint_log_bytes,
        log_capacity_bytes: engine.log_capacity_bytes,
        log_segment_bytes: engine.log_segment_bytes,
        log_sector_bytes: scenario.faults.sector_size_bytes,
        key_size_max,
        value_size_max: (scenario.workload.value_size_max as usize).max(1),
        ..Options::default()
    };
    let options = with_canary(options, canary)?;
    options.validate().map_err(|error| error.to_string())?;
    Ok(options)
}

#[cfg(feature = "canary")]
fn with_canary(mut options: Options, canary: Option<&str>) -> Result<Options, String> {
    if let Some(name) = canary {
        options.canary =
            Some(Canary::from_name(name).ok_or_else(|| format!("unknown canary {name:?}"))?);
    }
    Ok(options)
}

#[cfg(not(feature = "canary"))]
fn with_canary(options: Options, canary: Option<&str>) -> Result<Options, String> {
    match canary {
        Some(name) => Err(format!(
            "canary {name:?} needs a build with the canary feature (one of {})",
            Canary::ALL.map(Canary::name).join(", ")
        )),
        None => Ok(options),
    }
}

pub(crate) fn fs_config(
    scenario: &Scenario,
    seed: u64,
    phase: u32,
    record_trace: bool,
) -> FsConfig {
    FsConfig {
        faults: scenario.faults.clone(),
        fault_seed: stream_seed(seed, stream::FAULTS + ((phase as u64) << 8)),
        latency_seed: stream_seed(seed, stream::LATENCY + ((phase as u64) << 8)),
        record_trace,
    }
}

/// Folds a finished phase's disk into the run: faults, I/O count, trace digest, trace.
pub(crate) fn absorb_fs(
    run: &RefCell<SeedRun>,
    fs: &SimFs,
    phase: u32,
    damage: &mut Vec<FaultRecord>,
) {
    let mut run = run.borrow_mut();
    let outcome = &mut run.outcome;
    outcome.io_ops += fs.io_count();
    outcome.measures.disk_bytes_written += fs.bytes_written();
    outcome.trace_digest = outcome.trace_digest.rotate_left(7) ^ fs.trace_digest();
    let faults = fs.faults();
    for fault in &faults {
        *outcome
            .faults
            .entry(fault.kind.name().to_string())
            .or_default() += 1;
        // A misdirected read is not damage at rest, but what the engine did with the bytes it
        // got (fall back to an older header, cut the log) lasts.
        if fault.explains_reads() {
            damage.push(fault.clone());
        }
    }
    run.faults
        .extend(faults.into_iter().map(|fault| (phase, fault)));
    let trace = fs.take_trace();
    run.trace
        .extend(trace.into_iter().map(|event| (phase, event)));
}

/// Chooses where the next phase crashes.
fn crash_target(scenario: &Scenario, rng: &mut ChaCha8Rng) -> CrashTarget {
    match scenario.crash.mode {
        CrashMode::Random => CrashTarget::None,
        CrashMode::Step => {
            let names = scenario.step_names();
            let name = names[rng.gen_range(0..names.len())];
            // Half the step crashes land on the step itself, half on one of the I/O calls
            // after it (or on the next step, if it comes first).
            let skip = rng.gen_range(0..=2);
            let at_step = rng.gen_bool(0.5);
            let then = match scenario.crash.step_io_max {
                0 => 0,
                _ if at_step => 0,
                max => rng.gen_range(1..=max),
            };
            CrashTarget::Step {
                name: name.to_string(),
                skip,
                then,
            }
        }
        CrashMode::Io => CrashTarget::Io {
            operations: rng.gen_range(1..=scenario.crash.io_max.max(1) as u64),
        },
    }
}

struct Phase<'a> {
    scenario: &'a Scenario,
    seed: u64,
    number: u32,
    engine: Rc<SimEngine>,
    fs: SimFs,
    hub: Hub,
    /// None for the quiet phase: no faults and no crash.
    crash_index: Option<u32>,
    /// Random-mode crash time.
    crash_after: Option<Duration>,
    transactions_per_client: u32,
    /// Each client's scripted operations (from a schedule); None draws them.
    scripts: Option<Vec<Vec<Operation>>>,
    record: bool,
}

/// Runs clients, checkpointer and log sync until the crash fires (or, in the quiet phase,
/// until the clients finish). Returns the phase's flags.
async fn run_phase(phase: Phase<'_>) -> Rc<PhaseFlags> {
    let scenario = phase.scenario;
    let flags = Rc::new(PhaseFlags::default());
    let clients = phase
        .scripts
        .as_ref()
        .map_or(scenario.workload.clients, |scripts| scripts.len() as u32);
    let mut handles = Vec::new();
    for id in 0..clients {
        let context = ClientContext {
            id,
            phase: phase.number,
            transactions: phase.transactions_per_client,
            workload: scenario.workload.clone(),
            engine: phase.engine.clone(),
            fs: phase.fs.clone(),
            hub: phase.hub.clone(),
            flags: flags.clone(),
            rng: stream_rng(
                phase.seed,
                stream::CLIENT + ((phase.number as u64) << 8) + id as u64,
            ),
            crash_index: phase.crash_index,
            script: phase
                .scripts
                .as_ref()
                .map(|scripts| scripts[id as usize].clone()),
            record: phase.record,
        };
        handles.push(madsim::task::spawn_local(workload::client(context)));
    }
    handles.push(madsim::task::spawn_local(workload::checkpointer(
        workload::Checkpointer {
            engine: phase.engine.clone(),
            flags: flags.clone(),
            clients,
            poll_interval: Duration::from_millis(scenario.engine.checkpoint_poll_interval_ms()),
            forced_ratio: scenario.engine.forced_checkpoint_ratio,
            rng: stream_rng(
                phase.seed,
                stream::CHECKPOINTER + ((phase.number as u64) << 8),
            ),
            fs: phase.fs.clone(),
            hub: phase.hub.clone(),
            crash_index: phase.crash_index,
        },
    )));
    if scenario.engine.sync_mode == crate::scenario::SyncModeName::Periodic {
        handles.push(madsim::task::spawn_local(workload::log_syncer(
            phase.engine.clone(),
            flags.clone(),
            clients,
            Duration::from_millis(scenario.engine.log_sync_interval_ms.max(1)),
            phase.fs.clone(),
        )));
    }
    let started = madsim::time::Instant::now();
    // Polls once a simulated millisecond; the phase is bounded by the clients' transaction
    // counts and, as a backstop, by the runtime's time limit.
    loop {
        madsim::time::sleep(Duration::from_millis(1)).await;
        if phase.fs.is_crashed() || phase.hub.lock().failure.is_some() {
            break;
        }
        if let Some(after) = phase.crash_after {
            if started.elapsed() >= after {
                phase.hub.lock().crash_cause =
                    Some(format!("random time {after:?} into the phase"));
                phase.fs.crash();
                break;
            }
        }
        if flags.clients_done.get() == clients {
            if phase.crash_index.is_some() {
                phase.hub.lock().crash_cause = Some("end of the phase".to_string());
                phase.fs.crash();
            }
            break;
        }
    }
    if phase.crash_index.is_some() && !phase.fs.is_crashed() {
        // A read check failed: crash now so every task stops.
        phase.fs.crash();
    }
    flags.stop.set(true);
    for handle in handles {
        let _ = handle.await;
    }
    flags
}

/// What every step of one seed's run needs.
struct Seed<'a> {
    scenario: &'a Scenario,
    seed: u64,
    options: &'a SeedOptions,
    engine_options: &'a Options,
    run: &'a RefCell<SeedRun>,
    hub: &'a Hub,
}

async fn simulate(
    scenario: &Scenario,
    seed: u64,
    options: &SeedOptions,
    run: &RefCell<SeedRun>,
    hub: &Hub,
) -> Result<(), Failure> {
    let configuration = |message: String| Failure {
        kind: FailureKind::RecoveryError,
        crash_index: None,
        message,
    };
    let engine_options =
        engine_options(scenario, options.canary.as_deref()).map_err(configuration)?;
    let context = Seed {
        scenario,
        seed,
        options,
        engine_options: &engine_options,
        run,
        hub,
    };
    let mut crash_rng = stream_rng(seed, stream::CRASH);
    let mut cut_rng = stream_rng(seed, stream::CUTS);
    {
        let mut hub_state = hub.lock();
        hub_state.recording = options.record_crash_points;
        hub_state.timeline_on = options.record_trace;
    }
    let mut damage: Vec<FaultRecord> = Vec::new();

    let mut fs = SimFs::new(fs_config(scenario, seed, 0, options.record_trace));
    fs.set_faults_enabled(false);
    {
        let mut hub_state = hub.lock();
        hub_state.expect_engine(&engine_options);
    }
    hub.attach(&fs);
    let mut engine = Rc::new(
        Engine::open(
            fs.clone(),
            SimClock::new(),
            engine_options.clone(),
            hub.observer(),
        )
        .await
        .map_err(|error| configuration(format!("creating the database failed: {error}")))?,
    );

    let schedule = options.schedule.as_deref();
    if options.record_schedule {
        run.borrow_mut().schedule = Some(Schedule::default());
    }
    let phases = schedule.map_or(scenario.crashes_per_seed, |schedule| {
        schedule.phases.len() as u32
    });
    for crash_index in 0..phases {
        let phase_number = crash_index;
        let planned = schedule.map(|schedule| &schedule.phases[crash_index as usize]);
        fs.set_faults_enabled(true);
        let (target, crash_after) = match planned {
            Some(planned) => planned_target(&planned.crash).map_err(configuration)?,
            None => {
                let target = crash_target(scenario, &mut crash_rng);
                let crash_after = (scenario.crash.mode == CrashMode::Random).then(|| {
                    Duration::from_millis(
                        crash_rng.gen_range(1..=scenario.crash.time_max_ms.max(1)),
                    )
                });
                (target, crash_after)
            }
        };
        if let Some(planned) = planned {
            fs.set_fault_plan(Some(planned.fault_plan().map_err(configuration)?));
        }
        let phase_start_io = fs.io_count();
        let phase_record = options.record_schedule.then(|| PhaseSchedule {
            crash: planned_crash(&target, crash_after),
            ..PhaseSchedule::default()
        });
        let clients = planned.map_or(scenario.workload.clients, |planned| {
            planned.clients.len() as u32
        });
        hub.attach(&fs);
        {
            let mut hub_state = hub.lock();
            hub_state.target = Some(target);
            hub_state.armed_after_step = None;
            hub_state.crash_cause = None;
            hub_state.phase = phase_number;
            // A new engine (recovered, or created): the idle rule starts from its own first
            // finished checkpoint.
            hub_state.seen = Default::default();
        }
        if options.record_crash_points {
            fs.set_recorder(Some(hub.recorder()));
        }
        let flags = run_phase(Phase {
            scenario,
            seed,
            number: phase_number,
            engine: engine.clone(),
            fs: fs.clone(),
            hub: hub.clone(),
            crash_index: Some(crash_index),
            crash_after,
            transactions_per_client: scenario.workload.transactions_per_client,
            scripts: planned.map(|planned| planned.clients.clone()),
            record: options.record_schedule,
        })
        .await;
        run.borrow_mut().outcome.transactions += flags.transactions.get();
        let failure = hub.lock().failure.take();
        if let Some(failure) = failure {
            let operations = take_recorded_operations(hub, phase_number, clients);
            record_phase(run, &fs, phase_record, None, phase_start_io, operations);
            absorb_fs(run, &fs, phase_number, &mut damage);
            return Err(failure);
        }
        let crash_point = fs.crashed_at().expect("the phase ended with a crash");
        fs.set_recorder(None);
        {
            let mut hub_state = hub.lock();
            // Whatever the target was, it is spent: recovery's own checkpoints (a startup
            // checkpoint) must not arm it again on the recovered disk.
            hub_state.target = None;
            hub_state.armed_after_step = None;
            hub_state.window = None;
            let cause = hub_state.crash_cause.clone().unwrap_or_default();
            hub_state.note(TimelineEvent::Crash {
                phase: phase_number,
                nanos: now_nanos(),
                cause,
            });
            if options.record_crash_points {
                let model = hub_state.model.clone();
                run.borrow_mut().phase_models.push(model);
            }
        }
        let durable_image = fs.durable_image();
        let anchor_faults = anchor_file_faults(&fs, engine_options.strategy);
        absorb_fs(run, &fs, phase_number, &mut damage);
        drop(engine);

        let image = crash_image(
            run,
            &fs,
            scenario,
            planned,
            PhaseEnd {
                phase: phase_number,
                point: &crash_point,
                record: phase_record,
                start_io: phase_start_io,
                operations: take_recorded_operations(hub, phase_number, clients),
            },
            (&mut crash_rng, &mut cut_rng),
            &mut damage,
        );
        let cause = hub.lock().crash_cause.clone().unwrap_or_default();
        tracing::info!(crash_index, cause, image = image.digest(), "crash");

        let durable_checkpoint =
            oracle::durable_checkpoint(&hub.lock().anchor_writes, &[&durable_image, &image]);
        drop(durable_image);
        let check = Check {
            image,
            disk_phase: phase_number + 1,
            crash_index: Some(crash_index),
            durable_checkpoint,
            fault_plan: planned
                .map(PhaseSchedule::recovery_fault_plan)
                .transpose()
                .map_err(configuration)?,
            anchor_faults,
        };
        match recover_and_judge(&context, check, &mut damage).await? {
            Some(recovered) => {
                engine = Rc::new(recovered.engine);
                fs = recovered.fs;
            }
            // The disk is damaged beyond what the engine promises to survive; the seed ends
            // here, and that is a pass.
            None => return Ok(()),
        }
    }

    {
        let mut hub_state = hub.lock();
        hub_state.phase = phases;
        hub_state.quiet = true;
        hub_state.seen = Default::default();
    }
    quiet_phase(&context, phases, schedule, engine, fs, &mut damage).await
}

/// One recovery to judge: the image a fresh disk boots from, and what the oracle needs beside
/// it.
struct Check {
    image: DiskImage,
    /// The phase number the new disk gets (its fault and latency streams).
    disk_phase: u32,
    /// Which crash this recovery follows; None for the reopen after the quiet phase.
    crash_index: Option<u32>,
    /// The newest checkpoint the crash image makes durable ([`oracle::durable_checkpoint`]).
    durable_checkpoint: Option<u64>,
    /// A schedule's faults for the recovery's disk, instead of the rates.
    fault_plan: Option<BTreeMap<u64, crate::fs::FaultKind>>,
    /// Faults the crashed phase injected into the files that hold anchors: they may keep a
    /// checkpoint that `request_checkpoint` reported durable from being so.
    anchor_faults: Vec<FaultRecord>,
}

/// A recovery the oracle passed: the engine on its new disk, and the state it holds.
struct Recovered {
    engine: SimEngine,
    fs: SimFs,
    state: crate::model::State,
}

/// Boots a fresh disk on the check's image, recovers an engine on it and holds it against the
/// model: the one path that crash recoveries and the reopen after the quiet phase share. A
/// pass returns the engine and its disk; None means recovery found damage the injected faults
/// explain, so the seed ends here as a pass. When the seed ends (either way, or on a failure)
/// the disk is folded into the run first.
async fn recover_and_judge(
    context: &Seed<'_>,
    check: Check,
    damage: &mut Vec<FaultRecord>,
) -> Result<Option<Recovered>, Failure> {
    let Seed {
        scenario,
        seed,
        options,
        run,
        hub,
        ..
    } = *context;
    // A recorded schedule pins recovery's rot to the log record it hit in the crash image.
    let crash_image = run.borrow().schedule.is_some().then(|| check.image.clone());
    let fs = SimFs::from_image(
        check.image,
        fs_config(scenario, seed, check.disk_phase, options.record_trace),
    );
    fs.set_fault_plan(check.fault_plan);
    // A crash recovery reads with read faults on (rot, latent sector errors and misdirected
    // reads can meet it, the log included); the reopen after the clean close is quiet.
    let scope = match check.crash_index {
        Some(_) => FaultScope::Reads,
        None => FaultScope::Off,
    };
    fs.set_fault_scope(scope);
    hub.attach(&fs);
    let (anchor_written_max, forced_durable) = {
        let mut hub_state = hub.lock();
        // The crashed phase's trigger must not fire inside recovery (which checkpoints when
        // it has to create the database again).
        hub_state.target = None;
        hub_state.armed_after_step = None;
        // Forced checkpoints resolved on the old disk are judged now; the recovered engine's
        // start afresh.
        let forced_durable = std::mem::take(&mut hub_state.forced_durable);
        (hub_state.anchor_written_max(), forced_durable)
    };
    let facts = CrashFacts {
        crash_index: check.crash_index,
        damage,
        durable_checkpoint: check.durable_checkpoint,
        anchor_written_max,
        forced_durable,
        anchor_faults: &check.anchor_faults,
    };
    let verdict =
        oracle::recover_and_check(fs.clone(), context.engine_options.clone(), hub, &facts).await;
    run.borrow_mut().outcome.states_checked += 1;
    if let (Some(image), Some(_)) = (&crash_image, check.crash_index) {
        record_recovery_faults(run, &fs, image);
    }
    let phase = check.disk_phase - 1;
    note_check(hub, phase, &verdict);
    match verdict {
        Ok(Verdict::Recovered {
            engine,
            state,
            report,
        }) => {
            if check.crash_index.is_some() {
                let mut run = run.borrow_mut();
                run.outcome.recoveries += 1;
                let measures = &mut run.outcome.measures;
                measures.recoveries += 1;
                measures.redo_commits += report.replayed_commits;
                measures.redo_bytes += report.log_end.0.saturating_sub(report.checkpoint_lsn.0);
            }
            Ok(Some(Recovered {
                engine: *engine,
                fs,
                state,
            }))
        }
        Ok(Verdict::ExcusedCorruption { message }) => {
            tracing::info!(message, "recovery stopped by injected damage");
            absorb_fs(run, &fs, check.disk_phase, damage);
            Ok(None)
        }
        Err(failure) => {
            absorb_fs(run, &fs, check.disk_phase, damage);
            Err(failure)
        }
    }
}

/// The fates of the unsynced writes at a crash: the planned phase's, when it plans them (refit
/// to `point` if work was removed), else drawn from the seed's crash and cut streams.
pub(crate) fn crash_decisions(
    scenario: &Scenario,
    planned: Option<&PhaseSchedule>,
    point: &CrashPoint,
    crash_rng: &mut ChaCha8Rng,
    cut_rng: &mut ChaCha8Rng,
) -> CrashDecisions {
    let mut random = || {
        let mut decisions = point.random_decisions(crash_rng, &scenario.crash.fates);
        point.random_cuts(&mut decisions, cut_rng, &scenario.crash.fates);
        decisions
    };
    match planned.map(|planned| &planned.fates) {
        Some(Fates::AllVanish) => point.all_vanish(),
        Some(Fates::AllSurvive) => point.all_survive(),
        Some(fates) => fates.decisions(point).unwrap_or_else(random),
        None => random(),
    }
}

/// How a crashed phase ended, for [`crash_image`].
pub(crate) struct PhaseEnd<'a> {
    pub phase: u32,
    pub point: &'a CrashPoint,
    /// The phase's schedule record, when the run records one.
    pub record: Option<PhaseSchedule>,
    /// The I/O counter when the phase started.
    pub start_io: u64,
    /// Each client's operations in the phase.
    pub operations: Vec<Vec<Operation>>,
}

/// What the crash that ended a phase leaves on disk: the crash point materialized under its
/// fates (drawn from the crash and cut streams, or the schedule's), recorded for replay, with
/// the schedule's planned damage applied. The crash and every fault it injected are counted
/// in the run; the planned damage also joins `damage`.
pub(crate) fn crash_image(
    run: &RefCell<SeedRun>,
    fs: &SimFs,
    scenario: &Scenario,
    planned: Option<&PhaseSchedule>,
    end: PhaseEnd<'_>,
    (crash_rng, cut_rng): (&mut ChaCha8Rng, &mut ChaCha8Rng),
    damage: &mut Vec<FaultRecord>,
) -> DiskImage {
    let decisions = crash_decisions(scenario, planned, end.point, crash_rng, cut_rng);
    let (mut image, mut crash_faults) = end.point.materialize(&decisions);
    record_phase(
        run,
        fs,
        end.record,
        Some((&decisions, end.point, &image)),
        end.start_io,
        end.operations,
    );
    let rot = apply_planned_damage(planned, &mut image);
    damage.extend(rot.iter().cloned());
    crash_faults.extend(rot);
    let mut run = run.borrow_mut();
    run.outcome.crashes += 1;
    for fault in &crash_faults {
        *run.outcome
            .faults
            .entry(fault.kind.name().to_string())
            .or_default() += 1;
    }
    run.faults
        .extend(crash_faults.into_iter().map(|fault| (end.phase, fault)));
    image
}

/// Applies the planned phase's damage to its crash image and returns it as bit-rot faults.
/// Planned damage is rot pinned to the disk: it damages durable data like any rot, at the
/// bytes it landed on, so the caller counts it as damage at rest.
pub(crate) fn apply_planned_damage(
    planned: Option<&PhaseSchedule>,
    image: &mut DiskImage,
) -> Vec<FaultRecord> {
    let mut rot = Vec::new();
    for pinned in planned.map_or(&[][..], |planned| &planned.damage) {
        let Some((file, flips)) = pinned.apply(image) else {
            continue;
        };
        tracing::info!(damage = %pinned.describe(), "bit rot pinned to the crash image");
        let shown: Vec<String> = flips
            .iter()
            .map(|(offset, mask)| format!("{offset}^{mask:#04x}"))
            .collect();
        rot.push(FaultRecord {
            index: 0,
            kind: crate::fs::FaultKind::BitRot,
            file,
            offset: flips.first().map_or(0, |flip| flip.0),
            len: flips.len() as u64,
            detail: format!(
                "planned damage before recovery ({}): flipped bits at {}",
                pinned.describe(),
                shown.join(", ")
            ),
            damaged: flips
                .iter()
                .map(|&(offset, _)| (offset, offset + 1))
                .collect(),
        });
    }
    rot
}

/// Completes the recorded schedule entry of a crash phase: its faults (those after
/// `phase_start_io`, the calls before it being the recovery that made the disk), rot pinned to
/// the log record it hit in the crash `image`, the crash decisions and the clients' operations
/// (one list per client, in client order).
pub(crate) fn record_phase(
    run: &RefCell<SeedRun>,
    fs: &SimFs,
    record: Option<PhaseSchedule>,
    crash: Option<(&CrashDecisions, &CrashPoint, &DiskImage)>,
    phase_start_io: u64,
    operations: Vec<Vec<Operation>>,
) {
    let Some(mut record) = record else { return };
    record.fates = crash.map_or(Fates::Random, |(decisions, point, _)| {
        Fates::explicit(decisions, point)
    });
    let faults: Vec<FaultRecord> = fs
        .faults()
        .into_iter()
        .filter(|fault| fault.index > phase_start_io)
        .collect();
    record.faults = planned_faults(&faults, crash.map(|(_, _, image)| image), true);
    record.clients = operations;
    if let Some(schedule) = run.borrow_mut().schedule.as_mut() {
        schedule.phases.push(record);
    }
}

/// Records the faults the recovery after the last recorded phase's crash met on its disk
/// `fs`, rot pinned to the log record it hit in the crash `image`: a replay injects exactly
/// these there.
pub(crate) fn record_recovery_faults(run: &RefCell<SeedRun>, fs: &SimFs, image: &DiskImage) {
    let faults = planned_faults(&fs.faults(), Some(image), false);
    if let Some(last) = run
        .borrow_mut()
        .schedule
        .as_mut()
        .and_then(|schedule| schedule.phases.last_mut())
    {
        last.recovery_faults = faults;
    }
}

/// The operations each client of `phase` ran, in client order.
fn take_recorded_operations(hub: &Hub, phase: u32, clients: u32) -> Vec<Vec<Operation>> {
    let mut hub_state = hub.lock();
    (0..clients)
        .map(|client| {
            hub_state
                .recorded_operations
                .remove(&(phase, client))
                .unwrap_or_default()
        })
        .collect()
}

/// The crash trigger and time a planned crash stands for.
pub(crate) fn planned_target(
    crash: &PlannedCrash,
) -> Result<(CrashTarget, Option<Duration>), String> {
    Ok(match crash {
        PlannedCrash::Step { name, skip, then } => {
            if !crashpoint::Strategy::all_step_names().contains(&name.as_str()) {
                return Err(format!(
                    "schedule names an unknown checkpoint step {name:?}"
                ));
            }
            (
                CrashTarget::Step {
                    name: name.clone(),
                    skip: *skip,
                    then: *then,
                },
                None,
            )
        }
        PlannedCrash::Io { operations } => (
            CrashTarget::Io {
                operations: *operations,
            },
            None,
        ),
        PlannedCrash::Time { after_us } => {
            (CrashTarget::None, Some(Duration::from_micros(*after_us)))
        }
        PlannedCrash::EndOfPhase => (CrashTarget::None, None),
    })
}

pub(crate) fn planned_crash(target: &CrashTarget, crash_after: Option<Duration>) -> PlannedCrash {
    match (target, crash_after) {
        (CrashTarget::Step { name, skip, then }, _) => PlannedCrash::Step {
            name: name.clone(),
            skip: *skip,
            then: *then,
        },
        (CrashTarget::Io { operations }, _) => PlannedCrash::Io {
            operations: *operations,
        },
        (CrashTarget::None, Some(after)) => PlannedCrash::Time {
            after_us: after.as_micros() as u64,
        },
        (CrashTarget::None, None) => PlannedCrash::EndOfPhase,
    }
}

fn note_check(hub: &Hub, phase: u32, verdict: &Result<Verdict, Failure>) {
    let (passed, message) = match verdict {
        Ok(Verdict::Recovered { report, .. }) => (
            true,
            format!(
                "recovered checkpoint {} to log end {}",
                report.checkpoint_count, report.log_end
            ),
        ),
        Ok(Verdict::ExcusedCorruption { message }) => (true, message.clone()),
        Err(failure) => (
            false,
            format!("{}: {}", failure.kind.name(), failure.message),
        ),
    };
    hub.lock().note(TimelineEvent::Check {
        phase,
        nanos: now_nanos(),
        passed,
        message,
    });
}

/// No faults: the clients must finish, a checkpoint must complete, the close must succeed,
/// and the reopened database must hold exactly the model.
async fn quiet_phase(
    context: &Seed<'_>,
    phase_number: u32,
    schedule: Option<&Schedule>,
    engine: Rc<SimEngine>,
    fs: SimFs,
    damage: &mut Vec<FaultRecord>,
) -> Result<(), Failure> {
    let Seed {
        scenario,
        seed,
        run,
        hub,
        ..
    } = *context;
    fs.set_faults_enabled(false);
    {
        let mut hub_state = hub.lock();
        hub_state.target = None;
        hub_state.armed_after_step = None;
        hub_state.checkpoints_finished = 0;
    }
    let liveness = |message: String| Failure {
        kind: FailureKind::Liveness,
        crash_index: None,
        message,
    };
    let recording = run.borrow().schedule.is_some();
    // Liveness: with the faults gone a forced checkpoint must complete. It runs before the
    // clients so that the close below has their commits to checkpoint.
    if let Err(error) = engine.request_checkpoint().await {
        absorb_fs(run, &fs, phase_number, damage);
        let message = format!("the quiet-phase checkpoint failed: {error}");
        if damage.is_empty() {
            return Err(liveness(message));
        }
        tracing::info!(message, "quiet phase stopped by injected damage");
        return Ok(());
    }
    let flags = run_phase(Phase {
        scenario,
        seed,
        number: phase_number,
        engine: engine.clone(),
        fs: fs.clone(),
        hub: hub.clone(),
        crash_index: None,
        crash_after: None,
        transactions_per_client: scenario.workload.transactions_per_client.div_ceil(2),
        scripts: schedule.map(|schedule| schedule.quiet.clone()),
        record: recording,
    })
    .await;
    let quiet_clients = schedule.map_or(scenario.workload.clients, |schedule| {
        schedule.quiet.len() as u32
    });
    if run.borrow().schedule.is_some() {
        let operations = take_recorded_operations(hub, phase_number, quiet_clients);
        if let Some(recorded) = run.borrow_mut().schedule.as_mut() {
            recorded.quiet = operations;
        }
    }
    run.borrow_mut().outcome.transactions += flags.transactions.get();
    if let Some(failure) = hub.lock().failure.take() {
        absorb_fs(run, &fs, phase_number, damage);
        return Err(failure);
    }
    let finished: Result<(), String> = async {
        let client_errors = flags.client_errors.borrow().clone();
        if !client_errors.is_empty() {
            return Err(format!(
                "clients failed without faults: {}",
                client_errors.join("; ")
            ));
        }
        if seed % 2 == 1 {
            // Half the seeds checkpoint once more after the clients: the close's own
            // checkpoint then has nothing to do and must be skipped (the hub holds an idle
            // checkpoint against it). The other half leave the close its work, which the
            // reopen below checks replays nothing.
            engine
                .request_checkpoint()
                .await
                .map_err(|error| format!("the checkpoint before the close failed: {error}"))?;
        }
        engine
            .close()
            .await
            .map_err(|error| format!("the clean close failed: {error}"))
    }
    .await;
    if let Some(failure) = hub.lock().failure.take() {
        absorb_fs(run, &fs, phase_number, damage);
        return Err(failure);
    }
    if let Err(message) = finished {
        absorb_fs(run, &fs, phase_number, damage);
        if damage.is_empty() {
            return Err(liveness(message));
        }
        // Damage injected earlier (bit rot, a misdirected write) surfaced now; the engine
        // detected it, which is all it promises.
        tracing::info!(message, "quiet phase stopped by injected damage");
        return Ok(());
    }
    hub.lock().model.all_durable();
    drop(engine);
    let crash_point = fs.crash_point();
    let settled = crash_point.is_settled();
    let durable_image = fs.durable_image();
    absorb_fs(run, &fs, phase_number, damage);
    if !settled {
        return Err(liveness(
            "data was still unsynced after a clean close".to_string(),
        ));
    }
    let (image, _) = crash_point.materialize(&crash_point.all_vanish());
    let durable_checkpoint =
        oracle::durable_checkpoint(&hub.lock().anchor_writes, &[&durable_image, &image]);
    let check = Check {
        image,
        disk_phase: phase_number + 1,
        crash_index: None,
        durable_checkpoint,
        fault_plan: None,
        anchor_faults: Vec::new(),
    };
    match recover_and_judge(context, check, damage).await? {
        Some(recovered) => {
            run.borrow_mut().outcome.final_state_digest = digest(&recovered.state);
            let report = recovered.engine.recovery_report();
            if report.replayed_commits > 0 {
                return Err(Failure {
                    kind: FailureKind::ReplayAfterCleanClose,
                    crash_index: None,
                    message: format!(
                        "the open after a clean close replayed {} commits from checkpoint {} \
                         (log {} to {}): the close's final checkpoint promises none",
                        report.replayed_commits,
                        report.checkpoint_count,
                        report.checkpoint_lsn,
                        report.log_end
                    ),
                });
            }
        }
        None => tracing::info!("the reopen after the clean close was stopped by injected damage"),
    }
    Ok(())
}

/// The faults `fs` injected into the files that hold `strategy`'s anchors.
fn anchor_file_faults(fs: &SimFs, strategy: crashpoint::Strategy) -> Vec<FaultRecord> {
    let regions = strategy.anchor_regions();
    fs.faults()
        .into_iter()
        .filter(|fault| {
            regions.iter().any(|region| {
                fault.file == region.file || region.staging_file == Some(fault.file.as_str())
            })
        })
        .collect()
}

/// Moves what the hub recorded (points, timeline, measures) into the run.
fn collect_recordings(hub: &Hub, run: &RefCell<SeedRun>) {
    let mut hub_state = hub.lock();
    let mut run = run.borrow_mut();
    run.points = std::mem::take(&mut hub_state.points);
    let measures = std::mem::take(&mut hub_state.measures);
    run.outcome.measures.add(&measures);
    run.timeline = std::mem::take(&mut hub_state.timeline);
}
