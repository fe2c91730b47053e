//! What the engine's observer, the workload tasks and the driver share during a run: the
//! reference model, the crash target, and what the checkpoints have done so far.
//!
//! The engine calls the observer inline, under its latch, so the hub is updated in the same
//! order the engine applies commits and takes checkpoint steps.

pub(crate) mod measured;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::collections::BTreeSet;

use crashpoint::strategy::AnchorRegion;
use crashpoint::{
    CheckpointMeasures, CheckpointStep, Clock, CommitMeasures, Lsn, Observer, Trigger, Write,
};

use crate::fs::{CrashPoint, SimFs, WriteWatch};
use crate::model::Model;
use crate::outcome::{Failure, FailureKind};

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

    fn sleep(&self, duration: Duration) -> crashpoint::clock::Sleep<'_> {
        Box::pin(madsim::time::sleep(duration))
    }
}

/// Where the current phase crashes, beyond the random-time and end-of-phase crashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashTarget {
    None,
    /// Crash after the `then`-th I/O call following the `skip + 1`-th occurrence of the named
    /// checkpoint step (`then` 0: right at the step), or at the next step if that comes
    /// first: every I/O between two steps is a crash point, not only the steps themselves.
    Step {
        name: String,
        skip: u32,
        then: u32,
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
    /// Every anchor write issued so far (the last one may be in the point's unsynced writes).
    pub anchor_writes: Vec<AnchorWrite>,
}

/// A write the engine issued to one of its strategy's anchor regions (a header slot, a
/// control file slot, a reserved page) while checkpoint `checkpoint` was running. The harness
/// decides which checkpoint an image makes durable from these and the image's bytes alone
/// ([`crate::oracle::durable_checkpoint`]), without decoding anything the engine wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorWrite {
    pub checkpoint: u64,
    pub file: String,
    pub offset: u64,
    pub bytes: Arc<Vec<u8>>,
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
    /// A step crash armed for a later I/O call (the step it follows, and the call): if the
    /// next step comes first, the crash happens there.
    pub armed_after_step: Option<(String, u32)>,
    /// The strategy's anchor regions, and every write issued to them, in order.
    pub anchor_regions: Vec<AnchorRegion>,
    pub anchor_writes: Vec<AnchorWrite>,
    /// The checkpoint whose window is open (from its `started` to its `finished` step).
    pub open_checkpoint: Option<u64>,
    /// What the harness saw of the last checkpoint that started, for its measures.
    pub seen: measured::CheckpointSeen,
    /// How long a checkpoint that wrote pages must last ([`measured::paced_at_least`]).
    pub paced_at_least: Option<std::time::Duration>,
    /// The phase running now is the quiet one (no crash), for the failures the hub reports.
    pub quiet: bool,
    /// Commits logged so far (for telling an idle checkpoint).
    pub commits_logged: u64,
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
    /// What the engine measured about its checkpoints and commits (through the observer).
    pub measures: crate::measures::Measures,
    /// The newest checkpoint `request_checkpoint` resolved Ok on the current disk: a crash
    /// must not recover an older one unless injected damage explains it.
    pub forced_durable: u64,
    /// Operations each client ran, by (phase, client), when recording a schedule.
    pub recorded_operations:
        std::collections::BTreeMap<(u32, u32), Vec<crate::schedule::Operation>>,
}

/// Events kept per run at most.
pub const TIMELINE_EVENTS_MAX: usize = 1 << 20;

impl HubState {
    /// What the hub holds an engine opened with `options` to: where its anchors lie (to record
    /// every write to them) and how long its checkpoints must last. Every hub that watches an
    /// engine is set up here, so no driver holds one engine to less than another.
    pub fn expect_engine(&mut self, options: &crashpoint::Options) {
        self.anchor_regions = options.strategy.anchor_regions();
        self.paced_at_least = measured::paced_at_least(options);
    }

    /// Highest checkpoint whose anchor write was ever issued: recovery can't use a newer one.
    pub fn anchor_written_max(&self) -> u64 {
        self.anchor_writes
            .iter()
            .map(|write| write.checkpoint)
            .max()
            .unwrap_or(0)
    }

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
                anchor_writes: state.anchor_writes.clone(),
            };
            state.points.push(point);
        })
    }

    /// The watch a disk calls with every write: writes that touch one of the strategy's anchor
    /// regions are kept, tagged with the checkpoint whose window is open.
    pub fn anchor_watch(&self) -> WriteWatch {
        // Weak: the hub holds the disk, so a strong reference here would be a cycle that keeps
        // every disk of the run (and its bytes) alive after the seed ends.
        let hub = Arc::downgrade(&self.state);
        Arc::new(move |file, offset, bytes| {
            let Some(hub) = hub.upgrade() else { return };
            let mut state = hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.open_checkpoint.is_some() {
                state.seen.bytes_written += bytes.len() as u64;
            }
            let end = offset + bytes.len() as u64;
            let Some(region) = state.anchor_regions.iter().find(|region| {
                (region.file == file || region.staging_file == Some(file))
                    && offset < region.offset + region.len
                    && region.offset < end
            }) else {
                return;
            };
            // Kept under the file's final name: that is where recovery will look for it.
            let file = region.file;
            let Some(checkpoint) = state.open_checkpoint else {
                tracing::debug!(file, offset, "anchor write outside a checkpoint window");
                return;
            };
            state.anchor_writes.push(AnchorWrite {
                checkpoint,
                file: file.to_string(),
                offset,
                bytes: Arc::new(bytes.to_vec()),
            });
        })
    }

    /// Makes `fs` the disk of the run from now on: its anchor writes are watched.
    pub fn attach(&self, fs: &SimFs) {
        fs.set_write_watch(Some(self.anchor_watch()));
        self.lock().fs = Some(fs.clone());
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
    fn commit_logged(&self, lsn: Lsn, end: Lsn, writes: &[Write]) {
        let mut state = self.hub.lock();
        state.model.record_commit(lsn, end, writes);
        state.commits_logged += 1;
    }

    fn commit_finished(&self, commit: &CommitMeasures) {
        self.hub.lock().measures.commit(commit);
    }

    fn checkpoint_finished(&self, count: u64, trigger: Trigger, measures: &CheckpointMeasures) {
        let mut state = self.hub.lock();
        state.measures.checkpoint(trigger, measures);
        let paced_at_least = state.paced_at_least;
        let names = state.fs.as_ref().map(SimFs::names).unwrap_or_default();
        let Some(message) = state
            .seen
            .finished(count, trigger, measures, paced_at_least, &names)
        else {
            return;
        };
        let crash_index = (!state.quiet).then_some(state.phase);
        drop(state);
        self.hub.fail(Failure {
            kind: FailureKind::Measures,
            crash_index,
            message,
        });
    }

    fn checkpoint_skipped(&self, trigger: Trigger) {
        self.hub.lock().measures.skipped(trigger);
    }

    fn checkpoint_step(&self, count: u64, step: CheckpointStep) {
        let mut state = self.hub.lock();
        let commits = state.commits_logged;
        let fs = state.fs.clone();
        state.seen.step(count, &step, commits, || {
            fs.as_ref().map(SimFs::names).unwrap_or_default()
        });
        if step.is_start() {
            state.open_checkpoint = Some(count);
        }
        if step.is_finish() {
            state.open_checkpoint = None;
            state.checkpoints_finished += 1;
        }
        state.note(TimelineEvent::CheckpointStep {
            nanos: now_nanos(),
            count,
            step,
        });
        let Some(fs) = state.fs.clone() else { return };
        if state.recording && !fs.is_crashed() {
            if step.is_start() {
                state.window = Some((count, Some(step)));
                fs.set_recording(true);
            } else if step.is_finish() {
                state.window = None;
                fs.set_recording(false);
            } else if let Some((_, last)) = &mut state.window {
                *last = Some(step);
            }
        }
        if fs.is_crashed() {
            return;
        }
        if let Some((after, then)) = state.armed_after_step.take() {
            // The armed I/O call did not come before this step: crash here, with every call
            // between the two steps landed.
            tracing::info!(
                checkpoint = count,
                step = step.name(),
                "crash after checkpoint step (before the armed I/O call)"
            );
            state.crash_cause = Some(format!(
                "checkpoint {count} step {} (fewer than {then} I/O operations after step {after})",
                step.name()
            ));
            fs.disarm_crash();
            fs.crash();
            return;
        }
        match state.target.clone() {
            Some(CrashTarget::Step { name, skip, then }) if step.name() == name.as_str() => {
                if skip > 0 {
                    state.target = Some(CrashTarget::Step {
                        name,
                        skip: skip - 1,
                        then,
                    });
                } else if then == 0 {
                    tracing::info!(
                        checkpoint = count,
                        step = step.name(),
                        "crash after checkpoint step"
                    );
                    state.crash_cause = Some(format!("checkpoint {count} step {}", step.name()));
                    state.target = None;
                    fs.crash();
                } else {
                    tracing::debug!(
                        checkpoint = count,
                        step = step.name(),
                        then,
                        "armed crash after checkpoint step"
                    );
                    state.crash_cause = Some(format!(
                        "checkpoint {count} I/O operation {then} after step {}",
                        step.name()
                    ));
                    state.target = None;
                    state.armed_after_step = Some((name, then));
                    fs.arm_crash_after_ops(u64::from(then));
                }
            }
            Some(CrashTarget::Io { operations }) => {
                if step.is_start() {
                    tracing::debug!(count, operations, "armed crash inside checkpoint window");
                    state.crash_cause = Some(format!(
                        "I/O operation {operations} inside checkpoint {count}"
                    ));
                    fs.arm_crash_after_ops(operations);
                } else if step.is_finish() {
                    fs.disarm_crash();
                    state.crash_cause = None;
                }
            }
            _ => {}
        }
    }
}
