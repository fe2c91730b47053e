//! Runs one seed of a scenario against any [`Subject`]: open on an empty simulated disk, then
//! for each crash run a phase of concurrent clients and a checkpointer until the crash fires,
//! build the crash image, open the subject on it and hold what it reads back against the model
//! by the subject's promise ([`super::oracle`]); finally a quiet phase without faults ends in a
//! clean close, and the reopened state must equal the model exactly.
//!
//! The same streams as the dedicated driver ([`crate::driver`]) decide everything: the
//! workload per client and phase, faults and latency per phase, crash choices and cuts.
//!
//! With a [`Schedule`] the run replays it instead of drawing: each phase's client operations,
//! its faults by disk call, its crash (at a disk call or a time; a subject has no checkpoint
//! steps to crash at) with its fates and damage, and the faults its recovery met; with
//! `record_schedule` it records those decisions, so `shrink` works on any subject.
//!
//! Clients take turns on the subject (one call at a time), so the model's commit order is the
//! order of the calls. A commit is recorded in the model before it is called, since it may land
//! even if it fails; a read is checked against the live model only while no commit of the phase
//! has failed. Crashes: `io` mode crashes at the k-th disk call of the phase (inside a commit,
//! for a subject whose commits are blocking calls), `random` at a random time; `step` needs
//! checkpoint steps, which only the dedicated driver has.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crashpoint::{Lsn, Write};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::engine::EngineSubject;
use super::explore::PointLog;
use super::oracle::{self, Judged, RecoveryFacts};
use super::redb::RedbSubject;
use super::{Promise, Setup, Subject, SubjectError, SubjectName};
use crate::driver::{
    absorb_fs, crash_image, fs_config, panic_failure, planned_crash, planned_target, record_phase,
    record_recovery_faults, stream, stream_rng, with_scenario_schedule, PhaseEnd, SeedOptions,
    SeedRun, SIMULATED_TIME_LIMIT,
};
use crate::fs::{FaultRecord, FaultScope, SimFs};
use crate::hub::CrashTarget;
use crate::model::{digest, first_difference, Model, State};
use crate::outcome::{Failure, FailureKind, SeedOutcome};
use crate::scenario::{CrashMode, Scenario};
use crate::schedule::{Operation, PhaseSchedule, Schedule, ScheduledWrite};
use crate::workload;

/// Simulated time between a client's operations at the least, so that clients interleave and a
/// random-time crash can fall between them even when the subject's calls take no time.
const OPERATION_GAP: Duration = Duration::from_micros(100);

/// Runs a seed of `scenario` (whose subject is not the dedicated engine driver's).
pub fn run_seed_full(scenario: &Scenario, seed: u64, options: &SeedOptions) -> SeedRun {
    let scenario = scenario.for_seed(seed);
    let options = match with_scenario_schedule(&scenario, seed, options) {
        Ok(options) => options,
        Err(refused) => return *refused,
    };
    let options = &options;
    let run = RefCell::new(SeedRun {
        outcome: SeedOutcome {
            scenario: scenario.name.clone(),
            strategy: scenario.subject.name().to_string(),
            seed,
            ..SeedOutcome::default()
        },
        ..SeedRun::default()
    });
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(SIMULATED_TIME_LIMIT);
    // The disk in use, for the faults a panic may have followed.
    let disk: RefCell<Option<SimFs>> = RefCell::default();
    let points = options
        .record_crash_points
        .then(|| Arc::new(PointLog::default()));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            match scenario.subject {
                SubjectName::Redb => {
                    simulate::<RedbSubject>(&scenario, seed, options, &run, &disk, &points).await
                }
                SubjectName::Crashpoint | SubjectName::CrashpointSeam => {
                    simulate::<EngineSubject>(&scenario, seed, options, &run, &disk, &points).await
                }
            }
        })
    }));
    let disk_faults = disk
        .borrow()
        .as_ref()
        .map(SimFs::faults)
        .unwrap_or_default();
    let mut run = run.into_inner();
    if let Some(points) = &points {
        run.points = points.take_points();
    }
    run.outcome.failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(failure),
        Err(panic) => excused_panic(&scenario, &run, &disk_faults, panic_failure(panic)),
    };
    run
}

/// A panic after a fault that breaks the promise's assumptions (rot read back, a lying fsync)
/// is outside the promise like any other outcome there, so it is excused and logged: redb, for
/// one, can panic on a rotted page instead of returning `Corrupted`. A hang is never excused.
fn excused_panic(
    scenario: &Scenario,
    run: &SeedRun,
    disk_faults: &[FaultRecord],
    failure: Failure,
) -> Option<Failure> {
    let promise = scenario.subject.promise();
    let excuses: Vec<String> = run
        .faults
        .iter()
        .map(|(_, fault)| fault)
        .chain(disk_faults)
        .filter(|fault| promise.assumptions_broken_by.contains(&fault.kind))
        .take(3)
        .map(ToString::to_string)
        .collect();
    if failure.kind != FailureKind::Panic || excuses.is_empty() {
        return Some(failure);
    }
    tracing::warn!(
        message = failure.message,
        excuses = excuses.join("; "),
        "the subject panicked after faults its promise does not cover"
    );
    None
}

/// What every step of one seed needs.
struct Seed<'a> {
    scenario: &'a Scenario,
    seed: u64,
    options: &'a SeedOptions,
    run: &'a RefCell<SeedRun>,
    promise: &'static Promise,
    model: Rc<RefCell<Model>>,
    /// The next commit's number in the model (its `Lsn`): it keeps growing across crashes.
    next_commit: Rc<Cell<u64>>,
    /// With `record_crash_points` (explore): the crash points of every crash phase.
    points: Option<Arc<PointLog>>,
    /// The schedule replayed instead of drawing decisions.
    schedule: Option<&'a Schedule>,
}

impl Seed<'_> {
    fn setup(&self) -> Setup<'_> {
        Setup {
            scenario: self.scenario,
            canary: self.options.canary.as_deref(),
        }
    }
}

fn configuration(message: String) -> Failure {
    Failure {
        kind: FailureKind::RecoveryError,
        crash_index: None,
        message,
    }
}

async fn simulate<S: Subject>(
    scenario: &Scenario,
    seed: u64,
    options: &SeedOptions,
    run: &RefCell<SeedRun>,
    disk: &RefCell<Option<SimFs>>,
    points: &Option<Arc<PointLog>>,
) -> Result<(), Failure> {
    let context = Seed {
        scenario,
        seed,
        options,
        run,
        promise: scenario.subject.promise(),
        model: Rc::default(),
        next_commit: Rc::default(),
        points: points.clone(),
        schedule: options.schedule.as_deref(),
    };
    if scenario.crash.mode == CrashMode::Step {
        return Err(configuration(format!(
            "subject {}: the seam reports no checkpoint steps, so crash mode step needs the \
             crashpoint subject",
            scenario.subject
        )));
    }
    let mut crash_rng = stream_rng(seed, stream::CRASH);
    let mut cut_rng = stream_rng(seed, stream::CUTS);
    let mut damage: Vec<FaultRecord> = Vec::new();
    let mut fs = SimFs::new(fs_config(scenario, seed, 0, options.record_trace));
    fs.set_faults_enabled(false);
    *disk.borrow_mut() = Some(fs.clone());
    let mut subject = S::open(fs.clone(), &context.setup())
        .await
        .map_err(|error| configuration(format!("creating the database failed: {error}")))?;

    if options.record_schedule {
        run.borrow_mut().schedule = Some(Schedule::default());
    }
    let phases = context
        .schedule
        .map_or(scenario.crashes_per_seed, |schedule| {
            schedule.phases.len() as u32
        });
    for crash_index in 0..phases {
        let planned = context
            .schedule
            .map(|schedule| &schedule.phases[crash_index as usize]);
        fs.set_faults_enabled(true);
        let (target, crash_after) = match planned {
            Some(planned) => planned_target(&planned.crash).map_err(configuration)?,
            None => drawn_crash(scenario, &mut crash_rng),
        };
        if let Some(planned) = planned {
            fs.set_fault_plan(Some(planned.fault_plan().map_err(configuration)?));
        }
        let phase_start_io = fs.io_count();
        if let Some(points) = &context.points {
            points.start_phase(crash_index, &context.model.borrow());
            fs.set_recorder(Some(points.recorder()));
            fs.set_recording(true);
        }
        match &target {
            CrashTarget::Io { operations } => fs.arm_crash_after_ops(*operations),
            CrashTarget::Step { name, .. } => {
                return Err(configuration(format!(
                    "subject {}: the schedule crashes at checkpoint step {name:?}, but the seam \
                     reports no checkpoint steps",
                    scenario.subject
                )))
            }
            CrashTarget::None => {}
        }
        let phase_record = options.record_schedule.then(|| PhaseSchedule {
            crash: planned_crash(&target, crash_after),
            ..PhaseSchedule::default()
        });
        let phase = run_phase(
            &context,
            Rc::new(subject),
            fs.clone(),
            crash_index,
            Some(crash_after),
        )
        .await;
        run.borrow_mut().outcome.transactions += phase.transactions.get();
        let operations = phase.recorded.take();
        if let Some(failure) = phase.failure.borrow_mut().take() {
            record_phase(run, &fs, phase_record, None, phase_start_io, operations);
            absorb_fs(run, &fs, crash_index, &mut damage);
            return Err(failure);
        }
        drop(phase);
        if context.points.is_some() {
            fs.set_recording(false);
            fs.set_recorder(None);
            // The history this phase's points index into, before recovery trims it.
            let model = context.model.borrow().clone();
            run.borrow_mut().phase_models.push(model);
        }
        let crash_point = fs.crashed_at().expect("the phase ended with a crash");
        let broken: Vec<FaultRecord> = fs
            .faults()
            .into_iter()
            .filter(|fault| {
                fault.index > phase_start_io
                    && context.promise.assumptions_broken_by.contains(&fault.kind)
            })
            .collect();
        absorb_fs(run, &fs, crash_index, &mut damage);

        let image = crash_image(
            run,
            &fs,
            scenario,
            planned,
            PhaseEnd {
                phase: crash_index,
                point: &crash_point,
                record: phase_record,
                start_io: phase_start_io,
                operations,
            },
            (&mut crash_rng, &mut cut_rng),
            &mut damage,
        );
        // A recorded schedule pins the faults recovery meets to the crash image.
        let crash_image = run.borrow().schedule.is_some().then(|| image.clone());
        tracing::info!(crash_index, image = image.digest(), "crash");
        let recovered_fs = SimFs::from_image(
            image,
            fs_config(scenario, seed, crash_index + 1, options.record_trace),
        );
        recovered_fs.set_fault_scope(FaultScope::Reads);
        recovered_fs.set_fault_plan(
            planned
                .map(PhaseSchedule::recovery_fault_plan)
                .transpose()
                .map_err(configuration)?,
        );
        *disk.borrow_mut() = Some(recovered_fs.clone());
        let mut excuses = excuses_of(&context, &damage);
        excuses.extend(broken);
        let judged = recover_and_judge::<S>(
            &context,
            &recovered_fs,
            Some(crash_index),
            excuses,
            &mut damage,
        )
        .await;
        if let Some(image) = &crash_image {
            record_recovery_faults(run, &recovered_fs, image);
        }
        match judged? {
            Some(recovered) => {
                subject = recovered;
                fs = recovered_fs;
            }
            None => return Ok(()),
        }
    }
    quiet_phase(&context, phases, subject, fs, &mut damage).await
}

/// Where the next phase crashes when no schedule says: at the k-th disk call of the phase in
/// `io` mode, else at a random time (`step` mode is refused before any phase runs).
fn drawn_crash(scenario: &Scenario, crash_rng: &mut ChaCha8Rng) -> (CrashTarget, Option<Duration>) {
    match scenario.crash.mode {
        CrashMode::Io => {
            let operations = crash_rng.gen_range(1..=scenario.crash.io_max.max(1)) as u64;
            (CrashTarget::Io { operations }, None)
        }
        _ => (
            CrashTarget::None,
            Some(Duration::from_millis(
                crash_rng.gen_range(1..=scenario.crash.time_max_ms.max(1)),
            )),
        ),
    }
}

/// The damage at rest so far that breaks the promise's assumptions.
fn excuses_of(context: &Seed<'_>, damage: &[FaultRecord]) -> Vec<FaultRecord> {
    damage
        .iter()
        .filter(|fault| context.promise.assumptions_broken_by.contains(&fault.kind))
        .cloned()
        .collect()
}

/// Opens the subject on `fs` and judges what it reads back. A pass returns the subject, with
/// the model trimmed to the recovered prefix; None means the promise does not cover what
/// happened and the seed ends (the disk is then folded into the run, as on a failure).
async fn recover_and_judge<S: Subject>(
    context: &Seed<'_>,
    fs: &SimFs,
    crash_index: Option<u32>,
    mut excuses: Vec<FaultRecord>,
    damage: &mut Vec<FaultRecord>,
) -> Result<Option<S>, Failure> {
    let run = context.run;
    run.borrow_mut().outcome.states_checked += 1;
    let opened = S::open(fs.clone(), &context.setup()).await;
    let read = match &opened {
        Ok(subject) => Some(subject.read_all().await),
        Err(_) => None,
    };
    // What the recovery's own reads met (rot, latent errors, misdirected reads) explains what
    // it found as much as the damage before the crash does.
    excuses.extend(
        fs.faults()
            .into_iter()
            .filter(|fault| context.promise.assumptions_broken_by.contains(&fault.kind)),
    );
    let facts = RecoveryFacts {
        crash_index,
        promise: context.promise,
        excuses: &excuses,
    };
    let judged = match (opened, read) {
        (Err(error), _) => {
            oracle::judge_error(&error, &facts, "recovery").map(|judged| (judged, None))
        }
        (Ok(subject), Some(Err(error))) => {
            oracle::judge_error(&error, &facts, "reading the recovered state")
                .map(|judged| (judged, Some((subject, State::new()))))
        }
        (Ok(subject), Some(Ok(found))) => {
            let model = context.model.borrow();
            oracle::judge_state(&model, &found, &facts)
                .map(|judged| (judged, Some((subject, found))))
        }
        (Ok(_), None) => unreachable!("a read follows every open that succeeded"),
    };
    match judged {
        Ok((Judged::Passed { prefix }, Some((subject, found)))) => {
            tracing::info!(crash = ?crash_index, commits = prefix, keys = found.len(), "check passed");
            context.model.borrow_mut().recovered(prefix, found);
            if crash_index.is_some() {
                run.borrow_mut().outcome.recoveries += 1;
            }
            Ok(Some(subject))
        }
        Ok((Judged::Passed { .. }, None)) => unreachable!("a pass has a subject"),
        Ok((Judged::Excused(message), _)) => {
            tracing::info!(message, "recovery outside the subject's promise");
            absorb_fs(
                run,
                fs,
                crash_index.map_or(u32::MAX, |index| index + 1),
                damage,
            );
            Ok(None)
        }
        Err(failure) => {
            absorb_fs(
                run,
                fs,
                crash_index.map_or(u32::MAX, |index| index + 1),
                damage,
            );
            Err(failure)
        }
    }
}

/// What the tasks of one phase share.
struct Phase<S> {
    subject: Rc<S>,
    fs: SimFs,
    model: Rc<RefCell<Model>>,
    next_commit: Rc<Cell<u64>>,
    points: Option<Arc<PointLog>>,
    /// One call on the subject at a time.
    turn: async_lock::Mutex<()>,
    stop: Cell<bool>,
    clients_done: Cell<u32>,
    transactions: Cell<u64>,
    /// A commit failed: it may or may not have landed, so reads are no longer checked.
    uncertain: Cell<bool>,
    client_errors: RefCell<Vec<String>>,
    failure: RefCell<Option<Failure>>,
    crash_index: Option<u32>,
    /// With `record_schedule`: each client's operations, in the order it took them.
    recorded: RefCell<Vec<Vec<Operation>>>,
    record: bool,
}

/// Runs the clients and the checkpointer until the crash fires (`crash` is Some: with a time,
/// or armed on the disk, or when the clients finish) or, in the quiet phase, until the clients
/// finish. With a schedule each client runs its scripted operations (phase `number`'s entry,
/// or the quiet phase's) instead of drawing them.
async fn run_phase<S: Subject>(
    context: &Seed<'_>,
    subject: Rc<S>,
    fs: SimFs,
    number: u32,
    crash: Option<Option<Duration>>,
) -> Rc<Phase<S>> {
    let scenario = context.scenario;
    let phase = Rc::new(Phase {
        subject,
        fs: fs.clone(),
        model: context.model.clone(),
        next_commit: context.next_commit.clone(),
        points: context.points.clone(),
        turn: async_lock::Mutex::new(()),
        stop: Cell::new(false),
        clients_done: Cell::new(0),
        transactions: Cell::new(0),
        uncertain: Cell::new(false),
        client_errors: RefCell::default(),
        failure: RefCell::default(),
        crash_index: crash.map(|_| number),
        recorded: RefCell::default(),
        record: context.options.record_schedule,
    });
    let scripts = context.schedule.map(|schedule| match crash {
        Some(_) => &schedule.phases[number as usize].clients,
        None => &schedule.quiet,
    });
    let clients = scripts.map_or(scenario.workload.clients, |scripts| scripts.len() as u32);
    let transactions = if crash.is_some() {
        scenario.workload.transactions_per_client
    } else {
        scenario.workload.transactions_per_client.div_ceil(2)
    };
    *phase.recorded.borrow_mut() = vec![Vec::new(); clients as usize];
    let mut handles = Vec::new();
    for id in 0..clients {
        let rng = stream_rng(
            context.seed,
            stream::CLIENT + ((number as u64) << 8) + id as u64,
        );
        let script = scripts.map(|scripts| scripts[id as usize].clone());
        let client = Client {
            phase: phase.clone(),
            workload: scenario.workload.clone(),
            number,
            id,
            rng,
            transactions: script
                .as_ref()
                .map_or(transactions, |script| script.len() as u32),
            script,
        };
        handles.push(madsim::task::spawn_local(client.run()));
    }
    handles.push(madsim::task::spawn_local(checkpointer(
        phase.clone(),
        clients,
        Duration::from_millis(scenario.engine.checkpoint_interval_ms.max(1)),
    )));
    let started = madsim::time::Instant::now();
    // Polls once a simulated millisecond; bounded by the clients' transaction counts and, as a
    // backstop, by the runtime's time limit.
    loop {
        madsim::time::sleep(Duration::from_millis(1)).await;
        if fs.is_crashed() || phase.failure.borrow().is_some() {
            break;
        }
        if let Some(Some(after)) = crash {
            if started.elapsed() >= after {
                fs.crash();
                break;
            }
        }
        if phase.clients_done.get() == clients {
            break;
        }
    }
    if crash.is_some() && !fs.is_crashed() {
        fs.crash();
    }
    phase.stop.set(true);
    for handle in handles {
        let _ = handle.await;
    }
    phase
}

impl<S> Phase<S> {
    /// Tells the crash-point log (explore) what the model now holds.
    fn model_changed(&self) {
        if let Some(points) = &self.points {
            points.model_changed(&self.model.borrow());
        }
    }
}

struct Client<S> {
    phase: Rc<Phase<S>>,
    workload: crate::scenario::Workload,
    number: u32,
    id: u32,
    rng: ChaCha8Rng,
    transactions: u32,
    /// The operations to run (from a schedule) instead of drawing them.
    script: Option<Vec<Operation>>,
}

impl<S: Subject> Client<S> {
    async fn run(mut self) {
        let phase = self.phase.clone();
        for number in 0..self.transactions {
            let operation = match &self.script {
                Some(script) => script[number as usize].clone(),
                None => workload::draw(
                    &mut self.rng,
                    &self.workload,
                    (self.number, self.id, number),
                ),
            };
            // Recorded when drawn, as the dedicated driver's clients do: a replay then stops
            // at the same place, in the think time before an operation the crash cut off.
            if phase.record {
                phase.recorded.borrow_mut()[self.id as usize].push(operation.clone());
            }
            let think = Duration::from_micros(operation.think_us()).max(OPERATION_GAP);
            madsim::time::sleep(think).await;
            if phase.stop.get() || phase.fs.is_crashed() {
                break;
            }
            let _turn = phase.turn.lock().await;
            let result = match &operation {
                Operation::Commit { writes, .. } => self.commit(writes).await,
                Operation::Get { .. } | Operation::Scan { .. } => self.read().await,
            };
            if let Err(error) = result {
                if !phase.fs.is_crashed() {
                    phase
                        .client_errors
                        .borrow_mut()
                        .push(format!("client {}: {error}", self.id));
                }
                break;
            }
        }
        phase.clients_done.set(phase.clients_done.get() + 1);
    }

    async fn commit(&self, writes: &[ScheduledWrite]) -> Result<(), SubjectError> {
        let phase = &self.phase;
        let writes: Vec<Write> = writes
            .iter()
            .map(|write| Write {
                key: write.key.as_bytes().to_vec(),
                value: write.value.as_ref().map(|value| value.as_bytes().to_vec()),
            })
            .collect();
        let lsn = Lsn(phase.next_commit.get());
        phase.next_commit.set(lsn.0 + 1);
        phase
            .model
            .borrow_mut()
            .record_commit(lsn, Lsn(lsn.0 + 1), &writes);
        phase.model_changed();
        match phase.subject.commit(&writes).await {
            Ok(acknowledged) => {
                phase.transactions.set(phase.transactions.get() + 1);
                if acknowledged.durable {
                    phase.model.borrow_mut().acknowledged_durable.insert(lsn);
                    phase.model_changed();
                }
                Ok(())
            }
            Err(error) => {
                phase.uncertain.set(true);
                Err(error)
            }
        }
    }

    async fn read(&self) -> Result<(), SubjectError> {
        let phase = &self.phase;
        let found = phase.subject.read_all().await?;
        if phase.uncertain.get() {
            return Ok(());
        }
        let difference = first_difference(&phase.model.borrow().live, &found);
        if let Some(difference) = difference {
            let mut failure = phase.failure.borrow_mut();
            if failure.is_none() {
                *failure = Some(Failure {
                    kind: FailureKind::Divergence,
                    crash_index: phase.crash_index,
                    message: format!(
                        "a read of the live database disagrees with the model: {difference}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Checkpoints (or flushes, or syncs the log) on the interval until the clients are done. It
/// does not wait for its turn: an engine with group commit needs it while a commit waits.
async fn checkpointer<S: Subject>(phase: Rc<Phase<S>>, clients: u32, interval: Duration) {
    while phase.clients_done.get() < clients && !phase.stop.get() {
        madsim::time::sleep(interval).await;
        if phase.fs.is_crashed() {
            break;
        }
        let _ = phase.subject.checkpoint().await;
    }
}

/// No faults: the clients must finish, a checkpoint and a clean close must succeed and leave
/// nothing unsynced, and the reopened database must hold exactly the model.
async fn quiet_phase<S: Subject>(
    context: &Seed<'_>,
    number: u32,
    subject: S,
    fs: SimFs,
    damage: &mut Vec<FaultRecord>,
) -> Result<(), Failure> {
    let run = context.run;
    fs.set_faults_enabled(false);
    let liveness = |message: String| Failure {
        kind: FailureKind::Liveness,
        crash_index: None,
        message,
    };
    let phase = run_phase(context, Rc::new(subject), fs.clone(), number, None).await;
    run.borrow_mut().outcome.transactions += phase.transactions.get();
    let operations = phase.recorded.take();
    if let Some(recorded) = run.borrow_mut().schedule.as_mut() {
        recorded.quiet = operations;
    }
    if let Some(failure) = phase.failure.borrow_mut().take() {
        absorb_fs(run, &fs, number, damage);
        return Err(failure);
    }
    let errors = phase.client_errors.borrow().clone();
    let Ok(phase) = Rc::try_unwrap(phase) else {
        unreachable!("every task of the phase has ended");
    };
    let Ok(subject) = Rc::try_unwrap(phase.subject) else {
        unreachable!("every task of the phase has ended");
    };
    let finished = if errors.is_empty() {
        match subject.checkpoint().await {
            Ok(()) => subject
                .close()
                .await
                .map_err(|error| format!("the clean close failed: {error}")),
            Err(error) => Err(format!("the quiet-phase checkpoint failed: {error}")),
        }
    } else {
        Err(format!(
            "clients failed without faults: {}",
            errors.join("; ")
        ))
    };
    let crash_point = fs.crash_point();
    absorb_fs(run, &fs, number, damage);
    if let Err(message) = finished {
        if excuses_of(context, damage).is_empty() {
            return Err(liveness(message));
        }
        tracing::info!(message, "quiet phase stopped by injected damage");
        return Ok(());
    }
    if !crash_point.is_settled() {
        return Err(liveness(
            "data was still unsynced after a clean close".to_string(),
        ));
    }
    context.model.borrow_mut().all_durable();
    let (image, _) = crash_point.materialize(&crash_point.all_vanish());
    let reopened = SimFs::from_image(
        image,
        fs_config(context.scenario, context.seed, number + 1, false),
    );
    reopened.set_fault_scope(FaultScope::Off);
    let excuses = excuses_of(context, damage);
    if let Some(subject) = recover_and_judge::<S>(context, &reopened, None, excuses, damage).await?
    {
        let state = subject.read_all().await.unwrap_or_default();
        let _ = subject.close().await;
        run.borrow_mut().outcome.final_state_digest = digest(&state);
        absorb_fs(run, &reopened, number + 1, damage);
    }
    Ok(())
}
