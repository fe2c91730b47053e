//! Engine options: page and cache sizes, the log sync mode and the checkpoint triggers.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::strategy::Strategy;

/// How a commit reaches the disk (Lealone's log sync service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit writes and fsyncs the log before it returns; it returns durable.
    Instant,
    /// Group commit: a commit waits until a periodic [`crate::engine::Engine::sync_log`] call's
    /// fsync covers it, then returns durable. One fsync covers every commit waiting for it.
    Periodic,
    /// A commit returns at once, not durable; the log reaches the disk when something else
    /// syncs it (a checkpoint, a close, another mode's commit).
    NoSync,
}

/// Planted bugs for proving the harness can fail. They can be switched on only in a build with
/// the `canary` feature (through `Options::canary`); otherwise [`Options::planted`] is false.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Canary {
    /// end_checkpoint skips the data fsyncs before the header write (after the pages and
    /// after the translation).
    SkipDataFsync,
    /// end_checkpoint writes and syncs the header before writing the pages.
    HeaderBeforePages,
    /// The log is trimmed right after begin_checkpoint, before the header is durable.
    TrimLogBeforeHeader,
    /// Writers ignore the pending bit: they modify a pending page without cloning it first.
    IgnorePendingBit,
    /// The allocator hands out blocks that only the checkpointed translation references.
    ReuseCheckpointedBlock,
    /// Page reads skip checksum verification.
    SkipChecksum,
    /// Fuzzy: a page's first change after the redo point logs a delta, not a full-page image,
    /// so a page torn by a crash cannot be repaired.
    FuzzyWithoutFullPageImages,
    /// Fuzzy: the control file is written and synced before the checkpoint record it points at
    /// is durable.
    ControlFileBeforeCheckpointRecord,
    /// Physical log: pages are written without first making their before-images durable.
    PageBeforeImage,
    /// Physical log: recovery rolls the logical log forward first and restores the
    /// before-images after it, over the replayed pages.
    RestoreAfterRollForward,
    /// Recovery's log scan skips record checksums in sealed segments (those with a later
    /// segment after them): they were fsynced whole before the next one was created, so it
    /// assumes no crash can have damaged them, forgetting damage at rest.
    SkipSealedLogChecksum,
    /// The log retries a failed fsync and, when the retry succeeds, counts its records as
    /// durable and goes on acknowledging commits: the "fsyncgate" mistake (the kernel may have
    /// dropped the dirty data the first fsync failed to write) that PostgreSQL's rule forbids.
    RetryLogFsync,
    /// Recovery reports a log record that the end of its file cuts short as corruption: it
    /// assumes a file's size reaches the disk only together with the data written there.
    TruncatedRecordIsCorruption,
    TrimLogBeforeHeaderSync,
    AppendInDurableSector,
    PreferOlderHeader,
}

impl Canary {
    pub const ALL: [Canary; 16] = [
        Canary::SkipDataFsync,
        Canary::HeaderBeforePages,
        Canary::TrimLogBeforeHeader,
        Canary::IgnorePendingBit,
        Canary::ReuseCheckpointedBlock,
        Canary::SkipChecksum,
        Canary::FuzzyWithoutFullPageImages,
        Canary::ControlFileBeforeCheckpointRecord,
        Canary::PageBeforeImage,
        Canary::RestoreAfterRollForward,
        Canary::SkipSealedLogChecksum,
        Canary::RetryLogFsync,
        Canary::TruncatedRecordIsCorruption,
        Canary::TrimLogBeforeHeaderSync,
        Canary::AppendInDurableSector,
        Canary::PreferOlderHeader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canary::SkipDataFsync => "skip-data-fsync",
            Canary::HeaderBeforePages => "header-before-pages",
            Canary::TrimLogBeforeHeader => "trim-log-before-header",
            Canary::IgnorePendingBit => "ignore-pending-bit",
            Canary::ReuseCheckpointedBlock => "reuse-checkpointed-block",
            Canary::SkipChecksum => "skip-checksum",
            Canary::FuzzyWithoutFullPageImages => "fuzzy-without-full-page-images",
            Canary::ControlFileBeforeCheckpointRecord => "control-file-before-checkpoint-record",
            Canary::PageBeforeImage => "page-before-before-image",
            Canary::RestoreAfterRollForward => "restore-after-roll-forward",
            Canary::SkipSealedLogChecksum => "skip-sealed-log-checksum",
            Canary::RetryLogFsync => "retry-log-fsync",
            Canary::TruncatedRecordIsCorruption => "truncated-record-is-corruption",
            Canary::TrimLogBeforeHeaderSync => "trim-log-before-header-sync",
            Canary::AppendInDurableSector => "append-in-durable-sector",
            Canary::PreferOlderHeader => "prefer-older-header",
        }
    }

    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|canary| canary.name() == name)
    }

    /// The strategy whose code the planted bug sits in.
    pub fn strategy(self) -> Strategy {
        match self {
            Canary::FuzzyWithoutFullPageImages | Canary::ControlFileBeforeCheckpointRecord => {
                Strategy::Fuzzy
            }
            Canary::PageBeforeImage | Canary::RestoreAfterRollForward => Strategy::PhysicalLog,
            _ => Strategy::Sharp,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// The checkpoint design (see [`crate::strategy`]). A database must be reopened with the
    /// strategy that created it.
    pub strategy: Strategy,
    /// A B+tree node splits when its encoded size would exceed this.
    pub page_size_bytes: usize,
    /// Pages the cachetable holds before it evicts; a transaction may overshoot it briefly.
    pub cache_pages: usize,
    pub sync_mode: SyncMode,
    /// Checkpoint trigger: time since the last checkpoint (Lealone's period, PostgreSQL's
    /// checkpoint_timeout).
    pub checkpoint_interval: Duration,
    /// Checkpoint trigger: dirty pages in the cachetable (Lealone's dirty-memory threshold).
    pub checkpoint_dirty_pages: usize,
    /// Checkpoint trigger: log bytes written since the last checkpoint (PostgreSQL's
    /// max_wal_size).
    pub checkpoint_log_bytes: u64,
    /// A log segment file is closed and a new one started past this size.
    pub log_segment_bytes: u64,
    /// The disk's atomic write unit: after each log fsync the next log write starts on a
    /// multiple of this, so a torn write never touches a sector holding durable records.
    pub log_sector_bytes: u64,
    /// Fuzzy strategy: the checkpoint spreads its page writes over this fraction of
    /// `checkpoint_interval` (PostgreSQL's checkpoint_completion_target); 0 writes at once.
    pub checkpoint_completion_target: f64,
    /// Physical-log strategy: the physical log's capacity. A checkpoint is due when the
    /// before-images since the last one fill 75% of it, or when they plus the dirty pages
    /// exceed 90% (GBase 8t's physical log triggers).
    pub physical_log_bytes: u64,
    /// Largest key accepted.
    pub key_size_max: usize,
    /// Largest value accepted.
    pub value_size_max: usize,
    #[cfg(feature = "canary")]
    pub canary: Option<Canary>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strategy: Strategy::Sharp,
            page_size_bytes: 4096,
            cache_pages: 256,
            sync_mode: SyncMode::Instant,
            checkpoint_interval: Duration::from_secs(60),
            checkpoint_dirty_pages: 1024,
            checkpoint_log_bytes: 64 << 20,
            log_segment_bytes: 1 << 20,
            log_sector_bytes: 4096,
            checkpoint_completion_target: 0.5,
            physical_log_bytes: 16 << 20,
            key_size_max: 1024,
            value_size_max: 64 << 10,
            #[cfg(feature = "canary")]
            canary: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        let fail = |why: String| Err(Error::InvalidOptions(why));
        if self.page_size_bytes < 256 {
            return fail(format!(
                "page_size_bytes {} is below 256",
                self.page_size_bytes
            ));
        }
        if self.cache_pages < 8 {
            return fail(format!("cache_pages {} is below 8", self.cache_pages));
        }
        if self.log_segment_bytes < 4096 {
            return fail(format!(
                "log_segment_bytes {} is below 4096",
                self.log_segment_bytes
            ));
        }
        if !self.log_sector_bytes.is_power_of_two()
            || self.log_sector_bytes > self.log_segment_bytes
        {
            return fail(format!(
                "log_sector_bytes {} must be a power of two no larger than log_segment_bytes",
                self.log_sector_bytes
            ));
        }
        // An internal node must hold at least three separators so it can split.
        if self.key_size_max == 0 || self.key_size_max > self.page_size_bytes / 4 {
            return fail(format!(
                "key_size_max {} must be between 1 and page_size_bytes / 4 ({})",
                self.key_size_max,
                self.page_size_bytes / 4
            ));
        }
        // A commit record must stay far below the log's record size limit.
        if self.value_size_max > 1 << 20 {
            return fail(format!(
                "value_size_max {} is above 1 MiB",
                self.value_size_max
            ));
        }
        if !(0.0..=1.0).contains(&self.checkpoint_completion_target) {
            return fail(format!(
                "checkpoint_completion_target {} is not in [0, 1]",
                self.checkpoint_completion_target
            ));
        }
        if self.strategy.writes_in_place() {
            // A page written in place lives in a fixed slot. Splitting by bytes keeps every
            // node at rest within a page plus one entry as long as an entry is at most half a
            // page (see tree.rs), and the slot is sized for exactly that.
            if self.entry_bytes_max() > self.page_size_bytes / 2 {
                return fail(format!(
                    "the {} strategy writes pages in place: an entry (key_size_max {} + \
                     value_size_max {} + 12 bytes) must fit in half a page ({} bytes)",
                    self.strategy,
                    self.key_size_max,
                    self.value_size_max,
                    self.page_size_bytes / 2
                ));
            }
        }
        if self.strategy == Strategy::PhysicalLog
            && self.physical_log_bytes < 4 * self.log_segment_bytes
        {
            return fail(format!(
                "physical_log_bytes {} is below four log segments ({})",
                self.physical_log_bytes,
                4 * self.log_segment_bytes
            ));
        }
        Ok(())
    }

    /// The largest encoding one leaf entry (or internal separator) can take in a node.
    pub fn entry_bytes_max(&self) -> usize {
        12 + self.key_size_max + self.value_size_max
    }

    /// The size of a page slot for the in-place strategies.
    pub fn slot_bytes(&self) -> u64 {
        crate::format::page::slot_bytes(self.page_size_bytes, self.entry_bytes_max())
    }

    /// Whether a planted bug is switched on. Always false without the `canary` feature.
    pub(crate) fn planted(&self, canary: Canary) -> bool {
        #[cfg(feature = "canary")]
        return self.canary == Some(canary);
        #[cfg(not(feature = "canary"))]
        {
            let _ = canary;
            false
        }
    }
}
