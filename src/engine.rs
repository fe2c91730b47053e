//! The engine's public face: open, transactions, reads, checkpoints, log sync and close.
//!
//! Concurrency: one async latch (`state`) guards the cachetable and tree. A commit holds it
//! while it loads the pages it needs, applies its writes and appends its redo record, so a
//! commit is never half applied when a checkpoint's begin (which takes the same latch) marks
//! pending bits, takes its redo point or advances the checkpoint number: the latch is the
//! multi-operation lock of TokuDB, PostgreSQL's `delayChkpt` commit critical section and GBase
//! 8t's critical section. Waiting for the log to become durable happens outside the latch, and
//! so does the checkpoint's page I/O, so writers never wait for it.
//!
//! What a commit logs depends on the strategy ([`crate::strategy`]): a logical commit record
//! (sharp, physical log; the physical log also gets the before-images of pages modified for
//! the first time since the last checkpoint), or per-page redo (fuzzy).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cachetable::{Cachetable, SlotWrite, DATA_FILE};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::page;
use crate::format::record::{self, PageRedo, Record};
use crate::log::Log;
use crate::observer::{CheckpointStep, CommitMeasures, Observer};
use crate::options::{Canary, Options, SyncMode};
use crate::strategy::Strategy;
use crate::trigger::{CheckpointMeasures, Trigger};
use crate::types::{Lsn, PageId, Write};
use crate::vfs::{DirectoryLock, Vfs, VfsFile};

/// Log bytes a no-sync commit lets pile up in memory before writing them out (unsynced).
const NO_SYNC_BUFFER_BYTES: usize = 64 << 10;

/// What a commit returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub lsn: Lsn,
    /// The commit record was on disk (fsynced) when the commit returned.
    pub durable: bool,
}

/// What `open` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held no database; a new one was created.
    pub created: bool,
    pub checkpoint_count: u64,
    /// Where replay started: the begin_checkpoint record (sharp), the redo point (fuzzy) or
    /// the checkpoint record (physical log).
    pub checkpoint_lsn: Lsn,
    /// The anchor slot the checkpoint came from (header slot, control file or reserved page).
    pub header_slot: usize,
    /// Set when the other anchor slot failed to verify (TokuDB warns and goes on).
    pub header_warning: Option<String>,
    /// Before-images restored from the physical log (physical-log strategy).
    pub restored_pages: u64,
    pub replayed_commits: u64,
    pub last_commit_lsn: Option<Lsn>,
    /// Where the valid log ends and appending resumes.
    pub log_end: Lsn,
    /// Why reading the log stopped there.
    pub log_stop_reason: String,
    /// Bytes of torn or garbage tail, and of later segments, cut off.
    pub discarded_log_bytes: u64,
}

/// Engine state under the latch.
pub(crate) struct State {
    pub cache: Cachetable,
    /// The last completed checkpoint.
    pub checkpoint_count: u64,
    /// Where its replay starts; the log before it may be trimmed.
    pub checkpoint_lsn: Lsn,
    pub checkpoint_time: Duration,
    /// Physical-log strategy: where the last completed checkpoint's before-images start.
    pub physical_log_start: u64,
}

pub struct Engine<V: Vfs, C: Clock> {
    pub(crate) vfs: V,
    pub(crate) clock: C,
    pub(crate) options: Options,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) data: V::File,
    pub(crate) log: Log<V>,
    /// Fuzzy strategy: the control file.
    pub(crate) control: Option<V::File>,
    /// Physical-log strategy: the physical log of before-images.
    pub(crate) physical_log: Option<Log<V>>,
    pub(crate) state: async_lock::Mutex<State>,
    /// Held for a whole checkpoint: one checkpoint at a time.
    pub(crate) checkpoint_lock: async_lock::Mutex<()>,
    poison: Mutex<Option<String>>,
    closed: AtomicBool,
    next_txn_id: AtomicU64,
    /// One past the last logged commit record: nothing was logged since the last checkpoint
    /// when this is at or below its replay start. Starts at the log end found at open, so a
    /// recovered log counts as changed until a checkpoint covers it.
    pub(crate) last_commit_end: AtomicU64,
    /// Checkpoints begun, and whether one is running: a commit that saw either change ran
    /// during a checkpoint.
    pub(crate) checkpoints_begun: AtomicU64,
    pub(crate) checkpoint_running: AtomicBool,
    /// A writer waits for log space: the running checkpoint stops pacing its page writes
    /// (PostgreSQL's `CHECKPOINT_IMMEDIATE`).
    pub(crate) checkpoint_hurry: AtomicBool,
    /// What the running checkpoint has measured so far.
    pub(crate) measures: Mutex<CheckpointMeasures>,
    pub(crate) recovery: RecoveryReport,
    /// Keeps other engines out of the directory until close, or until the engine is dropped.
    pub(crate) directory_lock: Mutex<Option<DirectoryLock>>,
}

/// A transaction: writes buffered until commit, then applied and logged atomically. Reads see
/// the transaction's own writes first.
pub struct Transaction<'a, V: Vfs, C: Clock> {
    engine: &'a Engine<V, C>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<V: Vfs, C: Clock> Transaction<'_, V, C> {
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Some(value.into()));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), None);
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.engine.get(key).await,
        }
    }

    pub async fn commit(self) -> Result<CommitInfo> {
        let writes = self
            .writes
            .into_iter()
            .map(|(key, value)| Write { key, value })
            .collect();
        self.engine.commit(writes).await
    }
}

impl<V: Vfs, C: Clock> Engine<V, C> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
        data: V::File,
        log: Log<V>,
        control: Option<V::File>,
        physical_log: Option<Log<V>>,
        state: State,
        recovery: RecoveryReport,
    ) -> Self {
        let next_txn_id = log.next_lsn();
        let mut log = log;
        log.retry_failed_sync = options.planted(crate::options::Canary::RetryLogFsync);
        Self {
            vfs,
            clock,
            options,
            observer,
            data,
            log,
            control,
            physical_log,
            state: async_lock::Mutex::new(state),
            checkpoint_lock: async_lock::Mutex::new(()),
            poison: Mutex::new(None),
            closed: AtomicBool::new(false),
            next_txn_id: AtomicU64::new(next_txn_id),
            last_commit_end: AtomicU64::new(next_txn_id),
            checkpoints_begun: AtomicU64::new(0),
            checkpoint_running: AtomicBool::new(false),
            checkpoint_hurry: AtomicBool::new(false),
            measures: Mutex::new(CheckpointMeasures::default()),
            recovery,
            directory_lock: Mutex::new(None),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn begin(&self) -> Transaction<'_, V, C> {
        Transaction {
            engine: self,
            writes: BTreeMap::new(),
        }
    }

    /// Why the engine is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.poison
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn poison_error(&self) -> Option<Error> {
        self.poisoned().map(|cause| Error::Poisoned { cause })
    }

    /// Marks the engine unusable after a failed sync (or a lost log buffer) and wakes every
    /// commit waiting for durability so it can fail too.
    pub(crate) fn poison(&self, cause: &Error) {
        {
            let mut poison = self
                .poison
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if poison.is_none() {
                tracing::error!(%cause, "engine poisoned");
                *poison = Some(cause.to_string());
            }
        }
        self.log.wake_waiters();
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if let Some(error) = self.poison_error() {
            return Err(error);
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Writes out the log buffer and, with `sync`, fsyncs it. Any failure poisons: the buffered
    /// records are gone and the engine must recover from what the log holds.
    pub(crate) async fn flush_log(&self, sync: bool) -> Result<()> {
        let result = self.log.flush(&self.vfs, sync).await;
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }

    /// Reports a checkpoint step to the log and the observer.
    pub(crate) fn step(&self, count: u64, step: &'static crate::strategy::steps::Step) {
        tracing::debug!(checkpoint = count, step = step.name, "checkpoint step");
        self.observer
            .checkpoint_step(count, CheckpointStep::new(step));
    }

    /// Reports a checkpoint's `index`-th page write.
    pub(crate) fn page_step(
        &self,
        count: u64,
        step: &'static crate::strategy::steps::Step,
        page_id: PageId,
        index: usize,
    ) {
        tracing::debug!(
            checkpoint = count,
            step = step.name,
            page = page_id,
            index,
            "checkpoint step"
        );
        self.observer
            .checkpoint_step(count, CheckpointStep::page(step, page_id, index as u32));
    }

    pub(crate) fn canary(&self, canary: Canary) -> bool {
        self.options.planted(canary)
    }

    /// The physical log; only the physical-log strategy has one.
    pub(crate) fn physical_log(&self) -> &Log<V> {
        self.physical_log
            .as_ref()
            .expect("only the physical-log strategy has a physical log")
    }

    /// Writes out the physical log's buffer and fsyncs it; a failure poisons like the redo
    /// log's.
    pub(crate) async fn flush_physical_log(&self) -> Result<()> {
        let result = self.physical_log().flush(&self.vfs, true).await;
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }

    pub(crate) async fn write_data(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.data
            .write_at(offset, bytes)
            .await
            .map_err(|source| Error::io("write", DATA_FILE, source))
    }

    /// Fsyncs the data file; a failure poisons (PostgreSQL's rule: never retry a failed
    /// fsync, recover from the log).
    pub(crate) async fn sync_data(&self) -> Result<()> {
        let result = self
            .data
            .sync()
            .await
            .map_err(|source| Error::io("sync", DATA_FILE, source));
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }

    /// What must be durable before a page is written in place: the redo log through the
    /// page's LSN (fuzzy: the write-ahead rule), or every before-image taken so far (the
    /// physical log: a page may reach the disk only once the image that undoes it has).
    pub(crate) async fn before_page_write(&self, page_lsn: u64) -> Result<()> {
        match self.options.strategy {
            Strategy::Sharp => Ok(()),
            Strategy::Fuzzy => {
                if self.log.durable_lsn() < page_lsn {
                    self.flush_log(true).await?;
                }
                Ok(())
            }
            Strategy::PhysicalLog => {
                if self.canary(Canary::PageBeforeImage) {
                    return Ok(());
                }
                self.flush_physical_log().await
            }
        }
    }

    /// Writes a page prepared with `prepare_slot_write` in place, after what must precede it.
    pub(crate) async fn write_page_in_place(&self, write: &SlotWrite) -> Result<()> {
        self.before_page_write(write.lsn).await?;
        self.write_data(write.offset, &write.bytes).await
    }

    /// Evicts least recently used pages until the cache is within capacity, writing dirty ones
    /// first where the strategy puts them. A failed write leaves the page cached and dirty
    /// (the data is safe in memory and in the log) and stops eviction.
    pub(crate) async fn evict(&self, state: &mut State) -> Result<()> {
        // Each pass removes one page or returns, so it runs at most once per cached page.
        while let Some(victim) = state.cache.eviction_victim() {
            if state.cache.is_dirty(victim) {
                match self.options.strategy {
                    Strategy::Sharp => state.cache.write_evicted_block(&self.data, victim).await?,
                    Strategy::Fuzzy | Strategy::PhysicalLog => {
                        let write = state
                            .cache
                            .prepare_slot_write(victim)
                            .expect("a dirty victim is not being written");
                        let result = self.write_page_in_place(&write).await;
                        state.cache.slot_written(&write, result.is_ok());
                        result?;
                    }
                }
            }
            state.cache.remove(victim);
        }
        Ok(())
    }

    fn check_sizes(&self, writes: &[Write]) -> Result<()> {
        for write in writes {
            if write.key.len() > self.options.key_size_max || write.key.is_empty() {
                return Err(Error::TooLarge {
                    what: "key",
                    len: write.key.len(),
                    limit: self.options.key_size_max,
                });
            }
            if let Some(value) = &write.value {
                if value.len() > self.options.value_size_max {
                    return Err(Error::TooLarge {
                        what: "value",
                        len: value.len(),
                        limit: self.options.value_size_max,
                    });
                }
            }
        }
        Ok(())
    }

    /// Commits `writes` atomically: all or none are applied and logged. Keys must be unique
    /// within one commit (a [`Transaction`] guarantees it); a later write to the same key wins.
    /// An empty commit logs nothing and returns the current log position, durable (it has
    /// nothing to lose); its LSN is not a record's.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<CommitInfo> {
        self.check_open()?;
        self.check_sizes(&writes)?;
        if writes.is_empty() {
            return Ok(CommitInfo {
                lsn: Lsn(self.log.next_lsn()),
                durable: true,
            });
        }
        let started = self.clock.now();
        let begun = self.checkpoints_begun.load(Ordering::SeqCst);
        let running = self.checkpoint_running.load(Ordering::SeqCst);
        self.wait_for_log_space().await?;
        let txn_id = self.next_txn_id.fetch_add(1, Ordering::SeqCst);
        let bytes: u64;
        let (lsn, end) = {
            let mut state = self.state.lock().await;
            self.check_open()?;
            // Load everything first: if a read fails, nothing was logged or applied.
            for write in &writes {
                state.cache.prefetch(&self.data, &write.key).await?;
            }
            let (lsn, end, writes) = match self.options.strategy {
                Strategy::Fuzzy => {
                    let (lsn, end) = self.log_page_commit(&mut state, txn_id, &writes)?;
                    (lsn, end, writes)
                }
                Strategy::Sharp | Strategy::PhysicalLog => {
                    self.log_logical_commit(&mut state, txn_id, writes)?
                }
            };
            self.last_commit_end.fetch_max(end, Ordering::SeqCst);
            self.observer.commit_logged(lsn, Lsn(end), &writes);
            bytes = writes
                .iter()
                .map(|write| (write.key.len() + write.value.as_ref().map_or(0, Vec::len)) as u64)
                .sum();
            if let Err(error) = self.evict(&mut state).await {
                // The pages stay cached and dirty; the commit itself is intact.
                tracing::debug!(%error, "eviction failed");
            }
            (lsn, end)
        };
        tracing::trace!(%lsn, end, "commit applied");
        let durable = match self.options.sync_mode {
            SyncMode::Instant => {
                self.flush_log(true).await?;
                true
            }
            SyncMode::Periodic => {
                self.log.wait_durable(end, || self.poison_error()).await?;
                true
            }
            SyncMode::NoSync => {
                if self.log.buffered_bytes() >= NO_SYNC_BUFFER_BYTES {
                    self.flush_log(false).await?;
                }
                self.log.durable_lsn() >= end
            }
        };
        let during_checkpoint = running
            || self.checkpoint_running.load(Ordering::SeqCst)
            || self.checkpoints_begun.load(Ordering::SeqCst) != begun;
        self.observer.commit_finished(&CommitMeasures {
            latency: self.clock.now().saturating_sub(started),
            bytes,
            during_checkpoint,
        });
        Ok(CommitInfo { lsn, durable })
    }

    /// GBase 8t's log space trigger: when the log since the last checkpoint fills 90% of
    /// `log_capacity_bytes`, the writer waits for a checkpoint (taking it, or waiting for the
    /// one running) before it logs, instead of failing.
    async fn wait_for_log_space(&self) -> Result<()> {
        if self.options.log_capacity_bytes.is_none() || !self.log_space_low().await {
            return Ok(());
        }
        self.checkpoint_hurry.store(true, Ordering::SeqCst);
        self.checkpoint_for(Trigger::LogSpace).await.map(|_| ())
    }

    /// Whether the log since the last checkpoint fills 90% of its capacity.
    pub(crate) async fn log_space_low(&self) -> bool {
        let Some(capacity) = self.options.log_capacity_bytes else {
            return false;
        };
        let replay_start = self.state.lock().await.checkpoint_lsn.0;
        self.log.bytes_since(replay_start).saturating_mul(10) >= capacity.saturating_mul(9)
    }

    /// Applies a commit's writes and logs them as one logical record (sharp, physical log).
    /// The physical-log strategy also appends the before-images the writes took to the
    /// physical log's buffer; they reach the disk before any page they undo does.
    fn log_logical_commit(
        &self,
        state: &mut State,
        txn_id: u64,
        writes: Vec<Write>,
    ) -> Result<(Lsn, u64, Vec<Write>)> {
        let record = Record::Commit { txn_id, writes };
        let len = record::encoded_len(&record);
        if len > record::RECORD_BYTES_MAX {
            return Err(Error::TooLarge {
                what: "commit record",
                len,
                limit: record::RECORD_BYTES_MAX,
            });
        }
        let (lsn, end) = self.log.append(&record);
        let Record::Commit { writes, .. } = record else {
            unreachable!("built as a commit above")
        };
        for write in &writes {
            state.cache.apply_loaded(&write.key, write.value.as_deref());
        }
        self.log_before_images(state, end);
        Ok((lsn, end, writes))
    }

    /// Physical log: appends the before-images the last changes took, and stamps the pages
    /// they changed with `end`.
    pub(crate) fn log_before_images(&self, state: &mut State, end: u64) {
        let Some(physical_log) = &self.physical_log else {
            return;
        };
        let (images, touched) = state.cache.take_before_images();
        let checkpoint_count = state.cache.before_image_interval();
        for (page_id, page_lsn, node) in images {
            physical_log.append(&Record::BeforeImage {
                checkpoint_count,
                page_id,
                page_lsn,
                node: page::encode_node(&node),
            });
        }
        state.cache.set_lsn(touched, end);
    }

    /// Applies a commit's writes and logs them as per-page redo (fuzzy): a full-page image for
    /// a page changed for the first time since the redo point, split or new, else the leaf
    /// deltas. The record is one frame, so replay applies all of a commit or none of it.
    fn log_page_commit(
        &self,
        state: &mut State,
        txn_id: u64,
        writes: &[Write],
    ) -> Result<(Lsn, u64)> {
        // A commit can image at most every page on each write's path plus the splits above
        // it; refuse one whose record could outgrow the log's frame before changing anything.
        let height = state.cache.height(&writes[0].key);
        let images = writes.len() * (height + 2);
        let bound = images * (self.options.slot_bytes() as usize + 16)
            + writes
                .iter()
                .map(|write| 32 + write.key.len() + write.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        if bound > record::RECORD_BYTES_MAX {
            return Err(Error::TooLarge {
                what: "page commit record",
                len: bound,
                limit: record::RECORD_BYTES_MAX,
            });
        }
        for write in writes {
            state.cache.apply_loaded(&write.key, write.value.as_deref());
        }
        let redo_point = state.cache.redo_point();
        let (touched, deltas) = state.cache.take_journal();
        let skip_images = self.canary(Canary::FuzzyWithoutFullPageImages);
        let mut redo = Vec::new();
        let mut imaged = Vec::new();
        for (&page_id, &structural) in &touched {
            let first_change = state.cache.page_lsn(page_id) <= redo_point;
            if structural || (first_change && !skip_images) {
                redo.push(PageRedo::Image {
                    page_id,
                    node: page::encode_node(state.cache.node(page_id)),
                });
                imaged.push(page_id);
            }
        }
        for (page_id, key, value) in deltas {
            if imaged.contains(&page_id) {
                continue;
            }
            redo.push(match value {
                Some(value) => PageRedo::Put {
                    page_id,
                    key,
                    value,
                },
                None => PageRedo::Delete { page_id, key },
            });
        }
        let record = Record::PageCommit {
            txn_id,
            next_page_id: state.cache.next_page_id,
            redo,
        };
        let (lsn, end) = self.log.append(&record);
        state.cache.set_lsn(touched.into_keys(), end);
        Ok((lsn, end))
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let mut state = self.state.lock().await;
        let value = state.cache.get(&self.data, key).await?;
        let _ = self.evict(&mut state).await;
        Ok(value)
    }

    /// Entries with keys in `[start, end)` in key order, at most `limit`.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check_open()?;
        let mut state = self.state.lock().await;
        let entries = state.cache.scan(&self.data, start, end, limit).await?;
        let _ = self.evict(&mut state).await;
        Ok(entries)
    }

    /// Every entry, in key order.
    pub async fn scan_all(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan(&[], Bound::Unbounded, usize::MAX).await
    }

    /// Makes every commit so far durable: the group-commit log sync. In periodic mode the
    /// embedder calls this every `log_sync_interval`; each call's one fsync covers every
    /// commit waiting for it.
    pub async fn sync_log(&self) -> Result<()> {
        self.check_open()?;
        self.flush_log(true).await
    }

    /// Log records at or below this LSN are durable.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.log.durable_lsn())
    }

    /// Runs a checkpoint if a trigger fired (see [`crate::trigger`]): the physical log or the
    /// redo log nearly full (log space), too much log since the last one (log volume), too many
    /// dirty bytes, or the interval passed; in that order when several fired. Returns the
    /// checkpoint's count, or None when none was due or it was skipped because nothing was
    /// logged since the last one.
    pub async fn checkpoint_if_due(&self) -> Result<Option<u64>> {
        self.check_open()?;
        let due = {
            let state = self.state.lock().await;
            let log_bytes = self.log.bytes_since(state.checkpoint_lsn.0);
            let elapsed = self.clock.now().saturating_sub(state.checkpoint_time);
            let dirty_bytes =
                state.cache.dirty_pages() as u64 * self.options.page_size_bytes as u64;
            let physical_log_full = self.physical_log.as_ref().is_some_and(|physical_log| {
                let capacity = self.options.physical_log_bytes;
                let images = physical_log.bytes_since(state.physical_log_start);
                let dirty = state.cache.dirty_pages() as u64 * self.options.slot_bytes();
                images * 4 >= capacity * 3 || (images + dirty) * 10 >= capacity * 9
            });
            let log_full = self
                .options
                .log_capacity_bytes
                .is_some_and(|capacity| log_bytes.saturating_mul(10) >= capacity.saturating_mul(9));
            if physical_log_full || log_full {
                Some(Trigger::LogSpace)
            } else if log_bytes >= self.options.checkpoint_log_bytes {
                Some(Trigger::LogVolume)
            } else if dirty_bytes > self.options.dirty_bytes_limit {
                Some(Trigger::DirtyBytes)
            } else if elapsed >= self.options.checkpoint_interval {
                Some(Trigger::Interval)
            } else {
                None
            }
        };
        match due {
            Some(trigger) => self.checkpoint_for(trigger).await,
            None => Ok(None),
        }
    }

    /// A forced checkpoint (Lealone's `executeCheckpointAsync`): resolves with its count once
    /// it is durable (its anchor written and synced), whether or not anything changed. A
    /// checkpoint already running is waited for first; this one follows it.
    pub async fn request_checkpoint(&self) -> Result<u64> {
        let count = self.checkpoint_for(Trigger::Forced).await?;
        Ok(count.expect("a forced checkpoint is never skipped"))
    }

    /// Clean shutdown: a final checkpoint (skipped when nothing was logged since the last one),
    /// so the next open replays no commit; then the log is synced, the engine refuses further
    /// work and the directory lock is released.
    pub async fn close(&self) -> Result<()> {
        self.check_open()?;
        if !self.canary(Canary::CloseWithoutFinalCheckpoint) {
            self.checkpoint_for(Trigger::Shutdown).await?;
        }
        self.flush_log(true).await?;
        if self.physical_log.is_some() {
            self.flush_physical_log().await?;
        }
        self.closed.store(true, Ordering::SeqCst);
        self.state.lock().await.cache.clear();
        // A closed engine touches nothing more, so the next one may open the directory.
        self.directory_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        Ok(())
    }

    /// The last completed checkpoint's count.
    pub async fn checkpoint_count(&self) -> u64 {
        self.state.lock().await.checkpoint_count
    }
}
