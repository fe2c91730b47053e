//! `explore` for any [`Subject`]: the crash points a subject's run leaves, and the recovery of
//! one crash state by the subject's promise.
//!
//! The dedicated engine driver records points inside checkpoint windows, where its hub knows
//! the checkpoint and step. A subject reports no steps, so every disk call of every crash phase
//! that changed what a crash could leave (a write, a sync, a namespace operation; not a read)
//! is a point. Each point carries the model as it stood: the commits recorded so far (a commit
//! is recorded before it is called, so one in flight is in the history and may or may not have
//! landed) and those acknowledged durable.
//!
//! A state is judged exactly as the subject driver judges a recovery ([`super::oracle`]): it
//! opens (or reports damage a broken assumption explains), and what it reads back is a prefix
//! of the commit order holding every durable commit. A panic is excused only as the driver
//! excuses one: after a fault the promise does not cover.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crashpoint::Lsn;

use super::engine::EngineSubject;
use super::oracle::{self, Judged, RecoveryFacts};
use super::redb::RedbSubject;
use super::{Setup, Subject, SubjectName};
use crate::explore::StateVerdict;
use crate::fs::{CrashPoint, FaultRecord, Recorder, SimFs};
use crate::hub::{RecordedPoint, RECORDED_POINTS_MAX};
use crate::model::Model;
use crate::outcome::{Failure, FailureKind};
use crate::scenario::Scenario;

/// The crash points of one subject run, and the model facts each needs. Shared between the
/// disk's recorder and the driver's clients (one thread: the lock is never contended).
#[derive(Default)]
pub(crate) struct PointLog {
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    phase: u32,
    commits: usize,
    acknowledged_durable: BTreeSet<Lsn>,
    points: Vec<RecordedPoint>,
    /// What the last point held, to skip calls that changed nothing a crash could leave.
    last: Option<Footprint>,
}

/// Which durable bytes and how many unsynced operations a crash point holds.
struct Footprint {
    /// The durable bytes are shared until a sync replaces them, so holding them tells whether
    /// they changed without comparing them.
    files: Vec<(String, Arc<Vec<u8>>)>,
    pending: usize,
    namespace: usize,
}

impl Footprint {
    fn of(point: &CrashPoint) -> Footprint {
        Footprint {
            files: point
                .files
                .iter()
                .map(|(name, bytes)| (name.clone(), bytes.clone()))
                .collect(),
            pending: point.pending.len(),
            namespace: point.namespace.len(),
        }
    }

    /// Nothing a crash could leave differs.
    fn same(&self, other: &Footprint) -> bool {
        self.pending == other.pending
            && self.namespace == other.namespace
            && self.files.len() == other.files.len()
            && self.files.iter().zip(&other.files).all(
                |((name, bytes), (other_name, other_bytes))| {
                    name == other_name && Arc::ptr_eq(bytes, other_bytes)
                },
            )
    }
}

impl PointLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A crash phase starts: points from now on belong to it, with the model as it stands.
    pub(crate) fn start_phase(&self, phase: u32, model: &Model) {
        let mut state = self.lock();
        state.phase = phase;
        state.last = None;
        drop(state);
        self.model_changed(model);
    }

    /// A commit was recorded or acknowledged.
    pub(crate) fn model_changed(&self, model: &Model) {
        let mut state = self.lock();
        state.commits = model.commits.len();
        state.acknowledged_durable = model.acknowledged_durable.clone();
    }

    /// What the disk calls after each of its calls while recording is on.
    pub(crate) fn recorder(self: &Arc<Self>) -> Recorder {
        let log = Arc::downgrade(self);
        Arc::new(move |io_index, crash_point| {
            let Some(log) = log.upgrade() else { return };
            let mut state = log.lock();
            let footprint = Footprint::of(&crash_point);
            let unchanged = state
                .last
                .as_ref()
                .is_some_and(|last| last.same(&footprint));
            if state.points.len() >= RECORDED_POINTS_MAX || unchanged {
                return;
            }
            state.last = Some(footprint);
            let point = RecordedPoint {
                phase: state.phase,
                io_index,
                checkpoint: 0,
                step: None,
                crash_point,
                commits: state.commits,
                acknowledged_durable: state.acknowledged_durable.clone(),
                anchor_writes: Vec::new(),
            };
            state.points.push(point);
        })
    }

    pub(crate) fn take_points(&self) -> Vec<RecordedPoint> {
        std::mem::take(&mut self.lock().points)
    }
}

/// What recovering one state of a subject needs besides the disk.
#[derive(Clone, Debug)]
pub struct SubjectRecovery {
    pub subject: SubjectName,
    pub scenario: Scenario,
    pub canary: Option<String>,
}

impl SubjectRecovery {
    /// Opens the subject on `fs` (a state's image), reads everything back and judges it by the
    /// promise against `model`; `faults` are those of the run up to the point, of which the
    /// ones that break the promise's assumptions excuse.
    pub async fn recover(
        &self,
        fs: SimFs,
        phase: u32,
        model: &Model,
        faults: &[FaultRecord],
    ) -> StateVerdict {
        let excuses = self.excuses(faults);
        let facts = RecoveryFacts {
            crash_index: Some(phase),
            promise: self.subject.promise(),
            excuses: &excuses,
        };
        let setup = Setup {
            scenario: &self.scenario,
            canary: self.canary.as_deref(),
        };
        let judged = match self.subject {
            SubjectName::Redb => judge::<RedbSubject>(fs, &setup, model, &facts).await,
            SubjectName::Crashpoint | SubjectName::CrashpointSeam => {
                judge::<EngineSubject>(fs, &setup, model, &facts).await
            }
        };
        match judged {
            Ok(Judged::Passed { .. }) => StateVerdict::Passed,
            Ok(Judged::Excused(message)) => StateVerdict::Excused(message),
            Err(failure) => StateVerdict::Failed(failure),
        }
    }

    /// A panic while recovering at `phase`: excused, as the driver excuses one, only after a
    /// fault that breaks the promise's assumptions.
    pub fn panicked(&self, phase: u32, faults: &[FaultRecord], message: String) -> StateVerdict {
        let excuses = self.excuses(faults);
        if excuses.is_empty() {
            return StateVerdict::Failed(Failure {
                kind: FailureKind::Panic,
                crash_index: Some(phase),
                message,
            });
        }
        StateVerdict::Excused(format!(
            "the subject panicked ({message}); excused by {}",
            crate::oracle::describe(&excuses)
        ))
    }

    /// The faults among `faults` that break the promise's assumptions.
    fn excuses(&self, faults: &[FaultRecord]) -> Vec<FaultRecord> {
        let promise = self.subject.promise();
        faults
            .iter()
            .filter(|fault| promise.assumptions_broken_by.contains(&fault.kind))
            .cloned()
            .collect()
    }
}

async fn judge<S: Subject>(
    fs: SimFs,
    setup: &Setup<'_>,
    model: &Model,
    facts: &RecoveryFacts<'_>,
) -> Result<Judged, Failure> {
    let subject = match S::open(fs, setup).await {
        Ok(subject) => subject,
        Err(error) => return oracle::judge_error(&error, facts, "recovery"),
    };
    match subject.read_all().await {
        Ok(found) => oracle::judge_state(model, &found, facts),
        Err(error) => oracle::judge_error(&error, facts, "reading the recovered state"),
    }
}
