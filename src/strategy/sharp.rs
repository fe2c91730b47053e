//! The sharp checkpoint: begin_checkpoint and end_checkpoint (TokuDB), with PostgreSQL's
//! commit drain and fsync rules.
//!
//! begin (under the latch, so no commit is half applied): log `begin_checkpoint` (its LSN is
//! the checkpoint LSN), mark every dirty page pending, copy the header fields and current ->
//! inprogress translation. The latch is released, then the log is flushed through the begin
//! record (every earlier commit is then durable): commits go on during the fsync and the rest.
//!
//! end: one page at a time, encode a pending page (or the clone a writer made of it) under the
//! latch, reserve a fresh block in the inprogress translation, release the latch and write the
//! block; writers run between the writes and clone pending pages before modifying them. Then
//! fsync; write the inprogress translation to a fresh block; fsync; write the header to slot
//! `count % 2`; fsync (now the checkpoint is durable); log `end_checkpoint` and flush it; free
//! the blocks only the old checkpointed translation referenced (checkpointed = inprogress);
//! remove log segments wholly before the checkpoint LSN.
//!
//! A failed page or translation write abandons the checkpoint; once the header write is issued
//! a failure poisons, and the checkpoint's blocks are never freed.

use std::collections::BTreeMap;

use crate::cachetable::{PendingCheckpoint, PreparedPage};
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::Result;
use crate::format::header::{Header, SlotRecord, HEADER_SLOT_OFFSETS};
use crate::format::record::Record;
use crate::format::translation::Translation;
use crate::options::Canary;
use crate::strategy::steps::sharp as step;
use crate::types::Lsn;
use crate::vfs::Vfs;

impl<V: Vfs, C: Clock> Engine<V, C> {
    pub(crate) async fn sharp_checkpoint(&self) -> Result<u64> {
        let (count, lsn) = self.begin_checkpoint().await?;
        if self.canary(Canary::TrimLogBeforeHeader) {
            self.log.trim(&self.vfs, lsn.0).await?;
        }
        self.end_checkpoint(count, lsn).await?;
        Ok(count)
    }

    /// Under the latch, so no commit is half applied: log `begin_checkpoint` (into the buffer),
    /// set the pending bits and start the inprogress translation. The begin record is flushed
    /// after the latch is released: it only has to be durable before the header that names it,
    /// and an fsync under the latch would be a blocking window for every commit. The disk
    /// holds the same at both steps (pending bits live in memory), so the steps are reported
    /// in their list's order once the flush is done.
    async fn begin_checkpoint(&self) -> Result<(u64, Lsn)> {
        let (count, lsn) = {
            let mut state = self.state.lock().await;
            let since = self.clock.now();
            let count = state.checkpoint_count + 1;
            self.step(count, &step::STARTED);
            let (lsn, _) = self.log.append(&Record::BeginCheckpoint {
                checkpoint_count: count,
            });
            let pending = state.cache.set_pending_bits();
            state.cache.blocks().begin_checkpoint();
            debug_assert_eq!(state.cache.blocks().check(), Ok(()), "at begin_checkpoint");
            state.cache.checkpoint = Some(PendingCheckpoint {
                count,
                lsn,
                root: state.cache.root,
                next_page_id: state.cache.next_page_id,
                clones: BTreeMap::new(),
                header_written: false,
            });
            tracing::debug!(count, %lsn, pending, "begin_checkpoint");
            self.blocked("begin", since);
            (count, lsn)
        };
        self.flush_log(true).await?;
        self.step(count, &step::BEGIN_RECORD_LOGGED);
        self.step(count, &step::PENDING_BITS_SET);
        Ok((count, lsn))
    }

    async fn end_checkpoint(&self, count: u64, lsn: Lsn) -> Result<()> {
        let page_ids = self.state.lock().await.cache.checkpoint_page_ids();
        if self.canary(Canary::HeaderBeforePages) {
            // Reserve every block first so the translation is known, then write it and the
            // header before any page.
            let mut prepared = Vec::new();
            {
                let mut state = self.state.lock().await;
                for &page_id in &page_ids {
                    prepared.extend(state.cache.prepare_checkpoint_page(page_id));
                }
            }
            self.write_translation_and_header(count, lsn).await?;
            for (index, page) in prepared.iter().enumerate() {
                self.write_checkpoint_page(count, index, page).await?;
            }
            self.sync_data().await?;
        } else {
            // One page at a time, each encoded under the latch right before its write, so
            // writers run between the writes and clone the pending pages they meet.
            let mut index = 0;
            for page_id in page_ids {
                let prepared = self
                    .state
                    .lock()
                    .await
                    .cache
                    .prepare_checkpoint_page(page_id);
                if let Some(page) = prepared {
                    self.write_checkpoint_page(count, index, &page).await?;
                    index += 1;
                }
            }
            if !self.canary(Canary::SkipDataFsync) {
                self.sync_data().await?;
            }
            self.step(count, &step::DATA_SYNCED);
            self.write_translation_and_header(count, lsn).await?;
        }

        self.log.append(&Record::EndCheckpoint {
            checkpoint_count: count,
            begin_lsn: lsn,
        });
        self.flush_log(true).await?;
        self.step(count, &step::END_RECORD_LOGGED);

        {
            let mut state = self.state.lock().await;
            let freed = state.cache.blocks().finish_checkpoint();
            debug_assert_eq!(state.cache.blocks().check(), Ok(()), "at end_checkpoint");
            state.cache.checkpoint = None;
            state.checkpoint_count = count;
            state.checkpoint_lsn = lsn;
            state.checkpoint_time = self.clock.now();
            tracing::debug!(count, freed = freed.len(), "blocks freed");
        }
        self.step(count, &step::BLOCKS_FREED);

        let removed = self.log.trim(&self.vfs, lsn.0).await?;
        tracing::debug!(count, removed = removed.len(), "log trimmed");
        self.step(count, &step::LOG_TRIMMED);
        self.step(count, &step::FINISHED);
        Ok(())
    }

    async fn write_checkpoint_page(
        &self,
        count: u64,
        index: usize,
        page: &PreparedPage,
    ) -> Result<()> {
        // On failure the block stays in the inprogress translation; abandoning the checkpoint
        // frees it.
        self.write_data(page.block.offset, &page.bytes).await?;
        self.state.lock().await.cache.checkpoint_page_written(page);
        self.page_measured(page.bytes.len());
        self.page_step(count, &step::PAGE_WRITTEN, page.page_id, index);
        Ok(())
    }

    async fn write_translation_and_header(&self, count: u64, lsn: Lsn) -> Result<()> {
        let (bytes, block, header) = {
            let mut state = self.state.lock().await;
            let checkpoint = state
                .cache
                .checkpoint
                .as_ref()
                .expect("end runs inside a checkpoint");
            debug_assert_eq!(
                (checkpoint.count, checkpoint.lsn),
                (count, lsn),
                "one checkpoint at a time"
            );
            let (root, next_page_id) = (checkpoint.root, checkpoint.next_page_id);
            let blocks = state.cache.blocks();
            let entries = blocks
                .inprogress()
                .expect("begin made an inprogress translation")
                .clone();
            let bytes = Translation { entries }.encode();
            let offset = blocks.allocate(bytes.len() as u32);
            let block = Translation::block_ref(offset, &bytes);
            blocks.set_inprogress_translation(block);
            let header = Header {
                checkpoint_count: count,
                checkpoint_lsn: lsn,
                translation: block,
                root_page: root,
                next_page_id,
                page_size_bytes: self.options.page_size_bytes as u32,
            };
            (bytes, block, header)
        };
        self.write_data(block.offset, &bytes).await?;
        self.step(count, &step::TRANSLATION_WRITTEN);
        if !self.canary(Canary::SkipDataFsync) {
            self.sync_data().await?;
        }
        self.step(count, &step::TRANSLATION_SYNCED);
        if let Some(checkpoint) = self.state.lock().await.cache.checkpoint.as_mut() {
            checkpoint.header_written = true;
        }
        // What a failed header write left in its slot is unknown, so it poisons like a failed
        // sync: the checkpoint's blocks are never freed and recovery decides from the disk.
        if let Err(error) = self
            .write_data(HEADER_SLOT_OFFSETS[header.slot()], &header.encode())
            .await
        {
            self.poison(&error);
            return Err(error);
        }
        self.step(count, &step::HEADER_WRITTEN);
        if self.canary(Canary::TrimLogBeforeHeaderSync) {
            // The trim moved between the header's write and its fsync: no step marker sees the
            // log gone while the header is not yet durable.
            self.log.trim(&self.vfs, lsn.0).await?;
        }
        self.sync_data().await?;
        self.step(count, &step::HEADER_SYNCED);
        Ok(())
    }
}

/// Loading a sharp checkpoint: reads and verifies the translation the header names and builds
/// the block table from it, holding the space it leaves free if `hold_gaps` (see
/// [`crate::allocator`]).
pub(crate) async fn load_translation<F: crate::vfs::VfsFile>(
    data: &F,
    data_len: u64,
    header: &Header,
    hold_gaps: bool,
    options: &crate::options::Options,
) -> Result<crate::allocator::BlockTable> {
    use crate::cachetable::DATA_FILE;
    use crate::error::{Error, Structure};

    let block = header.translation;
    let mut bytes = vec![0u8; block.len as usize];
    crate::vfs::read_exact_at(data, block.offset, &mut bytes)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::corruption(
                DATA_FILE,
                block.offset,
                Structure::Translation,
                "translation block lies past the end of the file",
            ),
            _ => Error::io("read", DATA_FILE, source),
        })?;
    if !Translation::matches(&block, &bytes) {
        return Err(Error::corruption(
            DATA_FILE,
            block.offset,
            Structure::Translation,
            "checksum mismatch",
        ));
    }
    let translation = Translation::decode(&bytes).map_err(|detail| {
        Error::corruption(DATA_FILE, block.offset, Structure::Translation, detail)
    })?;
    let mut blocks =
        crate::allocator::BlockTable::from_checkpoint(translation, block, data_len, hold_gaps);
    #[cfg(feature = "canary")]
    blocks.set_reuse_checkpointed(options.planted(Canary::ReuseCheckpointedBlock));
    let _ = (&mut blocks, options);
    debug_assert_eq!(blocks.check(), Ok(()), "a recovered block table");
    Ok(blocks)
}
