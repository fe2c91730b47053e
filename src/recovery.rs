//! Opening a database: create it if the directory is empty, else recover it in five steps,
//! each shared or supplied by the strategy:
//!
//! 1. **Find the anchor**: the newest valid slot of the two header slots (sharp), control file
//!    slots (fuzzy) or reserved pages (physical log), warning if the other failed to verify.
//! 2. **Load the checkpoint**: the translation it names (sharp); nothing beyond the page slots
//!    (fuzzy); the physical log's before-images restored over the data file, so it holds the
//!    checkpoint's state again (physical log).
//! 3. **Check the log**: read it from where replay starts and verify the record that identifies
//!    the checkpoint (begin_checkpoint, or the checkpoint record the anchor copied). The
//!    in-place strategies also check pages against the log: no page may reflect a record the
//!    log does not hold.
//! 4. **Replay**: logical commit records through the tree (sharp, physical log), or per-page
//!    redo idempotent by page LSN (fuzzy).
//! 5. **Cut**: the log's torn tail and any later segment are removed, so new records continue
//!    the valid prefix. (Done before replay: it removes only bytes past the valid end.)
//!
//! What open refuses, so that it never loses data silently: a directory without a data file
//! is created into only if it is empty, or holds nothing but an unfinished creation (the data
//! file under its temporary name, and the files that creation wrote); log segments or any
//! other file there mean a database lost its data file, or that the directory is not a
//! database's, and open fails with corruption of the directory. A data file whose anchor slots
//! are both empty is corruption, never a new database. A failed open deletes nothing.
//!
//! The physical-log strategy ends recovery with a startup checkpoint (GBase 8t's startup
//! trigger). The sharp header is trusted over the log's end_checkpoint record: a header is
//! written only after its pages and translation are fsynced, so a durable header with no
//! end_checkpoint after it (a crash between the two, TokuDB's bug #3113 window) is a complete
//! checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::allocator::BlockTable;
use crate::cachetable::{
    read_slot_at, BeforeImages, Cachetable, PageJournal, PageStore, Tracking, DATA_FILE,
};
use crate::clock::Clock;
use crate::engine::{Engine, RecoveryReport, State};
use crate::error::{Error, Result, Structure};
use crate::format::control::{self, Control, CONTROL_FILE, CONTROL_SLOT_OFFSETS};
use crate::format::header::{self, Header, HeaderChoice, SlotState, HEADER_BYTES};
use crate::format::page::Node;
use crate::format::record::{self, Record};
use crate::log::reader::{self, LogScan};
use crate::log::{self, Log, PHYSICAL_LOG_PREFIX, REDO_LOG_PREFIX};
use crate::observer::Observer;
use crate::options::{Canary, Options};
use crate::strategy::{Strategy, PHYSICAL_LOG_PAGES_START};
use crate::trigger::Trigger;
use crate::types::Lsn;
use crate::vfs::{read_exact_at, Vfs, VfsFile};

/// What the anchor names: the checkpoint to recover from.
pub(crate) struct Anchor {
    pub checkpoint_count: u64,
    /// The record that identifies the checkpoint in the log.
    pub record_lsn: Lsn,
    /// Where replay starts.
    pub replay_lsn: Lsn,
    pub slot: usize,
    pub warning: Option<String>,
    /// The sharp strategy's header (translation, root, page id high-water mark), and both
    /// slots as read.
    pub header: Option<Header>,
    pub header_slots: Option<[SlotState<Header>; 2]>,
    /// The in-place strategies' control record.
    pub control: Option<Control>,
}

/// What loading the checkpoint produced.
pub(crate) struct Loaded<V: Vfs> {
    pub cache: Cachetable,
    pub physical_log: Option<Log<V>>,
    pub restored_pages: u64,
    /// Before-images held back until after replay (a planted bug).
    pub deferred_restore: Vec<(u64, u64, Node)>,
    pub discarded_log_bytes: u64,
}

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

        let Some(anchor) = find_anchor(&vfs, &data, file_len, &options, &names).await? else {
            // Creation renames the data file into place only after checkpoint 1's anchor is
            // durable, so empty anchor slots are damage, and the log may hold commits.
            let structure = anchor_structure(options.strategy);
            let anchor_file = options.strategy.anchor_regions()[0].file;
            return Err(Error::corruption(
                anchor_file,
                0,
                structure.clone(),
                format!(
                    "{structure} are empty ({file_len} bytes in the data file), though a \
                     created database always has an anchor; {} holds {}; not creating a new \
                     database over it",
                    vfs.location(),
                    list_names(&names)
                ),
            ));
        };
        if let Some(warning) = &anchor.warning {
            tracing::warn!(warning, "an anchor slot failed to verify; using the other");
        }
        let mut loaded = load_checkpoint(&vfs, &data, file_len, &options, &anchor).await?;
        // The log no longer reaches back to the checkpoint: every segment starts after it.
        let log_trimmed_past = names
            .iter()
            .filter_map(|name| log::parse_segment_name(name))
            .all(|start| start > anchor.record_lsn.0);
        let scan = check_log(&vfs, &anchor, &options).await.map_err(|error| {
            match (&anchor.header_slots, &anchor.header, log_trimmed_past) {
                (Some(slots), Some(header), true) => {
                    blame_damaged_slot(error, slots, anchor.slot, header)
                }
                _ => error,
            }
        })?;
        let mut torn = BTreeSet::new();
        if options.strategy.writes_in_place() {
            let (disk_lsns, torn_slots) =
                check_pages_against_log(&data, file_len, &options, &anchor, &scan).await?;
            loaded.cache.disk_lsns = disk_lsns;
            torn = torn_slots;
        }
        let (log, discarded) = cut_log(&vfs, REDO_LOG_PREFIX, &scan, &options).await?;
        loaded.discarded_log_bytes += discarded;

        let state = State {
            cache: loaded.cache,
            checkpoint_count: anchor.checkpoint_count,
            checkpoint_lsn: anchor.replay_lsn,
            checkpoint_time: clock.now(),
            physical_log_start: anchor
                .control
                .as_ref()
                .map_or(0, |control| control.physical_log_start),
        };
        let control_file = match options.strategy {
            Strategy::Fuzzy => Some(
                vfs.open(CONTROL_FILE)
                    .await
                    .map_err(|source| Error::io("open", CONTROL_FILE, source))?,
            ),
            _ => None,
        };
        let recovery = RecoveryReport {
            created: false,
            checkpoint_count: anchor.checkpoint_count,
            checkpoint_lsn: anchor.replay_lsn,
            header_slot: anchor.slot,
            header_warning: anchor.warning.clone(),
            restored_pages: loaded.restored_pages,
            log_end: Lsn(scan.end),
            log_stop_reason: scan.stop_reason.to_string(),
            discarded_log_bytes: loaded.discarded_log_bytes,
            ..RecoveryReport::default()
        };
        let mut engine = Engine::assemble(
            vfs,
            clock,
            options,
            observer,
            data,
            log,
            control_file,
            loaded.physical_log,
            state,
            recovery,
        );
        let (replayed_commits, last_commit_lsn) = engine.replay(&scan).await?;
        engine.check_torn_pages_repaired(&torn, &scan).await?;
        if !loaded.deferred_restore.is_empty() {
            engine
                .restore_before_images(&loaded.deferred_restore)
                .await?;
        }
        engine.recovery.replayed_commits = replayed_commits;
        engine.recovery.last_commit_lsn = last_commit_lsn;
        let recovery = &engine.recovery;
        tracing::info!(
            strategy = %engine.options.strategy,
            checkpoint = recovery.checkpoint_count,
            checkpoint_lsn = %recovery.checkpoint_lsn,
            header_slot = recovery.header_slot,
            header_warning = recovery.header_warning.as_deref().unwrap_or("none"),
            restored_pages = recovery.restored_pages,
            replayed_commits = recovery.replayed_commits,
            log_end = %recovery.log_end,
            log_stop = %recovery.log_stop_reason,
            discarded_log_bytes = recovery.discarded_log_bytes,
            "recovered"
        );
        if engine.options.strategy == Strategy::PhysicalLog {
            // GBase 8t checkpoints at startup: the restored and replayed state becomes the new
            // checkpoint, and the physical log's old intervals can go.
            engine.checkpoint_for(Trigger::Startup).await?;
        }
        Ok(engine)
    }

    /// Replays the scanned log's commits from the checkpoint on. Returns how many and the last
    /// one's LSN.
    async fn replay(&self, scan: &LogScan) -> Result<(u64, Option<Lsn>)> {
        let mut replayed = 0;
        let mut last = None;
        for (lsn, record) in &scan.records {
            let end = lsn.0 + record::encoded_len(record) as u64;
            let mut state = self.state.lock().await;
            match record {
                Record::Commit { writes, .. } => {
                    for write in writes {
                        state.cache.prefetch(&self.data, &write.key).await?;
                    }
                    for write in writes {
                        state.cache.apply_loaded(&write.key, write.value.as_deref());
                    }
                    self.log_before_images(&mut state, end);
                }
                Record::PageCommit {
                    next_page_id, redo, ..
                } => {
                    self.replay_page_commit(&mut state, *next_page_id, redo, end)
                        .await?
                }
                _ => continue,
            }
            self.evict(&mut state).await?;
            replayed += 1;
            last = Some(*lsn);
        }
        Ok((replayed, last))
    }

    /// Fuzzy, after replay: a page of the tree whose slot failed to verify must have been
    /// repaired by a full-page image in the replayed log (every page written since the redo
    /// point has one). One that was not means the log ended before that image (its records
    /// were lost or damaged): corruption of the log, reported now instead of when the page is
    /// read.
    async fn check_torn_pages_repaired(&self, torn: &BTreeSet<u64>, scan: &LogScan) -> Result<()> {
        let state = self.state.lock().await;
        for &page_id in torn {
            if page_id >= state.cache.next_page_id || state.cache.is_cached(page_id) {
                continue;
            }
            let offset = state.cache.slot_offset(page_id);
            if let Err(Error::Corruption { detail, .. }) =
                read_slot_at(&self.data, offset, self.options.slot_bytes(), page_id).await
            {
                return Err(Error::corruption(
                    log::segment_name(scan.end_segment),
                    scan.end,
                    Structure::LogRecord,
                    format!(
                        "page {page_id}'s slot fails to verify ({detail}) and the log, which \
                         ends at LSN {} ({}), holds no full-page image to repair it",
                        scan.end, scan.stop_reason
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Creates an empty database: an empty root leaf made durable by checkpoint 1.
    ///
    /// The data file is built as [`CREATING_FILE`] and renamed into place once checkpoint 1 is
    /// durable, so a crash during creation leaves a directory that open knows to create into
    /// again (no commit was acknowledged yet), and a data file always has an anchor.
    async fn create(
        vfs: V,
        clock: C,
        options: Options,
        observer: Arc<dyn Observer>,
        names: &[String],
    ) -> Result<Self> {
        // Only an unfinished creation leaves files here (`refuse_unless_creatable`): they go,
        // while the file that marks it stays until the new creation truncates it.
        for name in names.iter().filter(|name| *name != CREATING_FILE) {
            vfs.remove(name)
                .await
                .map_err(|source| Error::io("remove", name.clone(), source))?;
        }
        let data = vfs
            .create(CREATING_FILE)
            .await
            .map_err(|source| Error::io("create", CREATING_FILE, source))?;
        let control_file = match options.strategy {
            Strategy::Fuzzy => Some(
                vfs.create(CONTROL_FILE)
                    .await
                    .map_err(|source| Error::io("create", CONTROL_FILE, source))?,
            ),
            _ => None,
        };
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
        let physical_log = (options.strategy == Strategy::PhysicalLog).then(|| {
            Log::named(
                PHYSICAL_LOG_PREFIX,
                0,
                0,
                None,
                BTreeSet::new(),
                options.log_segment_bytes,
                options.log_sector_bytes,
            )
        });
        let mut blocks = BlockTable::new();
        #[cfg(feature = "canary")]
        blocks.set_reuse_checkpointed(options.planted(Canary::ReuseCheckpointedBlock));
        let _ = &mut blocks;
        let mut cache = new_cache(&options, blocks, 0, 0, 0, 0);
        cache.root = cache.insert_new(Node::Leaf {
            entries: Vec::new(),
        });
        // The empty root is no commit's change: no redo or before-image is owed for it.
        let _ = cache.take_journal();
        let _ = cache.take_before_images();
        let state = State {
            cache,
            checkpoint_count: 0,
            checkpoint_lsn: Lsn(0),
            checkpoint_time: clock.now(),
            physical_log_start: 0,
        };
        let recovery = RecoveryReport {
            created: true,
            log_stop_reason: "created".into(),
            ..RecoveryReport::default()
        };
        let engine = Engine::assemble(
            vfs,
            clock,
            options,
            observer,
            data,
            log,
            control_file,
            physical_log,
            state,
            recovery,
        );
        let count = engine
            .checkpoint_for(Trigger::Startup)
            .await?
            .expect("a startup checkpoint is never skipped");
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

/// A cachetable for `options.strategy`: copy-on-write blocks (sharp) or slots, with the
/// strategy's write tracking. `redo_point` is the fuzzy strategy's, `interval` the physical
/// log's checkpoint number.
fn new_cache(
    options: &Options,
    blocks: BlockTable,
    root: u64,
    next_page_id: u64,
    redo_point: u64,
    interval: u64,
) -> Cachetable {
    let slots = |start| PageStore::Slots {
        start,
        slot_bytes: options.slot_bytes(),
    };
    let (store, tracking) = match options.strategy {
        Strategy::Sharp => (PageStore::Blocks(blocks), Tracking::PendingClones),
        Strategy::Fuzzy => (
            slots(0),
            Tracking::PageRedo(PageJournal {
                redo_point,
                ..PageJournal::default()
            }),
        ),
        Strategy::PhysicalLog => (
            slots(PHYSICAL_LOG_PAGES_START),
            Tracking::BeforeImages(BeforeImages {
                checkpoint_count: interval,
                ..BeforeImages::default()
            }),
        ),
    };
    let mut cache = Cachetable::new(
        store,
        tracking,
        root,
        next_page_id,
        options.cache_pages,
        options.page_size_bytes,
    );
    cache.ignore_pending_bit = options.planted(Canary::IgnorePendingBit);
    cache.skip_checksum = options.planted(Canary::SkipChecksum);
    cache
}

/// Step 1: the newest valid anchor slot, or None if both are empty (never checkpointed).
async fn find_anchor<V: Vfs>(
    vfs: &V,
    data: &V::File,
    data_len: u64,
    options: &Options,
    names: &[String],
) -> Result<Option<Anchor>> {
    match options.strategy {
        Strategy::Sharp => {
            let slots: [SlotState<Header>; 2] = [
                header::read_slot(
                    0,
                    &read_slot_bytes(data, DATA_FILE, data_len, header::HEADER_SLOT_OFFSETS[0])
                        .await?,
                ),
                header::read_slot(
                    1,
                    &read_slot_bytes(data, DATA_FILE, data_len, header::HEADER_SLOT_OFFSETS[1])
                        .await?,
                ),
            ];
            let choice = match header::choose(&slots) {
                HeaderChoice::Use { slot, .. } if options.planted(Canary::PreferOlderHeader) => {
                    older_header_with_its_log(&slots, slot, names).unwrap_or(header::choose(&slots))
                }
                choice => choice,
            };
            Ok(match choice {
                HeaderChoice::Use {
                    header,
                    slot,
                    warning,
                } => Some(Anchor {
                    checkpoint_count: header.checkpoint_count,
                    record_lsn: header.checkpoint_lsn,
                    replay_lsn: header.checkpoint_lsn,
                    slot,
                    warning: warning.map(|warning| format!("header {warning}")),
                    header: Some(header),
                    header_slots: Some(slots.clone()),
                    control: None,
                }),
                HeaderChoice::Fresh => None,
                HeaderChoice::Corrupt { reasons } => {
                    return Err(Error::corruption(
                        DATA_FILE,
                        0,
                        Structure::Headers,
                        format!("slot 0: {}; slot 1: {}", reasons[0], reasons[1]),
                    ))
                }
            })
        }
        Strategy::Fuzzy | Strategy::PhysicalLog => {
            let (file_name, expected, whole, describe) = if options.strategy == Strategy::Fuzzy {
                (
                    CONTROL_FILE,
                    control::STRATEGY_FUZZY,
                    Structure::ControlFile,
                    "control file",
                )
            } else {
                (
                    DATA_FILE,
                    control::STRATEGY_PHYSICAL_LOG,
                    Structure::ReservedPages,
                    "reserved page",
                )
            };
            let slots: [SlotState<Control>; 2] = if options.strategy == Strategy::Fuzzy {
                if !names.iter().any(|name| name == CONTROL_FILE) {
                    return Ok(None);
                }
                let file = vfs
                    .open(CONTROL_FILE)
                    .await
                    .map_err(|source| Error::io("open", CONTROL_FILE, source))?;
                let len = file
                    .len()
                    .await
                    .map_err(|source| Error::io("stat", CONTROL_FILE, source))?;
                [
                    control::read_slot(
                        0,
                        &read_slot_bytes(&file, CONTROL_FILE, len, CONTROL_SLOT_OFFSETS[0]).await?,
                    ),
                    control::read_slot(
                        1,
                        &read_slot_bytes(&file, CONTROL_FILE, len, CONTROL_SLOT_OFFSETS[1]).await?,
                    ),
                ]
            } else {
                [
                    control::read_slot(
                        0,
                        &read_slot_bytes(data, DATA_FILE, data_len, CONTROL_SLOT_OFFSETS[0])
                            .await?,
                    ),
                    control::read_slot(
                        1,
                        &read_slot_bytes(data, DATA_FILE, data_len, CONTROL_SLOT_OFFSETS[1])
                            .await?,
                    ),
                ]
            };
            match header::choose(&slots) {
                HeaderChoice::Use {
                    header: control,
                    slot,
                    warning,
                } => {
                    if control.strategy != expected {
                        return Err(Error::corruption(
                            file_name,
                            CONTROL_SLOT_OFFSETS[slot],
                            whole,
                            format!(
                                "written by strategy code {}, opened as {}",
                                control.strategy, options.strategy
                            ),
                        ));
                    }
                    Ok(Some(Anchor {
                        checkpoint_count: control.checkpoint_count,
                        record_lsn: control.checkpoint_lsn,
                        replay_lsn: control.redo_lsn,
                        slot,
                        warning: warning.map(|warning| format!("{describe} {warning}")),
                        header: None,
                        header_slots: None,
                        control: Some(control),
                    }))
                }
                HeaderChoice::Fresh => Ok(None),
                HeaderChoice::Corrupt { reasons } => Err(Error::corruption(
                    file_name,
                    0,
                    whole,
                    format!("slot 0: {}; slot 1: {}", reasons[0], reasons[1]),
                )),
            }
        }
    }
}

/// The bytes of the anchor slot at `offset` (fewer if the file ends first).
async fn read_slot_bytes<F: VfsFile>(
    file: &F,
    name: &str,
    file_len: u64,
    offset: u64,
) -> Result<Vec<u8>> {
    let readable = file_len.saturating_sub(offset).min(HEADER_BYTES as u64) as usize;
    let mut bytes = vec![0u8; readable];
    read_exact_at(file, offset, &mut bytes)
        .await
        .map_err(|source| Error::io("read", name, source))?;
    Ok(bytes)
}

/// Step 2: what the checkpoint needs before replay.
async fn load_checkpoint<V: Vfs>(
    vfs: &V,
    data: &V::File,
    data_len: u64,
    options: &Options,
    anchor: &Anchor,
) -> Result<Loaded<V>> {
    let mut loaded = Loaded {
        cache: new_cache(options, BlockTable::new(), 0, 0, 0, 0),
        physical_log: None,
        restored_pages: 0,
        deferred_restore: Vec::new(),
        discarded_log_bytes: 0,
    };
    match (&anchor.header, &anchor.control) {
        (Some(header), _) => {
            // The other slot read as no valid header (empty, or failing to verify) may hide a
            // newer checkpoint whose blocks lie in the space this one leaves free: a read
            // fault passes, and a later recovery reads that header again. So the space stays
            // untouched until the next header overwrites that slot.
            let other_unread = anchor
                .header_slots
                .as_ref()
                .is_some_and(|slots| !matches!(slots[1 - anchor.slot], SlotState::Valid(_)));
            let blocks =
                crate::strategy::load_translation(data, data_len, header, other_unread, options)
                    .await?;
            loaded.cache = new_cache(options, blocks, header.root_page, header.next_page_id, 0, 0);
        }
        (None, Some(control)) => {
            loaded.cache = new_cache(
                options,
                BlockTable::new(),
                0,
                control.next_page_id,
                control.redo_lsn.0,
                control.checkpoint_count,
            );
            if options.strategy == Strategy::PhysicalLog {
                let (physical_log, images, discarded) =
                    crate::strategy::read_physical_log(vfs, control, options).await?;
                loaded.physical_log = Some(physical_log);
                loaded.discarded_log_bytes += discarded;
                if options.planted(Canary::RestoreAfterRollForward) {
                    loaded.deferred_restore = images;
                } else {
                    loaded.restored_pages =
                        crate::strategy::restore_slots(data, options, &images).await?;
                }
            }
        }
        (None, None) => unreachable!("an anchor holds a header or a control record"),
    }
    Ok(loaded)
}

/// Step 3: reads the log from where replay starts and checks the record that identifies the
/// checkpoint.
async fn check_log<V: Vfs>(vfs: &V, anchor: &Anchor, options: &Options) -> Result<LogScan> {
    let scan = reader::scan_with(
        vfs,
        anchor.replay_lsn.0,
        reader::ScanFlaws::planted(options),
    )
    .await?;
    let found = scan
        .records
        .iter()
        .find(|(lsn, _)| *lsn == anchor.record_lsn)
        .map(|(_, record)| record);
    let matches = match (found, &anchor.control) {
        (Some(Record::BeginCheckpoint { checkpoint_count }), None) => {
            *checkpoint_count == anchor.checkpoint_count
        }
        (
            Some(Record::Checkpoint {
                checkpoint_count,
                redo_lsn,
                next_page_id,
                physical_log_start,
                ..
            }),
            Some(control),
        ) => {
            (
                *checkpoint_count,
                *redo_lsn,
                *next_page_id,
                *physical_log_start,
            ) == (
                control.checkpoint_count,
                control.redo_lsn,
                control.next_page_id,
                control.physical_log_start,
            )
        }
        _ => false,
    };
    if !matches {
        // The segment that held the checkpoint LSN is gone while an older one survived.
        let gone =
            found.is_none() && scan.end_segment + scan.end_segment_len <= anchor.record_lsn.0;
        let detail = if gone {
            format!(
                "no log segment holds the checkpoint LSN {}: this one ends before it",
                anchor.record_lsn
            )
        } else {
            format!(
                "no checkpoint record for checkpoint {} at LSN {} ({})",
                anchor.checkpoint_count, anchor.record_lsn, scan.stop_reason
            )
        };
        return Err(Error::corruption(
            log::segment_name(scan.end_segment),
            anchor.record_lsn.0,
            Structure::CheckpointRecord,
            detail,
        ));
    }

    if anchor.header.is_some() {
        // Falling back to an older header is safe only if the newer checkpoint never
        // completed: its end_checkpoint is logged before the blocks only the older one used are
        // freed. If the log holds a newer end_checkpoint, the newer header was durable and has
        // since been destroyed, and the older checkpoint's blocks may hold other data by now.
        let newer_end = scan.records.iter().find_map(|(lsn, record)| match record {
            Record::EndCheckpoint {
                checkpoint_count, ..
            } if *checkpoint_count > anchor.checkpoint_count => Some((*lsn, *checkpoint_count)),
            _ => None,
        });
        if let Some((lsn, newer)) = newer_end {
            return Err(Error::corruption(
                DATA_FILE,
                header::HEADER_SLOT_OFFSETS[(newer % 2) as usize],
                Structure::HeaderSlot((newer % 2) as u8),
                format!(
                    "the log ends checkpoint {newer} at LSN {lsn}, but its header is unusable and \
                     the older checkpoint {}'s blocks may have been reused",
                    anchor.checkpoint_count
                ),
            ));
        }
    }
    Ok(scan)
}

/// Step 3, in-place strategies: every page slot must agree with the log. No page may reflect a
/// record the log does not hold: a fuzzy page's LSN must not pass the log's end (the
/// write-ahead rule); a physical-log page must, its before-image restored, be exactly as the
/// checkpoint left it. And no slot may hold an older page than the checkpoint record says it
/// does (a write that was lost or landed elsewhere). Breaking either means the disk lost
/// something the engine relied on: corruption, not a state to guess from. Returns the LSN each
/// verified slot holds, which the cache checks later reads against, and (fuzzy) the pages whose
/// slots fail to verify, which replay must repair.
async fn check_pages_against_log<F: VfsFile>(
    data: &F,
    data_len: u64,
    options: &Options,
    anchor: &Anchor,
    scan: &LogScan,
) -> Result<(BTreeMap<u64, u64>, BTreeSet<u64>)> {
    let slot_bytes = options.slot_bytes();
    let control = anchor
        .control
        .as_ref()
        .expect("in-place anchors hold control records");
    let expected: &[u64] = scan
        .records
        .iter()
        .find_map(|(lsn, record)| match record {
            Record::Checkpoint { page_lsns, .. } if *lsn == anchor.record_lsn => {
                Some(page_lsns.as_slice())
            }
            _ => None,
        })
        .unwrap_or_default();
    let strict = options.strategy == Strategy::PhysicalLog;
    let (start, pages, bound) = if strict {
        (
            PHYSICAL_LOG_PAGES_START,
            control.next_page_id,
            anchor.record_lsn.0,
        )
    } else {
        (
            0,
            data_len.div_ceil(slot_bytes).max(expected.len() as u64),
            scan.end,
        )
    };
    // Fuzzy: a page the replay touches starts from its full-page image, so its slot may hold
    // any state at all; only the others must hold what the checkpoint left.
    let redone: BTreeSet<u64> = scan
        .records
        .iter()
        .flat_map(|(_, record)| match record {
            Record::PageCommit { redo, .. } => redo.iter().map(|entry| entry.page_id()).collect(),
            _ => Vec::new(),
        })
        .collect();
    let mut found = BTreeMap::new();
    let mut torn = BTreeSet::new();
    for page_id in 0..pages {
        let offset = start + page_id * slot_bytes;
        let want = expected
            .get(page_id as usize)
            .copied()
            .filter(|&lsn| lsn != record::UNKNOWN_PAGE_LSN);
        let lsn = match read_slot_at(data, offset, slot_bytes, page_id).await {
            Ok(Some((_, lsn))) => Some(lsn),
            // A fuzzy page torn by the crash is repaired by its full-page image in the
            // replay, or found by the read that needs it.
            Err(Error::Corruption { .. }) if !strict => {
                torn.insert(page_id);
                continue;
            }
            // A physical-log page torn after the checkpoint is restored from its before-image;
            // one still torn had none in the physical log.
            Err(Error::Corruption { detail, .. }) => {
                return Err(Error::corruption(
                    log::prefixed_segment_name(PHYSICAL_LOG_PREFIX, control.physical_log_start),
                    bound,
                    Structure::PhysicalLogRecord,
                    format!(
                        "page {page_id}'s slot fails to verify ({detail}) and the physical log \
                         holds no before-image to restore it"
                    ),
                ))
            }
            Ok(None) => None,
            Err(error) => return Err(error),
        };
        let ahead =
            lsn.is_some_and(|lsn| lsn > bound || (strict && want.is_some_and(|want| lsn > want)));
        if let (true, Some(lsn)) = (ahead, lsn) {
            let (file, structure, what) = if strict {
                (
                    log::prefixed_segment_name(PHYSICAL_LOG_PREFIX, control.physical_log_start),
                    Structure::PhysicalLogRecord,
                    format!(
                        "page {page_id} reflects LSN {lsn}, past checkpoint {}'s state, but the \
                         physical log holds no before-image for it",
                        anchor.checkpoint_count
                    ),
                )
            } else {
                (
                    log::segment_name(scan.end_segment),
                    Structure::LogRecord,
                    format!(
                        "page {page_id} reflects LSN {lsn}, past the end of the log at {bound}: \
                         the log lost records the data file depends on"
                    ),
                )
            };
            return Err(Error::corruption(file, bound, structure, what));
        }
        let behind = match (lsn, want) {
            (Some(lsn), Some(want)) => lsn < want,
            (None, Some(_)) => true,
            (None, None) => strict,
            (Some(_), None) => false,
        };
        if behind && (strict || !redone.contains(&page_id)) {
            let holds = lsn.map_or("nothing".to_string(), |lsn| format!("LSN {lsn}"));
            let wanted = want.map_or("the page".to_string(), |want| format!("LSN {want}"));
            return Err(Error::corruption(
                DATA_FILE,
                offset,
                Structure::Page(page_id),
                format!(
                    "the slot holds {holds}, but checkpoint {} left {wanted} there: a write \
                     was lost or went elsewhere",
                    anchor.checkpoint_count
                ),
            ));
        }
        if let Some(lsn) = lsn {
            found.insert(page_id, lsn);
        }
    }
    Ok((found, torn))
}

/// Step 5: cuts the log named by `prefix` at its valid end (the torn tail of the end segment
/// and every later segment go) and returns it positioned to append there, with the bytes cut.
pub(crate) async fn cut_log<V: Vfs>(
    vfs: &V,
    prefix: &'static str,
    scan: &LogScan,
    options: &Options,
) -> Result<(Log<V>, u64)> {
    let name = |start| log::prefixed_segment_name(prefix, start);
    let mut discarded = 0;
    let mut segments = BTreeSet::new();
    let mut removed_any = false;
    for (&start, &len) in &scan.segments {
        if start > scan.end_segment {
            vfs.remove(&name(start))
                .await
                .map_err(|source| Error::io("remove", name(start), source))?;
            discarded += len;
            removed_any = true;
        } else {
            segments.insert(start);
        }
    }
    let valid_len = scan.end - scan.end_segment;
    let end_file = if scan.segments.contains_key(&scan.end_segment) {
        let end_name = name(scan.end_segment);
        let end_file = vfs
            .open(&end_name)
            .await
            .map_err(|source| Error::io("open", end_name.clone(), source))?;
        if scan.end_segment_len > valid_len {
            discarded += scan.end_segment_len - valid_len;
            end_file
                .set_len(valid_len)
                .await
                .map_err(|source| Error::io("truncate", end_name.clone(), source))?;
            end_file
                .sync()
                .await
                .map_err(|source| Error::io("sync", end_name.clone(), source))?;
        }
        Some(end_file)
    } else {
        None
    };
    if removed_any {
        vfs.sync_dir()
            .await
            .map_err(|source| Error::io("sync", vfs.location(), source))?;
    }
    // Appending inside a sector that holds durable records would let a torn write garble
    // them, so unless the valid log ends on a sector boundary, new records go to a new
    // segment starting at the log's end.
    let in_place = valid_len.is_multiple_of(options.log_sector_bytes)
        || options.planted(Canary::AppendInDurableSector);
    let (append_segment, append_file) = match end_file {
        Some(file) if in_place => (scan.end_segment, Some(file)),
        _ => (scan.end, None),
    };
    let log = Log::named(
        prefix,
        scan.end,
        append_segment,
        append_file,
        segments,
        options.log_segment_bytes,
        options.log_sector_bytes,
    );
    Ok((log, discarded))
}

/// The planted `prefer-older-header` bug: when both header slots verify and the log still
/// holds the older checkpoint's LSN, use the older one. Recovery then replays more and ends in
/// the same state, so only a check of which checkpoint was durable can tell.
fn older_header_with_its_log(
    slots: &[SlotState<Header>; 2],
    newer: usize,
    names: &[String],
) -> Option<HeaderChoice> {
    let SlotState::Valid(older) = &slots[1 - newer] else {
        return None;
    };
    let held = names
        .iter()
        .filter_map(|name| log::parse_segment_name(name))
        .any(|start| start <= older.checkpoint_lsn.0);
    held.then(|| HeaderChoice::Use {
        header: older.clone(),
        slot: 1 - newer,
        warning: None,
    })
}

/// The data file's name while creation builds it; see `create`.
pub const CREATING_FILE: &str = "data.creating";

/// What holds a strategy's anchor, for errors about it.
fn anchor_structure(strategy: Strategy) -> Structure {
    match strategy {
        Strategy::Sharp => Structure::Headers,
        Strategy::Fuzzy => Structure::ControlFile,
        Strategy::PhysicalLog => Structure::ReservedPages,
    }
}

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
/// creation: [`CREATING_FILE`] and what that creation wrote (log segments, the physical log,
/// the control file). Creation starts only in an empty directory and renames its data file into
/// place before open returns, so every such file beside it is creation's own, and no commit was
/// acknowledged. Anything else (log segments of a database whose data file is gone, or files
/// that are not the engine's) is refused, so open never creates over data it does not
/// understand.
fn refuse_unless_creatable(location: &str, names: &[String]) -> Result<()> {
    let creation_wrote =
        |name: &String| name == CREATING_FILE || name == CONTROL_FILE || log::is_log_file(name);
    let unfinished_creation =
        names.iter().any(|name| name == CREATING_FILE) && names.iter().all(creation_wrote);
    if names.is_empty() || unfinished_creation {
        return Ok(());
    }
    let segments = names.iter().filter(|name| log::is_log_file(name)).count();
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
    slots: &[SlotState<Header>; 2],
    chosen: usize,
    header: &Header,
) -> Error {
    let other = 1 - chosen;
    let (
        Error::Corruption {
            structure: Structure::CheckpointRecord,
            ..
        },
        SlotState::Invalid { reason },
    ) = (&error, &slots[other])
    else {
        return error;
    };
    Error::corruption(
        DATA_FILE,
        header::HEADER_SLOT_OFFSETS[other],
        Structure::HeaderSlot(other as u8),
        format!(
            "{reason}; the older checkpoint {} in slot {chosen} needs the log from LSN {}, which \
             is gone",
            header.checkpoint_count, header.checkpoint_lsn
        ),
    )
}
