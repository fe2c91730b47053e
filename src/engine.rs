//! The engine's public face: open, transactions, reads, checkpoints, log sync and close.
//!
//! Concurrency: one async latch (`state`) guards the cachetable and tree. A commit holds it
//! while it loads the pages it needs, appends its redo record and applies its writes, so a
//! commit is never half applied when begin_checkpoint (which takes the same latch) marks
//! pending bits: the latch is the multi-operation lock of TokuDB and the commit critical
//! section of PostgreSQL and GBase 8t. Waiting for the log to become durable happens outside
//! the latch, and so does the checkpoint's page I/O, so writers never wait for it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cachetable::Cachetable;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::record::{self, Record};
use crate::log::Log;
use crate::observer::{CheckpointStep, Observer};
use crate::options::{Options, SyncMode};
use crate::types::{Lsn, Write};
use crate::vfs::Vfs;

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
    pub checkpoint_lsn: Lsn,
    pub header_slot: usize,
    /// Set when the other header slot failed to verify (TokuDB warns and goes on).
    pub header_warning: Option<String>,
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
    pub checkpoint_lsn: Lsn,
    pub checkpoint_time: Duration,
}

pub struct Engine<V: Vfs, C: Clock> {
    pub(crate) vfs: V,
    pub(crate) clock: C,
    pub(crate) options: Options,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) data: V::File,
    pub(crate) log: Log<V>,
    pub(crate) state: async_lock::Mutex<State>,
    /// Held for a whole checkpoint: one checkpoint at a time.
    pub(crate) checkpoint_lock: async_lock::Mutex<()>,
    poison: Mutex<Option<String>>,
    closed: AtomicBool,
    next_txn_id: AtomicU64,
    pub(crate) recovery: RecoveryReport,
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
            state: async_lock::Mutex::new(state),
            checkpoint_lock: async_lock::Mutex::new(()),
            poison: Mutex::new(None),
            closed: AtomicBool::new(false),
            next_txn_id: AtomicU64::new(next_txn_id),
            recovery,
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

    pub(crate) fn step(&self, count: u64, step: CheckpointStep) {
        match step {
            CheckpointStep::PageWritten { page_id, index } => tracing::debug!(
                checkpoint = count,
                step = step.name(),
                page = page_id,
                index,
                "checkpoint step"
            ),
            _ => tracing::debug!(checkpoint = count, step = step.name(), "checkpoint step"),
        }
        self.observer.checkpoint_step(count, step);
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
        let txn_id = self.next_txn_id.fetch_add(1, Ordering::SeqCst);
        let (lsn, end, record) = {
            let mut state = self.state.lock().await;
            self.check_open()?;
            // Load everything first: if a read fails, nothing was logged or applied.
            for write in &writes {
                state.cache.prefetch(&self.data, &write.key).await?;
            }
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
            let Record::Commit { writes, .. } = &record else {
                unreachable!()
            };
            for write in writes {
                state.cache.apply_loaded(&write.key, write.value.as_deref());
            }
            self.observer.commit_logged(lsn, writes);
            if let Err(error) = state.cache.evict_to_capacity(&self.data).await {
                // The pages stay cached and dirty; the commit itself is intact.
                tracing::debug!(%error, "eviction failed");
            }
            (lsn, end, record)
        };
        drop(record);
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
        Ok(CommitInfo { lsn, durable })
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let mut state = self.state.lock().await;
        let value = state.cache.get(&self.data, key).await?;
        let _ = state.cache.evict_to_capacity(&self.data).await;
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
        let _ = state.cache.evict_to_capacity(&self.data).await;
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

    /// Runs a checkpoint if a trigger fired: the interval passed, too many dirty pages, or too
    /// much log since the last one; skipped if nothing was logged since (PostgreSQL's rule).
    pub async fn checkpoint_if_due(&self) -> Result<Option<u64>> {
        self.check_open()?;
        let due = {
            let state = self.state.lock().await;
            let log_bytes = self.log.bytes_since(state.checkpoint_lsn.0);
            // The previous checkpoint's own begin and end records are always there.
            let idle = log_bytes <= 64;
            let elapsed = self.clock.now().saturating_sub(state.checkpoint_time);
            !idle
                && (elapsed >= self.options.checkpoint_interval
                    || state.cache.dirty_pages() >= self.options.checkpoint_dirty_pages
                    || log_bytes >= self.options.checkpoint_log_bytes)
        };
        if due {
            self.checkpoint().await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Clean shutdown: a final checkpoint, then the log is synced and the engine refuses
    /// further work.
    pub async fn close(&self) -> Result<()> {
        self.check_open()?;
        self.checkpoint().await?;
        self.flush_log(true).await?;
        self.closed.store(true, Ordering::SeqCst);
        self.state.lock().await.cache.clear();
        Ok(())
    }

    /// The last completed checkpoint's count.
    pub async fn checkpoint_count(&self) -> u64 {
        self.state.lock().await.checkpoint_count
    }
}
