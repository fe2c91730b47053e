//! What every strategy's checkpoint shares: one checkpoint at a time, a failed one abandoned,
//! and writing pages in place paced over a target duration. Each design's steps are in
//! `strategy/` (sharp, fuzzy, physical log).
//!
//! Failure rules, common to all: a failed data-file or log sync poisons the engine
//! (PostgreSQL's rule after "fsyncgate": never retry, recover from the log); a failed page
//! write abandons the checkpoint (the previous one stays the latest) without poisoning; once
//! the anchor write (header, control file slot, reserved page) is issued the checkpoint may be
//! durable, so a failure from there on poisons.

use std::time::Duration;

use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::Result;
use crate::strategy::steps::Step;
use crate::strategy::Strategy;
use crate::types::PageId;
use crate::vfs::Vfs;

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Takes a checkpoint now; returns its count.
    pub async fn checkpoint(&self) -> Result<u64> {
        self.check_open()?;
        let _checkpoint = self.checkpoint_lock.lock().await;
        self.check_open()?;
        let result = match self.options.strategy {
            Strategy::Sharp => self.sharp_checkpoint().await,
            Strategy::Fuzzy => self.fuzzy_checkpoint().await,
            Strategy::PhysicalLog => self.physical_log_checkpoint().await,
        };
        if let Err(error) = &result {
            tracing::warn!(%error, "checkpoint failed");
            self.state.lock().await.cache.abandon_checkpoint();
        }
        result
    }

    /// Writes the pages that were dirty when the checkpoint began, in place and one at a time,
    /// each encoded under the latch right before its write so commits run between the writes.
    /// A page no longer dirty (eviction wrote it) is skipped. With a nonzero `spread` the
    /// writes are paced so that the k-th of n is not done before `spread * k / n` has passed
    /// (PostgreSQL's checkpoint_completion_target).
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
                self.page_step(count, step, page_id, written);
                written += 1;
            }
            let due = spread * done / total;
            let elapsed = self.clock.now().saturating_sub(started);
            if elapsed < due {
                self.clock.sleep(due - elapsed).await;
            }
        }
        Ok(())
    }
}
