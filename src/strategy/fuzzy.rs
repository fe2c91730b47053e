//! The fuzzy checkpoint (PostgreSQL, seed 002): pages in place, a redo point, a checkpoint
//! record and a control file.
//!
//! Checkpoint: under the latch (so every commit is wholly before or after it: `delayChkpt`)
//! take the redo point, the next LSN, and note the dirty pages; from then on a page's first
//! change logs a full-page image. Release the latch and write those pages in place, spread over
//! `checkpoint_completion_target` of the checkpoint interval, each only once the log is durable
//! through its page LSN (the write-ahead rule). Fsync the data file, log the checkpoint record
//! (redo point, page id high-water mark) and flush it, then write the control file's slot
//! `count % 2` (pointer to the record, a copy of the redo point) and fsync it: now the
//! checkpoint is durable. Remove log segments wholly before the redo point.
//!
//! Recovery reads the control file, checks the checkpoint record it points at, and replays every
//! page commit record from the redo point: a full-page image restores its page, a delta
//! applies to its leaf, and either only where the page's LSN is below the record's end, so
//! replay is idempotent and a page torn by the crash is repaired by its image.

use std::collections::BTreeMap;

use crate::cachetable::read_slot_at;
use crate::clock::Clock;
use crate::engine::{Engine, State};
use crate::error::{Error, Result, Structure};
use crate::format::control::{Control, CONTROL_FILE, CONTROL_SLOT_OFFSETS, STRATEGY_FUZZY};
use crate::format::header::SlotRecord;
use crate::format::page::{self, Node};
use crate::format::record::{PageRedo, Record};
use crate::log;
use crate::options::Canary;
use crate::strategy::steps::fuzzy as step;
use crate::types::{Lsn, PageId};
use crate::vfs::{Vfs, VfsFile};

impl<V: Vfs, C: Clock> Engine<V, C> {
    pub(crate) async fn fuzzy_checkpoint(&self) -> Result<u64> {
        let (count, redo_lsn, pages, next_page_id) = {
            let mut state = self.state.lock().await;
            let since = self.clock.now();
            let count = state.checkpoint_count + 1;
            self.step(count, &step::STARTED);
            let redo_lsn = self.log.next_lsn();
            state.cache.set_redo_point(redo_lsn);
            let pages = state.cache.dirty_page_ids();
            self.blocked("redo-point", since);
            (count, redo_lsn, pages, state.cache.next_page_id)
        };
        tracing::debug!(count, redo_lsn, pages = pages.len(), "redo point taken");
        self.step(count, &step::REDO_POINT_TAKEN);

        let spread = self
            .options
            .checkpoint_interval
            .mul_f64(self.options.checkpoint_completion_target);
        self.write_pages_in_place(count, &step::PAGE_WRITTEN, pages, spread)
            .await?;
        // What the slots hold once the sync below returns: every write that completed before
        // it. Evictions write under the latch, so none is in flight while this is taken.
        let page_lsns = {
            let state = self.state.lock().await;
            state.cache.page_lsn_map(state.cache.next_page_id, false)
        };
        self.sync_data().await?;
        self.step(count, &step::DATA_SYNCED);

        let (checkpoint_lsn, _) = self.log.append(&Record::Checkpoint {
            checkpoint_count: count,
            redo_lsn: Lsn(redo_lsn),
            next_page_id,
            physical_log_start: 0,
            page_lsns,
        });
        let control = Control {
            checkpoint_count: count,
            checkpoint_lsn,
            redo_lsn: Lsn(redo_lsn),
            next_page_id,
            physical_log_start: 0,
            strategy: STRATEGY_FUZZY,
            page_size_bytes: self.options.page_size_bytes as u32,
        };
        if self.canary(Canary::ControlFileBeforeCheckpointRecord) {
            self.write_control(count, &control).await?;
            self.flush_log(true).await?;
            self.step(count, &step::CHECKPOINT_RECORD_LOGGED);
        } else {
            self.flush_log(true).await?;
            self.step(count, &step::CHECKPOINT_RECORD_LOGGED);
            self.write_control(count, &control).await?;
        }

        {
            let mut state = self.state.lock().await;
            state.checkpoint_count = count;
            state.checkpoint_lsn = Lsn(redo_lsn);
            state.checkpoint_time = self.clock.now();
        }
        let removed = self.log.trim(&self.vfs, redo_lsn).await?;
        tracing::debug!(count, removed = removed.len(), "log trimmed");
        self.step(count, &step::LOG_TRIMMED);
        self.step(count, &step::FINISHED);
        Ok(count)
    }

    /// Writes and fsyncs the control file slot of `control`. Either failing poisons: what the
    /// slot holds is then unknown, and recovery decides from the disk.
    async fn write_control(&self, count: u64, control: &Control) -> Result<()> {
        let file = self
            .control
            .as_ref()
            .expect("the fuzzy strategy has a control file");
        let offset = CONTROL_SLOT_OFFSETS[control.slot()];
        if let Err(source) = file.write_at(offset, &control.encode()).await {
            let error = Error::io("write", CONTROL_FILE, source);
            self.poison(&error);
            return Err(error);
        }
        self.step(count, &step::CONTROL_FILE_WRITTEN);
        if let Err(source) = file.sync().await {
            let error = Error::io("sync", CONTROL_FILE, source);
            self.poison(&error);
            return Err(error);
        }
        self.step(count, &step::CONTROL_FILE_SYNCED);
        Ok(())
    }
}

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Replays one page commit record ending at `end`: each entry applies only to a page whose
    /// LSN is below `end`. A full-page image needs nothing from the disk (a torn page is simply
    /// replaced); a delta needs its page readable.
    pub(crate) async fn replay_page_commit(
        &self,
        state: &mut State,
        next_page_id: PageId,
        redo: &[PageRedo],
        end: u64,
    ) -> Result<()> {
        state.cache.next_page_id = state.cache.next_page_id.max(next_page_id);
        // Whether the record applies to a page is decided once, before its first entry: after
        // that entry the page carries the record's end, and its later entries must still apply.
        let mut applies: BTreeMap<PageId, bool> = BTreeMap::new();
        for entry in redo {
            let page_id = entry.page_id();
            let apply = match applies.get(&page_id) {
                Some(&apply) => apply,
                None => {
                    let lsn = match entry {
                        PageRedo::Image { .. } => self.replay_page_lsn(state, page_id).await?,
                        PageRedo::Put { .. } | PageRedo::Delete { .. } => {
                            state.cache.load(&self.data, page_id).await?;
                            Some(state.cache.page_lsn(page_id))
                        }
                    };
                    let apply = lsn < Some(end);
                    applies.insert(page_id, apply);
                    apply
                }
            };
            if !apply {
                continue;
            }
            match entry {
                PageRedo::Image { node, .. } => {
                    let node = page::decode_node(node).map_err(|detail| {
                        Error::corruption(
                            log::segment_name(end),
                            end,
                            Structure::LogRecord,
                            format!("full-page image of page {page_id}: {detail}"),
                        )
                    })?;
                    state.cache.restore_page(page_id, node, end);
                }
                PageRedo::Put { key, value, .. } => {
                    let entries = replay_leaf(state, page_id, end)?;
                    match entries.binary_search_by(|(candidate, _)| candidate.cmp(key)) {
                        Ok(index) => entries[index].1 = value.clone(),
                        Err(index) => entries.insert(index, (key.clone(), value.clone())),
                    }
                }
                PageRedo::Delete { key, .. } => {
                    let entries = replay_leaf(state, page_id, end)?;
                    if let Ok(index) = entries.binary_search_by(|(candidate, _)| candidate.cmp(key))
                    {
                        entries.remove(index);
                    }
                }
            }
        }
        Ok(())
    }

    /// The LSN of page `id` as replay finds it: cached, else read from its slot (and cached);
    /// None if the slot is empty or fails to verify (torn), which an image repairs.
    async fn replay_page_lsn(&self, state: &mut State, id: PageId) -> Result<Option<u64>> {
        if state.cache.is_cached(id) {
            return Ok(Some(state.cache.page_lsn(id)));
        }
        let offset = state.cache.slot_offset(id);
        match read_slot_at(&self.data, offset, self.options.slot_bytes(), id).await {
            Ok(Some((node, lsn))) => {
                state.cache.insert_loaded(id, node, lsn);
                Ok(Some(lsn))
            }
            Ok(None) | Err(Error::Corruption { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// The entries of cached leaf `id`, for a delta of the record ending at `end`.
fn replay_leaf(state: &mut State, id: PageId, end: u64) -> Result<&mut Vec<(Vec<u8>, Vec<u8>)>> {
    match state.cache.redo_node(id, end) {
        Node::Leaf { entries } => Ok(entries),
        Node::Internal { .. } => Err(Error::corruption(
            log::segment_name(end),
            end,
            Structure::LogRecord,
            format!("a leaf delta for page {id}, which is an internal node"),
        )),
    }
}
