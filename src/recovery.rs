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
//!
//! What open refuses, so that it never loses data silently: a directory without a data file
//! is created into only if it is empty, or holds nothing but an unfinished creation (the data
//! file under its temporary name, and the log segments that creation wrote); log segments or
//! any other file there mean a database lost its data file, or that the directory is not a
//! database's, and open fails with corruption of the directory. A data file with no header is
//! corruption, never a new database. A failed open deletes nothing.

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
use crate::log::{self, reader, Log};
use crate::observer::Observer;
use crate::options::{Canary, Options};
use crate::types::Lsn;
use crate::vfs::{read_exact_at, Vfs, VfsFile};

impl<V: Vfs, C: Clock> Engine<V, C> {
    /// Opens the database in `vfs`, creating it if the directory is empty, recovering it
    /// otherwise; see the module doc for what it refuses. Fails with [`Error::Locked`] while
    /// another engine has the directory open.
    pub async fn open(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
    ) -> Result<Self> {
        options.validate()?;
        let directory_lock = vfs.lock().await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked {
                    directory: vfs.location(),
                }
            } else {
                Error::io("lock", vfs.location(), source)
            }
        })?;
        let engine = Self::open_locked(vfs, clock, options, observer).await?;
        *engine
            .directory_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(directory_lock);
        Ok(engine)
    }

    async fn open_locked(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
    ) -> Result<Self> {
        let names = vfs
            .list()
            .await
            .map_err(|source| Error::io("list", vfs.location(), source))?;
        if !names.iter().any(|name| name == DATA_FILE) {
            refuse_unless_creatable(&vfs.location(), &names)?;
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
                // Creation renames the data file into place only after checkpoint 1's header is
                // durable, so an empty pair of slots is damage, and the log may hold commits.
                return Err(Error::corruption(
                    DATA_FILE,
                    0,
                    Structure::Headers,
                    format!(
                        "both header slots are empty ({file_len} bytes in the data file), though \
                         a created database always has a header; {} holds {}; not creating a \
                         new database over it",
                        vfs.location(),
                        list_names(&names)
                    ),
                ));
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

        let scan = reader::scan(&vfs, header.checkpoint_lsn.0)
            .await
            .map_err(|error| blame_damaged_slot(error, &slots, header_slot, &header))?;
        match scan.records.first() {
            Some((lsn, Record::BeginCheckpoint { checkpoint_count }))
                if *lsn == header.checkpoint_lsn
                    && *checkpoint_count == header.checkpoint_count => {}
            // The segment that held the checkpoint LSN is gone; an older one survived.
            None if scan.end_segment + scan.end_segment_len <= header.checkpoint_lsn.0 => {
                return Err(blame_damaged_slot(
                    Error::corruption(
                        log::segment_name(scan.end_segment),
                        header.checkpoint_lsn.0,
                        Structure::CheckpointRecord,
                        format!(
                            "no log segment holds the checkpoint LSN {}: this one ends before it",
                            header.checkpoint_lsn
                        ),
                    ),
                    &slots,
                    header_slot,
                    &header,
                ));
            }
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
                .map_err(|source| Error::io("sync", vfs.location(), source))?;
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
    ///
    /// The data file is built as [`CREATING_FILE`] and renamed into place once checkpoint 1 is
    /// durable, so a crash during creation leaves a directory that open knows to create into
    /// again (no commit was acknowledged yet), and a data file always has a header.
    async fn create(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
        names: &[String],
    ) -> Result<Self> {
        // Only an unfinished creation leaves files here (`refuse_unless_creatable`): its log
        // segments go, while the file that marks it stays until the new creation truncates it.
        for name in names.iter().filter(|name| *name != CREATING_FILE) {
            vfs.remove(name)
                .await
                .map_err(|source| Error::io("remove", name.clone(), source))?;
        }
        let data = vfs
            .create(CREATING_FILE)
            .await
            .map_err(|source| Error::io("create", CREATING_FILE, source))?;
        // Durable before the first log segment is created, so no crash image holds log
        // segments without the file that marks them as creation's.
        vfs.sync_dir()
            .await
            .map_err(|source| Error::io("sync", vfs.location(), source))?;
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
        engine
            .vfs
            .rename(CREATING_FILE, DATA_FILE)
            .await
            .map_err(|source| Error::io("rename", CREATING_FILE, source))?;
        engine
            .vfs
            .sync_dir()
            .await
            .map_err(|source| Error::io("sync", engine.vfs.location(), source))?;
        let mut engine = engine;
        engine.recovery.checkpoint_count = count;
        engine.recovery.checkpoint_lsn = engine.state.lock().await.checkpoint_lsn;
        Ok(engine)
    }
}

/// The data file's name while creation builds it; see `create`.
pub const CREATING_FILE: &str = "data.creating";

/// Names for an error message: the first few, and how many more.
fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 6;
    if names.is_empty() {
        return "no other file".to_string();
    }
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// A directory with no data file is created into only when it is empty or holds an unfinished
/// creation: [`CREATING_FILE`] and the log segments that creation wrote. Creation starts only
/// in an empty directory and renames its data file into place before open returns, so every
/// segment beside that file is creation's own, and no commit was acknowledged. Anything else
/// (log segments of a database whose data file is gone, or files that are not the engine's) is
/// refused, so open never creates over data it does not understand.
fn refuse_unless_creatable(location: &str, names: &[String]) -> Result<()> {
    let unfinished_creation = names.iter().any(|name| name == CREATING_FILE)
        && names
            .iter()
            .all(|name| name == CREATING_FILE || log::parse_segment_name(name).is_some());
    if names.is_empty() || unfinished_creation {
        return Ok(());
    }
    let segments = names
        .iter()
        .filter(|name| log::parse_segment_name(name).is_some())
        .count();
    let why = if segments > 0 {
        format!("{segments} log segments of a database whose data file is gone")
    } else {
        "files that are not a database's".to_string()
    };
    Err(Error::corruption(
        location,
        0,
        Structure::Directory,
        format!(
            "no data file, but the directory holds {} ({why}); a new database is created only \
             in an empty directory",
            list_names(names)
        ),
    ))
}

/// When the chosen header is the older one because the newer slot failed to verify, and the
/// log no longer reaches back to the older checkpoint, the log was trimmed after the newer
/// checkpoint: the structure that failed is the newer header slot, not the log.
fn blame_damaged_slot(
    error: Error,
    slots: &[header::SlotState; 2],
    chosen: usize,
    header: &header::Header,
) -> Error {
    let other = 1 - chosen;
    let (
        Error::Corruption {
            structure: Structure::CheckpointRecord,
            ..
        },
        header::SlotState::Invalid { reason },
    ) = (&error, &slots[other])
    else {
        return error;
    };
    Error::corruption(
        DATA_FILE,
        HEADER_SLOT_OFFSETS[other],
        Structure::HeaderSlot(other as u8),
        format!(
            "{reason}; the older checkpoint {} in slot {chosen} needs the log from LSN {}, which \
             is gone",
            header.checkpoint_count, header.checkpoint_lsn
        ),
    )
}
