//! Hooks through which an embedder watches the engine: checkpoint steps, logged and finished
//! commits, and each checkpoint's trigger and measures (on the engine's clock).
//!
//! The simulator uses these to crash at a named checkpoint step and to keep its reference
//! model in log order; a production embedder can use them for metrics. Callbacks run inline,
//! so they must be quick and must not call back into the engine.

use crate::strategy::steps::{self, Step};
use crate::trigger::{CheckpointMeasures, Trigger};
use crate::types::{Lsn, PageId, Write};

/// A step of a checkpoint, reported right after it is done: which step of the strategy's list
/// ([`crate::strategy::Strategy::steps`]), and for a page write which page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointStep {
    pub step: &'static Step,
    /// Set for `page-written`: the page and how many pages this checkpoint wrote before it.
    pub page: Option<PageWrite>,
}

/// The page a `page-written` step wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageWrite {
    pub page_id: PageId,
    /// Counts the checkpoint's page writes from 0.
    pub index: u32,
}

impl CheckpointStep {
    pub fn new(step: &'static Step) -> Self {
        Self { step, page: None }
    }

    pub fn page(step: &'static Step, page_id: PageId, index: u32) -> Self {
        Self {
            step,
            page: Some(PageWrite { page_id, index }),
        }
    }

    /// The step's stable name, as scenario files spell it (page writes share one name).
    pub fn name(&self) -> &'static str {
        self.step.name
    }

    /// The first step of every strategy: the checkpoint window opens.
    pub fn is_start(&self) -> bool {
        self.step.name == steps::STARTED
    }

    /// The last step of every strategy: the checkpoint window closes.
    pub fn is_finish(&self) -> bool {
        self.step.name == steps::FINISHED
    }
}

impl PartialOrd for CheckpointStep {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Steps order as a checkpoint takes them (page writes by their index).
impl Ord for CheckpointStep {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.step.position, self.page).cmp(&(other.step.position, other.page))
    }
}

pub trait Observer: Send + Sync + 'static {
    fn checkpoint_step(&self, _count: u64, _step: CheckpointStep) {}

    /// A commit record was appended to the log buffer at `lsn` and applied to the tree. Called
    /// in LSN order, before the commit is durable.
    /// `end` is one past the record's last byte.
    fn commit_logged(&self, _lsn: Lsn, _end: Lsn, _writes: &[Write]) {}

    /// A commit returned Ok: how long it took on the engine's clock, the bytes of its keys and
    /// values, and whether a checkpoint ran at any moment while it did.
    fn commit_finished(&self, _commit: &CommitMeasures) {}

    /// Checkpoint `count`, run for `trigger`, is durable and finished.
    fn checkpoint_finished(&self, _count: u64, _trigger: Trigger, _measures: &CheckpointMeasures) {}

    /// A checkpoint for `trigger` was skipped: nothing was logged since the last one.
    fn checkpoint_skipped(&self, _trigger: Trigger) {}
}

/// One commit's latency and size, for [`Observer::commit_finished`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitMeasures {
    pub latency: std::time::Duration,
    /// Key and value bytes the commit wrote.
    pub bytes: u64,
    /// A checkpoint was running at some moment between the commit's start and its return.
    pub during_checkpoint: bool,
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
