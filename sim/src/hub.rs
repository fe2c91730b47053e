//! What the engine's observer, the workload tasks and the driver share during a run: the
//! reference model, the crash target, and what the checkpoints have done so far.
//!
//! The engine calls the observer inline, under its latch, so the hub is updated in the same
//! order the engine applies commits and takes checkpoint steps.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crashpoint::{CheckpointStep, Clock, Lsn, Observer, Write};

use crate::fs::SimFs;
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
        let Some(fs) = state.fs.clone() else { return };
        if fs.is_crashed() {
            return;
        }
        match state.target.clone() {
            Some(CrashTarget::Step { name, skip }) if step.name() == name => {
                if skip == 0 {
                    tracing::info!(count, ?step, "crash at checkpoint step");
                    state.crash_cause = Some(format!("checkpoint {count} step {step:?}"));
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
