//! Opening a database: create it if the directory is empty, else recover.
//!
//! Recovery reads both header slots and takes the valid one with the higher checkpoint count
//! (warning if the other failed to verify), loads and verifies that checkpoint's translation,
//! then replays every commit record from the checkpoint's begin_checkpoint LSN to the end of
//! the valid log. The log is cut at the first record that does not verify: the torn tail and
//! any later segment are removed, so new records continue the valid prefix.
//!
//! The header is trusted over the log's end_checkpoint record: a header is written only after
//! its pages and translation are fsynced, so a durable header with no end_checkpoint after it
//! (a crash between the two, TokuDB's bug #3113 window) is a complete checkpoint.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::allocator::BlockTable;
use crate::cachetable::{Cachetable, DATA_FILE};
use crate::clock::Clock;
use crate::engine::{Engine, RecoveryReport, State};
use crate::error::{Error, Result, Structure};
use crate::format::header::{self, HeaderChoice, HEADER_BYTES, HEADER_SLOT_OFFSETS};
use crate::format::page::Node;
use crate::format::record::Record;
use crate::format::translation::Translation;
use crate::log::{self, parse_segment_name, reader, Log};
use crate::observer::Observer;
use crate::options::{Canary, Options};
use crate::types::Lsn;
use crate::vfs::{read_exact_at, Vfs, VfsFile};

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Opens the database in `vfs`, creating it if the directory holds none, recovering it
    /// otherwise.
    pub async fn open(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
    ) -> Result<Self> {
        options.validate()?;
        let names = vfs
            .list()
            .await
            .map_err(|source| Error::io("list", "database directory", source))?;
        if !names.iter().any(|name| name == DATA_FILE) {
            return Self::create(vfs, clock, options, observer, &names).await;
        }
        let data = vfs
            .open(DATA_FILE)
            .await
            .map_err(|source| Error::io("open", DATA_FILE, source))?;
        let file_len = data
            .len()
            .await
            .map_err(|source| Error::io("stat", DATA_FILE, source))?;

        let mut slots = Vec::with_capacity(2);
        for (slot, &offset) in HEADER_SLOT_OFFSETS.iter().enumerate() {
            let readable = file_len.saturating_sub(offset).min(HEADER_BYTES as u64) as usize;
            let mut bytes = vec![0u8; readable];
            read_exact_at(&data, offset, &mut bytes)
                .await
                .map_err(|source| Error::io("read", DATA_FILE, source))?;
            slots.push(header::read_slot(slot, &bytes));
        }
        let slots: [header::SlotState; 2] = slots.try_into().expect("two slots");
        let (header, header_slot, header_warning) = match header::choose(&slots) {
            HeaderChoice::Use {
                header,
                slot,
                warning,
            } => (header, slot, warning),
            HeaderChoice::Fresh => {
                // A data file with no header was never checkpointed: creation crashed before
                // it finished, so no commit was ever acknowledged. Start over.
                tracing::warn!("data file has no header; creating the database again");
                return Self::create(vfs, clock, options, observer, &names).await;
            }
            HeaderChoice::Corrupt { reasons } => {
                return Err(Error::corruption(
                    DATA_FILE,
                    0,
                    Structure::Headers,
                    format!("slot 0: {}; slot 1: {}", reasons[0], reasons[1]),
                ));
            }
        };
        if let Some(warning) = &header_warning {
            tracing::warn!(warning, "a header slot failed to verify; using the other");
        }

        let block = header.translation;
        let mut bytes = vec![0u8; block.len as usize];
        read_exact_at(&data, block.offset, &mut bytes)
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
        let mut blocks = BlockTable::from_checkpoint(translation, block, file_len);
        #[cfg(feature = "canary")]
        blocks.set_reuse_checkpointed(options.planted(Canary::ReuseCheckpointedBlock));
        let _ = &mut blocks;
        let mut cache = Cachetable::new(
            blocks,
            header.root_page,
            header.next_page_id,
            options.cache_pages,
            options.page_size_bytes,
        );
        cache.ignore_pending_bit = options.planted(Canary::IgnorePendingBit);
        cache.skip_checksum = options.planted(Canary::SkipChecksum);

        let scan = reader::scan_with(
            &vfs,
            header.checkpoint_lsn.0,
            reader::ScanFlaws::planted(&options),
        )
        .await?;
        match scan.records.first() {
            Some((lsn, Record::BeginCheckpoint { checkpoint_count }))
                if *lsn == header.checkpoint_lsn
                    && *checkpoint_count == header.checkpoint_count => {}
            _ => {
                return Err(Error::corruption(
                    log::segment_name(scan.end_segment),
                    header.checkpoint_lsn.0,
                    Structure::CheckpointRecord,
                    format!(
                        "no begin_checkpoint for checkpoint {} at LSN {} ({})",
                        header.checkpoint_count, header.checkpoint_lsn, scan.stop_reason
                    ),
                ));
            }
        }

        // Falling back to an older header is safe only if the newer checkpoint never completed:
        // its end_checkpoint is logged before the blocks only the older one used are freed.
        // If the log holds a newer end_checkpoint, the newer header was durable and has since
        // been destroyed, and the older checkpoint's blocks may hold other data by now.
        let newer_end = scan.records.iter().find_map(|(lsn, record)| match record {
            Record::EndCheckpoint {
                checkpoint_count, ..
            } if *checkpoint_count > header.checkpoint_count => Some((*lsn, *checkpoint_count)),
            _ => None,
        });
        if let Some((lsn, newer)) = newer_end {
            return Err(Error::corruption(
                DATA_FILE,
                HEADER_SLOT_OFFSETS[(newer % 2) as usize],
                Structure::HeaderSlot((newer % 2) as u8),
                format!(
                    "the log ends checkpoint {newer} at LSN {lsn}, but its header is unusable and \
                     the older checkpoint {}'s blocks may have been reused",
                    header.checkpoint_count
                ),
            ));
        }

        let mut replayed_commits = 0;
        let mut last_commit_lsn = None;
        for (lsn, record) in &scan.records {
            let Record::Commit { writes, .. } = record else {
                continue;
            };
            for write in writes {
                cache.prefetch(&data, &write.key).await?;
            }
            for write in writes {
                cache.apply_loaded(&write.key, write.value.as_deref());
            }
            cache.evict_to_capacity(&data).await?;
            replayed_commits += 1;
            last_commit_lsn = Some(*lsn);
        }

        // Cut the log at its valid end: the torn tail of the end segment and every later
        // segment go, so appending continues the valid prefix.
        let mut discarded_log_bytes = 0;
        let mut segments = BTreeSet::new();
        let mut removed_any = false;
        for (&start, &len) in &scan.segments {
            if start > scan.end_segment {
                let name = log::segment_name(start);
                vfs.remove(&name)
                    .await
                    .map_err(|source| Error::io("remove", name, source))?;
                discarded_log_bytes += len;
                removed_any = true;
            } else {
                segments.insert(start);
            }
        }
        let end_name = log::segment_name(scan.end_segment);
        let end_file = vfs
            .open(&end_name)
            .await
            .map_err(|source| Error::io("open", end_name.clone(), source))?;
        let valid_len = scan.end - scan.end_segment;
        if scan.end_segment_len > valid_len {
            discarded_log_bytes += scan.end_segment_len - valid_len;
            end_file
                .set_len(valid_len)
                .await
                .map_err(|source| Error::io("truncate", end_name.clone(), source))?;
            end_file
                .sync()
                .await
                .map_err(|source| Error::io("sync", end_name.clone(), source))?;
        }
        if removed_any {
            vfs.sync_dir()
                .await
                .map_err(|source| Error::io("sync", "database directory", source))?;
        }
        // Appending inside a sector that holds durable records would let a torn write garble
        // them, so unless the valid log ends on a sector boundary, new records go to a new
        // segment starting at the log's end.
        let (append_segment, append_file) = if valid_len % options.log_sector_bytes == 0 {
            (scan.end_segment, Some(end_file))
        } else {
            (scan.end, None)
        };
        let log = Log::new(
            scan.end,
            append_segment,
            append_file,
            segments,
            options.log_segment_bytes,
            options.log_sector_bytes,
        );

        let recovery = RecoveryReport {
            created: false,
            checkpoint_count: header.checkpoint_count,
            checkpoint_lsn: header.checkpoint_lsn,
            header_slot,
            header_warning,
            replayed_commits,
            last_commit_lsn,
            log_end: Lsn(scan.end),
            log_stop_reason: scan.stop_reason.to_string(),
            discarded_log_bytes,
        };
        tracing::info!(
            checkpoint = recovery.checkpoint_count,
            checkpoint_lsn = %recovery.checkpoint_lsn,
            header_slot = recovery.header_slot,
            header_warning = recovery.header_warning.as_deref().unwrap_or("none"),
            replayed_commits = recovery.replayed_commits,
            log_end = %recovery.log_end,
            log_stop = %recovery.log_stop_reason,
            discarded_log_bytes = recovery.discarded_log_bytes,
            "recovered"
        );
        let state = State {
            cache,
            checkpoint_count: header.checkpoint_count,
            checkpoint_lsn: header.checkpoint_lsn,
            checkpoint_time: clock.now(),
        };
        Ok(Engine::assemble(
            vfs, clock, options, observer, data, log, state, recovery,
        ))
    }

    /// Creates an empty database: an empty root leaf made durable by checkpoint 1.
    async fn create(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
        names: &[String],
    ) -> Result<Self> {
        for name in names
            .iter()
            .filter(|name| parse_segment_name(name).is_some())
        {
            vfs.remove(name)
                .await
                .map_err(|source| Error::io("remove", name.clone(), source))?;
        }
        let data = vfs
            .create(DATA_FILE)
            .await
            .map_err(|source| Error::io("create", DATA_FILE, source))?;
        vfs.sync_dir()
            .await
            .map_err(|source| Error::io("sync", "database directory", source))?;
        let log = Log::new(
            0,
            0,
            None,
            BTreeSet::new(),
            options.log_segment_bytes,
            options.log_sector_bytes,
        );
        let mut blocks = BlockTable::new();
        #[cfg(feature = "canary")]
        blocks.set_reuse_checkpointed(options.planted(Canary::ReuseCheckpointedBlock));
        let _ = &mut blocks;
        let mut cache = Cachetable::new(blocks, 0, 0, options.cache_pages, options.page_size_bytes);
        cache.root = cache.insert_new(Node::Leaf {
            entries: Vec::new(),
        });
        cache.ignore_pending_bit = options.planted(Canary::IgnorePendingBit);
        cache.skip_checksum = options.planted(Canary::SkipChecksum);
        let state = State {
            cache,
            checkpoint_count: 0,
            checkpoint_lsn: Lsn(0),
            checkpoint_time: clock.now(),
        };
        let recovery = RecoveryReport {
            created: true,
            log_stop_reason: "created".into(),
            ..RecoveryReport::default()
        };
        let engine = Engine::assemble(vfs, clock, options, observer, data, log, state, recovery);
        let count = engine.checkpoint().await?;
        let mut engine = engine;
        engine.recovery.checkpoint_count = count;
        engine.recovery.checkpoint_lsn = engine.state.lock().await.checkpoint_lsn;
        Ok(engine)
    }
}
