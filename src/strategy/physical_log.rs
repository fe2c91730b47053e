//! The non-blocking checkpoint with a physical log (GBase 8t, seed 004).
//!
//! Pages are written in place. Before a page is first modified after the checkpoint number
//! advanced, its node (its before-image) is appended to the physical log, and no page reaches
//! the disk before every before-image taken so far is durable. The checkpoint follows the
//! seed's steps: block entry to the critical section and wait for those inside (take the
//! latch); flush the physical-log and logical-log buffers; log the checkpoint record; advance
//! the checkpoint number (a new interval of before-images starts, and the dirty pages are
//! noted); let transactions go on (release the latch). Then, while commits run, flush the noted
//! pages and fsync, and finally record the checkpoint as complete in the reserved pages (two
//! ping-pong slots at the front of the data file) and fsync. Only then are the physical log's
//! older intervals and the redo log before the checkpoint record removed.
//!
//! Recovery reads the reserved pages, restores every page's first before-image from the
//! physical log since the checkpoint's interval began (so the data file holds exactly the
//! checkpoint's state again), then rolls the logical log forward from the checkpoint record,
//! and takes a startup checkpoint.

use std::collections::BTreeSet;

use crate::cachetable::DATA_FILE;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::{Error, Result, Structure};
use crate::format::control::{Control, CONTROL_SLOT_OFFSETS, STRATEGY_PHYSICAL_LOG};
use crate::format::header::SlotRecord;
use crate::format::page::{self, Node};
use crate::format::record::Record;
use crate::log::reader;
use crate::log::{parse_prefixed_segment_name, prefixed_segment_name, Log, PHYSICAL_LOG_PREFIX};
use crate::options::Options;
use crate::recovery::cut_log;
use crate::strategy::steps::physical_log as step;
use crate::types::{Lsn, PageId};
use crate::vfs::{Vfs, VfsFile};

/// Where page slots start in the physical-log strategy's data file: the reserved pages come
/// first.
pub(crate) const PAGES_START: u64 = 4096;

impl<V: Vfs, C: Clock> Engine<V, C> {
    pub(crate) async fn physical_log_checkpoint(&self) -> Result<u64> {
        let (count, checkpoint_lsn, physical_log_start, next_page_id, pages) = {
            let mut state = self.state.lock().await;
            let since = self.clock.now();
            let count = state.checkpoint_count + 1;
            self.step(count, &step::STARTED);
            self.step(count, &step::CRITICAL_SECTION_BLOCKED);
            self.flush_physical_log().await?;
            self.flush_log(true).await?;
            self.step(count, &step::LOG_BUFFERS_FLUSHED);
            let physical_log_start = self.physical_log().next_lsn();
            let redo_lsn = Lsn(self.log.next_lsn());
            let next_page_id = state.cache.next_page_id;
            // Restoring the before-images brings every page back to exactly this.
            let page_lsns = state.cache.page_lsn_map(next_page_id, true);
            let (checkpoint_lsn, _) = self.log.append(&Record::Checkpoint {
                checkpoint_count: count,
                redo_lsn,
                next_page_id,
                physical_log_start,
                page_lsns,
            });
            debug_assert_eq!(checkpoint_lsn, redo_lsn);
            self.flush_log(true).await?;
            self.step(count, &step::CHECKPOINT_RECORD_LOGGED);
            state.cache.advance_checkpoint_number(count);
            let pages = state.cache.dirty_page_ids();
            self.step(count, &step::CHECKPOINT_NUMBER_ADVANCED);
            self.blocked("critical-section", since);
            (
                count,
                checkpoint_lsn,
                physical_log_start,
                next_page_id,
                pages,
            )
        };
        tracing::debug!(count, %checkpoint_lsn, physical_log_start, pages = pages.len(), "critical section released");
        self.step(count, &step::CRITICAL_SECTION_RELEASED);

        self.write_pages_in_place(count, &step::PAGE_WRITTEN, pages, Default::default())
            .await?;
        self.sync_data().await?;
        self.step(count, &step::BUFFER_POOL_FLUSHED);

        let reserved = Control {
            checkpoint_count: count,
            checkpoint_lsn,
            redo_lsn: checkpoint_lsn,
            next_page_id,
            physical_log_start,
            strategy: STRATEGY_PHYSICAL_LOG,
            page_size_bytes: self.options.page_size_bytes as u32,
        };
        // What a failed reserved-page write left is unknown: it poisons, like a header write.
        if let Err(error) = self
            .write_data(CONTROL_SLOT_OFFSETS[reserved.slot()], &reserved.encode())
            .await
        {
            self.poison(&error);
            return Err(error);
        }
        self.step(count, &step::RESERVED_PAGE_WRITTEN);
        self.sync_data().await?;
        self.step(count, &step::RESERVED_PAGE_SYNCED);

        {
            let mut state = self.state.lock().await;
            state.checkpoint_count = count;
            state.checkpoint_lsn = checkpoint_lsn;
            state.physical_log_start = physical_log_start;
            state.checkpoint_time = self.clock.now();
        }
        let removed = self
            .physical_log()
            .trim(&self.vfs, physical_log_start)
            .await?;
        tracing::debug!(count, removed = removed.len(), "physical log trimmed");
        self.step(count, &step::PHYSICAL_LOG_TRIMMED);
        let removed = self.log.trim(&self.vfs, checkpoint_lsn.0).await?;
        tracing::debug!(count, removed = removed.len(), "log trimmed");
        self.step(count, &step::LOG_TRIMMED);
        self.step(count, &step::FINISHED);
        Ok(count)
    }
}

/// Loading a physical-log checkpoint, first half: reads the physical log from where the
/// checkpoint's interval began, cuts its torn tail, and returns it positioned to append, with
/// each page's first before-image (page, page LSN, node) in log order and the bytes cut.
pub(crate) async fn read_physical_log<V: Vfs>(
    vfs: &V,
    control: &Control,
    options: &Options,
) -> Result<(Log<V>, Vec<(PageId, u64, Node)>, u64)> {
    let start = control.physical_log_start;
    let names = vfs
        .list()
        .await
        .map_err(|source| Error::io("list", "physical log directory", source))?;
    let starts: Vec<u64> = names
        .iter()
        .filter_map(|name| parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, name))
        .collect();
    if !starts.iter().any(|&segment| segment <= start) {
        // No before-image was ever logged in this interval (its first segment is created by
        // the first flush); any later segment would have lost its predecessor.
        if let Some(&later) = starts.iter().find(|&&segment| segment > start) {
            return Err(Error::corruption(
                prefixed_segment_name(PHYSICAL_LOG_PREFIX, later),
                0,
                Structure::PhysicalLogRecord,
                format!(
                    "no physical log segment holds position {start}, but segment {later} exists"
                ),
            ));
        }
        let log = Log::named(
            PHYSICAL_LOG_PREFIX,
            start,
            start,
            None,
            BTreeSet::new(),
            options.log_segment_bytes,
            options.log_sector_bytes,
        );
        return Ok((log, Vec::new(), 0));
    }
    let scan = reader::scan_log(
        vfs,
        PHYSICAL_LOG_PREFIX,
        start,
        reader::ScanFlaws::planted(options),
    )
    .await?;
    let mut seen = BTreeSet::new();
    let mut images = Vec::new();
    for (position, record) in &scan.records {
        let Record::BeforeImage {
            page_id,
            page_lsn,
            node,
            ..
        } = record
        else {
            continue;
        };
        if !seen.insert(*page_id) {
            continue;
        }
        let node = page::decode_node(node).map_err(|detail| {
            Error::corruption(
                prefixed_segment_name(PHYSICAL_LOG_PREFIX, scan.end_segment),
                position.0,
                Structure::PhysicalLogRecord,
                format!("before-image of page {page_id}: {detail}"),
            )
        })?;
        images.push((*page_id, *page_lsn, node));
    }
    let (log, discarded) = cut_log(vfs, PHYSICAL_LOG_PREFIX, &scan, options).await?;
    Ok((log, images, discarded))
}

/// Loading a physical-log checkpoint, second half: writes each before-image over its page's
/// slot and fsyncs, so the data file holds the checkpoint's state. Returns how many.
pub(crate) async fn restore_slots<F: VfsFile>(
    data: &F,
    options: &Options,
    images: &[(PageId, u64, Node)],
) -> Result<u64> {
    let slot_bytes = options.slot_bytes();
    for (page_id, page_lsn, node) in images {
        let bytes = page::encode_slot(*page_id, *page_lsn, node, slot_bytes);
        data.write_at(PAGES_START + page_id * slot_bytes, &bytes)
            .await
            .map_err(|source| Error::io("write", DATA_FILE, source))?;
    }
    if !images.is_empty() {
        data.sync()
            .await
            .map_err(|source| Error::io("sync", DATA_FILE, source))?;
    }
    Ok(images.len() as u64)
}

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// The `restore-after-roll-forward` planted bug: the before-images are restored only after
    /// replay, over the data file, and the replayed pages in memory are dropped.
    pub(crate) async fn restore_before_images(&self, images: &[(PageId, u64, Node)]) -> Result<()> {
        let mut state = self.state.lock().await;
        state.cache.clear();
        restore_slots(&self.data, &self.options, images).await?;
        Ok(())
    }
}
