//! Hooks through which an embedder watches the engine: checkpoint steps and logged commits.
//!
//! The simulator uses these to crash at a named checkpoint step and to keep its reference
//! model in log order; a production embedder can use them for metrics. Callbacks run inline,
//! so they must be quick and must not call back into the engine.

use crate::types::{Lsn, PageId, Write};

/// A step of a checkpoint, reported right after it is done.
///
/// The order is TokuDB's: begin (log the begin record, set pending bits, copy header and
/// translation), then end (write pending pages, fsync, write translation, fsync, write header,
/// fsync, log end record, free blocks, trim the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckpointStep {
    /// The checkpoint lock is held; nothing is written yet. The checkpoint window opens.
    Started,
    /// The begin_checkpoint record is appended and flushed to the log.
    BeginRecordLogged,
    /// Every dirty page is marked pending; header and translation are copied.
    PendingBitsSet,
    /// A pending page (or its clone) is written to a fresh block. `index` counts from 0.
    PageWritten { page_id: PageId, index: u32 },
    /// The data file is fsynced after the page writes.
    DataSynced,
    /// The inprogress translation is written to a fresh block.
    TranslationWritten,
    /// The data file is fsynced after the translation write.
    TranslationSynced,
    /// The header is written to its slot.
    HeaderWritten,
    /// The data file is fsynced after the header write: the checkpoint is durable.
    HeaderSynced,
    /// The end_checkpoint record is appended and flushed to the log.
    EndRecordLogged,
    /// Blocks only the old checkpointed translation referenced are freed.
    BlocksFreed,
    /// Log segments before the checkpoint's begin LSN are removed.
    LogTrimmed,
    /// The checkpoint is complete; the window closes.
    Finished,
}

impl CheckpointStep {
    /// A stable name for scenario files and reports (page writes share one name).
    pub fn name(self) -> &'static str {
        match self {
            CheckpointStep::Started => "started",
            CheckpointStep::BeginRecordLogged => "begin-record-logged",
            CheckpointStep::PendingBitsSet => "pending-bits-set",
            CheckpointStep::PageWritten { .. } => "page-written",
            CheckpointStep::DataSynced => "data-synced",
            CheckpointStep::TranslationWritten => "translation-written",
            CheckpointStep::TranslationSynced => "translation-synced",
            CheckpointStep::HeaderWritten => "header-written",
            CheckpointStep::HeaderSynced => "header-synced",
            CheckpointStep::EndRecordLogged => "end-record-logged",
            CheckpointStep::BlocksFreed => "blocks-freed",
            CheckpointStep::LogTrimmed => "log-trimmed",
            CheckpointStep::Finished => "finished",
        }
    }

    /// Every step name, in checkpoint order.
    pub const NAMES: [&'static str; 13] = [
        "started",
        "begin-record-logged",
        "pending-bits-set",
        "page-written",
        "data-synced",
        "translation-written",
        "translation-synced",
        "header-written",
        "header-synced",
        "end-record-logged",
        "blocks-freed",
        "log-trimmed",
        "finished",
    ];
}

pub trait Observer: Send + Sync + 'static {
    fn checkpoint_step(&self, _count: u64, _step: CheckpointStep) {}

    /// A commit record was appended to the log buffer at `lsn` and applied to the tree. Called
    /// in LSN order, before the commit is durable.
    fn commit_logged(&self, _lsn: Lsn, _writes: &[Write]) {}
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
