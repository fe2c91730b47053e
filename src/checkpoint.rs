//! What every strategy's checkpoint shares: one checkpoint at a time, a failed one abandoned,
//! and writing pages in place paced over a target duration. Each design's steps are in
//! `strategy/` (sharp, fuzzy, physical log).
//!
//! Failure rules, common to all: a failed data-file or log sync poisons the engine
//! (PostgreSQL's rule after "fsyncgate": never retry, recover from the log); a failed page
//! write abandons the checkpoint (the previous one stays the latest) without poisoning; once
//! the anchor write (header, control file slot, reserved page) is issued the checkpoint may be
//! durable, so a failure from there on poisons.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::Result;
use crate::strategy::steps::Step;
use crate::strategy::Strategy;
use crate::trigger::{CheckpointMeasures, Trigger};
use crate::types::PageId;
use crate::vfs::Vfs;

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Takes a checkpoint now, whether or not anything changed; returns its count once it is
    /// durable. The same as [`Engine::request_checkpoint`].
    pub async fn checkpoint(&self) -> Result<u64> {
        self.request_checkpoint().await
    }

    /// Takes a checkpoint for `trigger`, one at a time: returns its count once it is durable,
    /// or None when the trigger allows skipping it and no commit was logged since the last
    /// one (the observer hears of it as skipped). A writer waiting for log space finds it
    /// freed by the checkpoint it waited behind and returns None too.
    pub async fn checkpoint_for(&self, trigger: Trigger) -> Result<Option<u64>> {
        self.check_open()?;
        let _checkpoint = self.checkpoint_lock.lock().await;
        self.check_open()?;
        if trigger == Trigger::LogSpace
            && self.options.log_capacity_bytes.is_some()
            && !self.log_space_low().await
        {
            return Ok(None);
        }
        if trigger.skips_when_idle() && self.idle().await {
            tracing::debug!(%trigger, "checkpoint skipped: nothing logged since the last");
            self.observer.checkpoint_skipped(trigger);
            return Ok(None);
        }
        let started = self.clock.now();
        *self.lock_measures() = CheckpointMeasures::default();
        self.checkpoints_begun.fetch_add(1, Ordering::SeqCst);
        self.checkpoint_running.store(true, Ordering::SeqCst);
        let result = match self.options.strategy {
            Strategy::Sharp => self.sharp_checkpoint().await,
            Strategy::Fuzzy => self.fuzzy_checkpoint().await,
            Strategy::PhysicalLog => self.physical_log_checkpoint().await,
        };
        self.checkpoint_running.store(false, Ordering::SeqCst);
        if trigger == Trigger::LogSpace {
            self.checkpoint_hurry.store(false, Ordering::SeqCst);
        }
        match &result {
            Ok(count) => {
                let mut measures = std::mem::take(&mut *self.lock_measures());
                measures.duration = self.clock.now().saturating_sub(started);
                tracing::debug!(count, %trigger, ?measures, "checkpoint measured");
                self.observer
                    .checkpoint_finished(*count, trigger, &measures);
            }
            Err(error) => {
                tracing::warn!(%error, "checkpoint failed");
                self.state.lock().await.cache.abandon_checkpoint();
            }
        }
        result.map(Some)
    }

    /// No commit was logged since the last checkpoint's replay start.
    async fn idle(&self) -> bool {
        let replay_start = self.state.lock().await.checkpoint_lsn.0;
        self.last_commit_end.load(Ordering::SeqCst) <= replay_start
    }

    fn lock_measures(&self) -> std::sync::MutexGuard<'_, CheckpointMeasures> {
        self.measures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds the time since `since` to the blocking phase `phase`: the checkpoint held the
    /// latch commits need from `since` until now.
    pub(crate) fn blocked(&self, phase: &'static str, since: Duration) {
        let held = self.clock.now().saturating_sub(since);
        *self.lock_measures().blocking.entry(phase).or_default() += held;
    }

    /// Counts a page the checkpoint wrote.
    pub(crate) fn page_measured(&self, bytes: usize) {
        let mut measures = self.lock_measures();
        measures.pages_written += 1;
        measures.page_bytes_written += bytes as u64;
    }

    /// Writes the pages that were dirty when the checkpoint began, in place and one at a time,
    /// each encoded under the latch right before its write so commits run between the writes.
    /// A page no longer dirty (eviction wrote it) is skipped. With a nonzero `spread` the
    /// writes are paced so that the k-th of n is not done before `spread * k / n` has passed
    /// (PostgreSQL's checkpoint_completion_target), unless a writer waits for log space.
    pub(crate) async fn write_pages_in_place(
        &self,
        count: u64,
        step: &'static Step,
        pages: Vec<PageId>,
        spread: Duration,
    ) -> Result<()> {
        let started = self.clock.now();
        let total = pages.len() as u32;
        let mut written = 0;
        for (done, page_id) in (1..).zip(pages) {
            let prepared = self.state.lock().await.cache.prepare_slot_write(page_id);
            if let Some(write) = prepared {
                let result = self.write_page_in_place(&write).await;
                self.state
                    .lock()
                    .await
                    .cache
                    .slot_written(&write, result.is_ok());
                result?;
                self.page_measured(write.bytes.len());
                self.page_step(count, step, page_id, written);
                written += 1;
            }
            let due = spread * done / total;
            let elapsed = self.clock.now().saturating_sub(started);
            if elapsed < due && !self.checkpoint_hurry.load(Ordering::SeqCst) {
                self.clock.sleep(due - elapsed).await;
            }
        }
        Ok(())
    }
}
