//! What the engine's observer, the workload tasks and the driver share during a run: the
//! reference model, the crash target, and what the checkpoints have done so far.
//!
//! The engine calls the observer inline, under its latch, so the hub is updated in the same
//! order the engine applies commits and takes checkpoint steps.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::collections::BTreeSet;

use crashpoint::{CheckpointStep, Clock, Lsn, Observer, Write};

use crate::fs::{CrashPoint, SimFs};
use crate::model::Model;
use crate::outcome::Failure;

/// The engine's clock inside the simulation: madsim's virtual time.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    origin: madsim::time::Instant,
}

impl SimClock {
    pub fn new() -> Self {
        Self {
            origin: madsim::time::Instant::now(),
        }
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        madsim::time::Instant::now().saturating_duration_since(self.origin)
    }
}

/// Where the current phase crashes, beyond the random-time and end-of-phase crashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashTarget {
    None,
    /// Crash right after the `skip + 1`-th occurrence of the named checkpoint step.
    Step {
        name: &'static str,
        skip: u32,
    },
    /// Crash after the `operations`-th I/O operation inside the next checkpoint window.
    Io {
        operations: u64,
    },
}

/// Simulated nanoseconds since the runtime started: the one timeline of a run.
pub fn now_nanos() -> u64 {
    madsim::time::TimeHandle::try_current().map_or(0, |time| time.elapsed().as_nanos() as u64)
}

/// A state a crash could leave, recorded after an I/O call inside a checkpoint window.
#[derive(Clone, Debug)]
pub struct RecordedPoint {
    pub phase: u32,
    pub io_index: u64,
    /// The checkpoint whose window this is, and the last step it reported before the call.
    pub checkpoint: u64,
    pub step: Option<CheckpointStep>,
    pub crash_point: CrashPoint,
    /// Commits in the model's history when the call completed.
    pub commits: usize,
    pub acknowledged_durable: BTreeSet<Lsn>,
    pub header_written_max: u64,
}

/// Points kept per run at most; exploration samples within this.
pub const RECORDED_POINTS_MAX: usize = 1 << 16;

/// Something that happened in a run, on the simulated timeline, for the trace picture.
#[derive(Clone, Debug)]
pub enum TimelineEvent {
    Transaction {
        phase: u32,
        client: u32,
        start_nanos: u64,
        end_nanos: u64,
        writes: usize,
        /// The commit's LSN and durability, or the error.
        result: Result<(Lsn, bool), String>,
    },
    Read {
        phase: u32,
        client: u32,
        start_nanos: u64,
        end_nanos: u64,
        ok: bool,
    },
    CheckpointStep {
        nanos: u64,
        count: u64,
        step: CheckpointStep,
    },
    Crash {
        phase: u32,
        nanos: u64,
        cause: String,
    },
    Check {
        phase: u32,
        nanos: u64,
        passed: bool,
        message: String,
    },
}

#[derive(Default)]
pub struct HubState {
    pub model: Model,
    pub fs: Option<SimFs>,
    pub target: Option<CrashTarget>,
    /// Highest checkpoint count whose header write was issued: recovery can't use a newer one.
    pub header_written_max: u64,
    /// A check that failed while the phase ran (a read that disagreed with the model).
    pub failure: Option<Failure>,
    /// Checkpoints that finished in this phase.
    pub checkpoints_finished: u64,
    /// The crash the target caused, in words, for the report.
    pub crash_cause: Option<String>,
    /// The phase running now.
    pub phase: u32,
    /// Record crash points inside checkpoint windows (for `explore`).
    pub recording: bool,
    /// The open checkpoint window: its count and last step.
    pub window: Option<(u64, Option<CheckpointStep>)>,
    pub points: Vec<RecordedPoint>,
    /// Record the timeline (for `replay --trace`).
    pub timeline_on: bool,
    pub timeline: Vec<TimelineEvent>,
    /// Operations each client ran, by (phase, client), when recording a schedule.
    pub recorded_operations:
        std::collections::BTreeMap<(u32, u32), Vec<crate::schedule::Operation>>,
}

/// Events kept per run at most.
pub const TIMELINE_EVENTS_MAX: usize = 1 << 20;

impl HubState {
    pub fn note(&mut self, event: TimelineEvent) {
        if self.timeline_on && self.timeline.len() < TIMELINE_EVENTS_MAX {
            self.timeline.push(event);
        }
    }
}

#[derive(Clone, Default)]
pub struct Hub {
    state: Arc<Mutex<HubState>>,
}

impl Hub {
    pub fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(HubObserver { hub: self.clone() })
    }

    /// The recorder a disk calls after each call while a checkpoint window is open.
    pub fn recorder(&self) -> crate::fs::Recorder {
        let hub = self.clone();
        Arc::new(move |io_index, crash_point| {
            let mut state = hub.lock();
            let Some((checkpoint, step)) = state.window else {
                return;
            };
            if state.points.len() >= RECORDED_POINTS_MAX {
                return;
            }
            let point = RecordedPoint {
                phase: state.phase,
                io_index,
                checkpoint,
                step,
                crash_point,
                commits: state.model.commits.len(),
                acknowledged_durable: state.model.acknowledged_durable.clone(),
                header_written_max: state.header_written_max,
            };
            state.points.push(point);
        })
    }

    /// Records a check failure; the first one wins.
    pub fn fail(&self, failure: Failure) {
        let mut state = self.lock();
        if state.failure.is_none() {
            tracing::warn!(kind = failure.kind.name(), message = %failure.message, "check failed");
            state.failure = Some(failure);
        }
    }
}

struct HubObserver {
    hub: Hub,
}

impl Observer for HubObserver {
    fn commit_logged(&self, lsn: Lsn, writes: &[Write]) {
        self.hub.lock().model.record_commit(lsn, writes);
    }

    fn checkpoint_step(&self, count: u64, step: CheckpointStep) {
        let mut state = self.hub.lock();
        if step == CheckpointStep::HeaderWritten {
            state.header_written_max = state.header_written_max.max(count);
        }
        if step == CheckpointStep::Finished {
            state.checkpoints_finished += 1;
        }
        state.note(TimelineEvent::CheckpointStep {
            nanos: now_nanos(),
            count,
            step,
        });
        let Some(fs) = state.fs.clone() else { return };
        if state.recording && !fs.is_crashed() {
            match step {
                CheckpointStep::Started => {
                    state.window = Some((count, Some(step)));
                    fs.set_recording(true);
                }
                CheckpointStep::Finished => {
                    state.window = None;
                    fs.set_recording(false);
                }
                _ => {
                    if let Some((_, last)) = &mut state.window {
                        *last = Some(step);
                    }
                }
            }
        }
        if fs.is_crashed() {
            return;
        }
        match state.target.clone() {
            Some(CrashTarget::Step { name, skip }) if step.name() == name => {
                if skip == 0 {
                    tracing::info!(
                        checkpoint = count,
                        step = step.name(),
                        "crash after checkpoint step"
                    );
                    state.crash_cause = Some(format!("checkpoint {count} step {}", step.name()));
                    state.target = None;
                    fs.crash();
                } else {
                    state.target = Some(CrashTarget::Step {
                        name,
                        skip: skip - 1,
                    });
                }
            }
            Some(CrashTarget::Io { operations }) => match step {
                CheckpointStep::Started => {
                    tracing::debug!(count, operations, "armed crash inside checkpoint window");
                    state.crash_cause = Some(format!(
                        "I/O operation {operations} inside checkpoint {count}"
                    ));
                    fs.arm_crash_after_ops(operations);
                }
                CheckpointStep::Finished => {
                    fs.disarm_crash();
                    state.crash_cause = None;
                }
                _ => {}
            },
            _ => {}
        }
    }
}
