//! The sharp checkpoint: begin_checkpoint and end_checkpoint (TokuDB), with PostgreSQL's
//! commit drain and fsync rules.
//!
//! begin (under the latch, so no commit is half applied): log `begin_checkpoint` and flush the
//! log through it (its LSN is the checkpoint LSN and every earlier commit is then durable),
//! mark every dirty page pending, copy the header fields and current -> inprogress translation.
//! The latch is released: commits go on while the rest runs.
//!
//! end: one page at a time, encode a pending page (or the clone a writer made of it) under the
//! latch, reserve a fresh block in the inprogress translation, release the latch and write the
//! block; writers run between the writes and clone pending pages before modifying them. Then
//! fsync; write the inprogress translation to
//! a fresh block; fsync; write the header to slot `count % 2`; fsync (now the checkpoint is
//! durable); log `end_checkpoint` and flush it; free the blocks only the old checkpointed
//! translation referenced (checkpointed = inprogress); remove log segments wholly before the
//! checkpoint LSN.
//!
//! A failed data-file sync poisons the engine; a failed page or translation write abandons the
//! checkpoint (the previous one stays the latest) without poisoning. Once the header write is
//! issued the checkpoint may be durable: a failure from there on (header write or sync, the
//! end_checkpoint record) poisons, and the checkpoint's blocks are never freed.

use std::collections::BTreeMap;

use crate::cachetable::{PendingCheckpoint, PreparedPage, DATA_FILE};
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::header::{Header, HEADER_SLOT_OFFSETS};
use crate::format::record::Record;
use crate::format::translation::Translation;
use crate::observer::CheckpointStep;
use crate::options::Canary;
use crate::types::Lsn;
use crate::vfs::{Vfs, VfsFile};

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Takes a checkpoint now; returns its count.
    pub async fn checkpoint(&self) -> Result<u64> {
        self.check_open()?;
        let _checkpoint = self.checkpoint_lock.lock().await;
        self.check_open()?;
        let result = self.run_checkpoint().await;
        if let Err(error) = &result {
            tracing::warn!(%error, "checkpoint failed");
            self.state.lock().await.cache.abandon_checkpoint();
        }
        result
    }

    async fn sync_data(&self) -> Result<()> {
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

    async fn write_data(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.data
            .write_at(offset, bytes)
            .await
            .map_err(|source| Error::io("write", DATA_FILE, source))
    }

    fn canary(&self, canary: Canary) -> bool {
        self.options.planted(canary)
    }

    async fn run_checkpoint(&self) -> Result<u64> {
        let (count, lsn) = self.begin_checkpoint().await?;
        if self.canary(Canary::TrimLogBeforeHeader) {
            self.log.trim(&self.vfs, lsn.0).await?;
        }
        self.end_checkpoint(count, lsn).await?;
        Ok(count)
    }

    async fn begin_checkpoint(&self) -> Result<(u64, Lsn)> {
        let mut state = self.state.lock().await;
        let count = state.checkpoint_count + 1;
        self.step(count, CheckpointStep::Started);
        let (lsn, _) = self.log.append(&Record::BeginCheckpoint {
            checkpoint_count: count,
        });
        self.flush_log(true).await?;
        self.step(count, CheckpointStep::BeginRecordLogged);
        let pending = state.cache.set_pending_bits();
        state.cache.blocks.begin_checkpoint();
        state.cache.checkpoint = Some(PendingCheckpoint {
            count,
            lsn,
            root: state.cache.root,
            next_page_id: state.cache.next_page_id,
            clones: BTreeMap::new(),
            header_written: false,
        });
        tracing::debug!(count, %lsn, pending, "begin_checkpoint");
        self.step(count, CheckpointStep::PendingBitsSet);
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
            self.step(count, CheckpointStep::DataSynced);
            self.write_translation_and_header(count, lsn).await?;
        }

        self.log.append(&Record::EndCheckpoint {
            checkpoint_count: count,
            begin_lsn: lsn,
        });
        self.flush_log(true).await?;
        self.step(count, CheckpointStep::EndRecordLogged);

        {
            let mut state = self.state.lock().await;
            let freed = state.cache.blocks.finish_checkpoint();
            state.cache.checkpoint = None;
            state.checkpoint_count = count;
            state.checkpoint_lsn = lsn;
            state.checkpoint_time = self.clock.now();
            tracing::debug!(count, freed = freed.len(), "blocks freed");
        }
        self.step(count, CheckpointStep::BlocksFreed);

        let removed = self.log.trim(&self.vfs, lsn.0).await?;
        tracing::debug!(count, removed = removed.len(), "log trimmed");
        self.step(count, CheckpointStep::LogTrimmed);
        self.step(count, CheckpointStep::Finished);
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
        self.step(
            count,
            CheckpointStep::PageWritten {
                page_id: page.page_id,
                index: index as u32,
            },
        );
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
            let entries = state
                .cache
                .blocks
                .inprogress()
                .expect("begin made an inprogress translation")
                .clone();
            let bytes = Translation { entries }.encode();
            let offset = state.cache.blocks.allocate(bytes.len() as u32);
            let block = Translation::block_ref(offset, &bytes);
            state.cache.blocks.set_inprogress_translation(block);
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
        self.step(count, CheckpointStep::TranslationWritten);
        if !self.canary(Canary::SkipDataFsync) {
            self.sync_data().await?;
        }
        self.step(count, CheckpointStep::TranslationSynced);
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
        self.step(count, CheckpointStep::HeaderWritten);
        self.sync_data().await?;
        self.step(count, CheckpointStep::HeaderSynced);
        Ok(())
    }
}
