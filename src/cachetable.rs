//! The cachetable: a bounded map of B+tree pages with per-page dirty, checkpoint-pending and
//! write-in-progress flags and page LSNs, where pages live on disk (the page store), what a
//! modification must leave behind for the strategy (write tracking), and eviction's choice of
//! victim.
//!
//! Page stores: the sharp strategy writes copy-on-write blocks through the three translations
//! ([`PageStore::Blocks`]); the in-place strategies give page `id` a fixed slot
//! ([`PageStore::Slots`]).
//!
//! Write tracking, done on every page modification ([`Cachetable::node_mut`]):
//! - sharp: a page marked pending at begin_checkpoint must reach the checkpoint as it was at
//!   begin. A writer that meets a pending page clones it for the checkpoint first and then
//!   modifies the live page (TokuDB's "writers help"), so writers never wait for checkpoint
//!   I/O. A pending page evicted before the checkpoint wrote it is written once and serves
//!   both tables.
//! - fuzzy: the pages a commit touched and its leaf deltas, from which the commit's per-page
//!   redo record is built (a full image on a page's first change after the redo point, on a
//!   split, and for a new page).
//! - physical log: a page's node as it was before its first modification since the
//!   checkpoint number advanced (its before-image), for the physical log.

use std::collections::{BTreeMap, BTreeSet};

use crate::allocator::BlockTable;
use crate::error::{Error, Result, Structure};
use crate::format::page::{self, Node, SlotContent};
use crate::format::translation::BlockRef;
use crate::types::{Lsn, PageId};
use crate::vfs::{read_exact_at, VfsFile};

/// Name of the data file, used in errors and by the engine.
pub const DATA_FILE: &str = "data";

#[derive(Debug)]
pub(crate) struct CachedPage {
    pub node: Node,
    pub dirty: bool,
    /// Must be written for the checkpoint in progress before it is modified.
    pub pending: bool,
    /// Set from the cachetable-wide counter on every load and modification, so a checkpoint
    /// write can tell whether the page it wrote is still the live version. A per-page count
    /// would restart when an evicted page is read back and could match a stale write.
    pub version: u64,
    pub last_used: u64,
    /// The end LSN of the last redo record this page reflects (in-place strategies); 0 for a
    /// page no record changed. The log must be durable through it before the page is
    /// written, and replay applies a record to the page only if this is below the record's
    /// end.
    pub lsn: u64,
    /// A checkpoint is writing this page in place right now: eviction must not write an
    /// older or newer version over it, so the page stays cached until the write returns.
    pub writing: bool,
}

/// Where pages live on disk.
#[derive(Debug)]
pub(crate) enum PageStore {
    /// Copy-on-write blocks through the three translations (sharp).
    Blocks(BlockTable),
    /// Page `id` always lives at `start + id * slot_bytes` (fuzzy, physical log).
    Slots { start: u64, slot_bytes: u64 },
}

/// What a page modification must leave behind, per strategy.
#[derive(Debug)]
pub(crate) enum Tracking {
    /// Sharp: clone a page pending for the checkpoint in progress before modifying it.
    PendingClones,
    /// Fuzzy: which pages the commit in progress touched, for its per-page redo.
    PageRedo(PageJournal),
    /// Physical log: before-images of pages first modified since the checkpoint number
    /// advanced.
    BeforeImages(BeforeImages),
}

/// A leaf put (`Some` value) or delete (`None`): page, key, value.
pub(crate) type Delta = (PageId, Vec<u8>, Option<Vec<u8>>);

/// The fuzzy strategy's record of one commit's page changes.
#[derive(Debug, Default)]
pub(crate) struct PageJournal {
    /// The redo point of the latest checkpoint: a page whose LSN is below it changes for the
    /// first time since, and is logged as a full-page image.
    pub redo_point: u64,
    /// Pages touched since the last take, and whether each needs a full image regardless of
    /// its LSN (new pages and pages a split changed).
    pub touched: BTreeMap<PageId, bool>,
    /// Leaf puts (`Some`) and deletes (`None`), in order.
    pub deltas: Vec<Delta>,
}

/// The physical-log strategy's before-image bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct BeforeImages {
    /// The checkpoint whose interval this is: images taken now restore its state.
    pub checkpoint_count: u64,
    /// Pages already imaged (or created) in this interval.
    pub imaged: BTreeSet<PageId>,
    /// Images taken but not yet appended to the physical log: page, its LSN then, node.
    pub pending: Vec<(PageId, u64, Node)>,
    /// Pages the commit in progress modified, to stamp with its record's end.
    pub touched: BTreeSet<PageId>,
}

/// A page encoded for a write in place, marked as being written.
#[derive(Debug)]
pub(crate) struct SlotWrite {
    pub page_id: PageId,
    pub offset: u64,
    pub bytes: Vec<u8>,
    pub lsn: u64,
    pub version: u64,
}

/// What begin_checkpoint captured, kept until end_checkpoint finishes or is abandoned.
#[derive(Debug)]
pub(crate) struct PendingCheckpoint {
    pub count: u64,
    pub lsn: Lsn,
    /// The header copy: tree root and page id high-water mark as of begin.
    pub root: PageId,
    pub next_page_id: PageId,
    /// Begin-time copies of pending pages that writers modified since.
    pub clones: BTreeMap<PageId, Node>,
    /// The header write was issued: the header may be on disk, so this checkpoint's blocks
    /// must never be freed, whatever fails afterwards.
    pub header_written: bool,
}

/// A page encoded for the checkpoint, with a block reserved for it.
#[derive(Debug)]
pub(crate) struct PreparedPage {
    pub page_id: PageId,
    pub block: BlockRef,
    pub bytes: Vec<u8>,
    /// The live page's version when encoded, or None if a clone was encoded.
    pub version: Option<u64>,
}

pub(crate) struct Cachetable {
    pages: BTreeMap<PageId, CachedPage>,
    tick: u64,
    /// Source of page versions; only grows.
    versions: u64,
    capacity: usize,
    pub page_size_bytes: usize,
    pub store: PageStore,
    pub tracking: Tracking,
    /// In-place strategies: the LSN each page's slot holds on disk, as far as the engine knows
    /// (it wrote or read it). A slot read back with another LSN lost a write.
    pub disk_lsns: BTreeMap<PageId, u64>,
    pub root: PageId,
    /// The root never moves (a root split moves its contents to a new page): the in-place
    /// strategies' redo and checkpoint records then need no root pointer.
    pub root_fixed: bool,
    pub next_page_id: PageId,
    pub checkpoint: Option<PendingCheckpoint>,
    /// Skip the clone-on-write of pending pages (a planted bug).
    pub ignore_pending_bit: bool,
    /// Skip block checksum verification on read (a planted bug).
    pub skip_checksum: bool,
}

impl Cachetable {
    pub fn new(
        store: PageStore,
        tracking: Tracking,
        root: PageId,
        next_page_id: PageId,
        capacity: usize,
        page_size_bytes: usize,
    ) -> Self {
        let root_fixed = matches!(store, PageStore::Slots { .. });
        Self {
            pages: BTreeMap::new(),
            tick: 0,
            versions: 0,
            capacity,
            page_size_bytes,
            store,
            tracking,
            disk_lsns: BTreeMap::new(),
            root,
            root_fixed,
            next_page_id,
            checkpoint: None,
            ignore_pending_bit: false,
            skip_checksum: false,
        }
    }

    pub fn dirty_pages(&self) -> usize {
        self.pages.values().filter(|page| page.dirty).count()
    }

    /// The ids of the dirty pages, ascending.
    pub fn dirty_page_ids(&self) -> Vec<PageId> {
        self.pages
            .iter()
            .filter(|(_, page)| page.dirty)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The copy-on-write block table (the sharp strategy's store).
    pub fn blocks(&mut self) -> &mut BlockTable {
        match &mut self.store {
            PageStore::Blocks(blocks) => blocks,
            PageStore::Slots { .. } => unreachable!("only the sharp strategy has a block table"),
        }
    }

    /// Where page `id`'s slot starts (the in-place strategies' store).
    pub fn slot_offset(&self, id: PageId) -> u64 {
        match self.store {
            PageStore::Slots { start, slot_bytes } => start + id * slot_bytes,
            PageStore::Blocks(_) => unreachable!("only the in-place strategies have slots"),
        }
    }

    /// Makes sure `id` is in the cache, reading and verifying its block if needed.
    pub async fn load<F: VfsFile>(&mut self, file: &F, id: PageId) -> Result<()> {
        self.tick += 1;
        if let Some(page) = self.pages.get_mut(&id) {
            page.last_used = self.tick;
            return Ok(());
        }
        let (node, lsn) = match &self.store {
            PageStore::Blocks(blocks) => (self.read_block(file, blocks, id).await?, 0),
            PageStore::Slots { .. } => self.read_slot(file, id).await?,
        };
        self.insert_loaded(id, node, lsn);
        Ok(())
    }

    /// Caches a page read from disk (or restored by redo), clean.
    pub fn insert_loaded(&mut self, id: PageId, node: Node, lsn: u64) {
        self.tick += 1;
        self.versions += 1;
        self.pages.insert(
            id,
            CachedPage {
                node,
                dirty: false,
                pending: false,
                version: self.versions,
                last_used: self.tick,
                lsn,
                writing: false,
            },
        );
    }

    async fn read_block<F: VfsFile>(
        &self,
        file: &F,
        blocks: &BlockTable,
        id: PageId,
    ) -> Result<Node> {
        let block = blocks.current_block(id).ok_or_else(|| {
            Error::corruption(
                DATA_FILE,
                0,
                Structure::Page(id),
                "page is not in the current translation",
            )
        })?;
        let mut bytes = vec![0u8; block.len as usize];
        read_exact_at(file, block.offset, &mut bytes)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::UnexpectedEof => Error::corruption(
                    DATA_FILE,
                    block.offset,
                    Structure::Page(id),
                    "page block lies past the end of the file",
                ),
                _ => Error::io("read", DATA_FILE, source),
            })?;
        if !self.skip_checksum && !block.verify(&bytes) {
            return Err(Error::corruption(
                DATA_FILE,
                block.offset,
                Structure::Page(id),
                format!(
                    "block checksum mismatch (expected {:#010x})",
                    block.checksum
                ),
            ));
        }
        page::decode_block(id, &bytes).map_err(|detail| {
            Error::corruption(DATA_FILE, block.offset, Structure::Page(id), detail)
        })
    }

    /// Reads page `id`'s slot: its node and page LSN. A slot never written, or past the end of
    /// the file, is corruption: the tree references the page.
    async fn read_slot<F: VfsFile>(&mut self, file: &F, id: PageId) -> Result<(Node, u64)> {
        let offset = self.slot_offset(id);
        let found = read_slot_at(file, offset, self.slot_len(), id).await?;
        let expected = self.disk_lsns.get(&id).copied();
        match (found, expected) {
            (Some((node, lsn)), Some(expected)) if lsn != expected => {
                let _ = node;
                Err(Error::corruption(
                    DATA_FILE,
                    offset,
                    Structure::Page(id),
                    format!(
                        "the slot holds the page at LSN {lsn}, but its last write carried LSN \
                         {expected}: a write was lost or went elsewhere"
                    ),
                ))
            }
            (Some((node, lsn)), _) => {
                self.disk_lsns.insert(id, lsn);
                Ok((node, lsn))
            }
            (None, _) => Err(Error::corruption(
                DATA_FILE,
                offset,
                Structure::Page(id),
                "the page's slot was never written",
            )),
        }
    }

    /// The LSN each page below `pages` holds on disk as far as the engine knows, or, with
    /// `cached`, as the cache holds it: the map a checkpoint record carries.
    pub fn page_lsn_map(&self, pages: PageId, cached: bool) -> Vec<u64> {
        (0..pages)
            .map(|id| {
                let in_cache = cached.then(|| self.pages.get(&id).map(|page| page.lsn));
                in_cache
                    .flatten()
                    .or_else(|| self.disk_lsns.get(&id).copied())
                    .unwrap_or(crate::format::record::UNKNOWN_PAGE_LSN)
            })
            .collect()
    }

    fn slot_len(&self) -> u64 {
        match self.store {
            PageStore::Slots { slot_bytes, .. } => slot_bytes,
            PageStore::Blocks(_) => unreachable!("only the in-place strategies have slots"),
        }
    }

    /// The cached node `id`; the caller loaded it.
    pub fn node(&self, id: PageId) -> &Node {
        &self
            .pages
            .get(&id)
            .expect("page was loaded before use")
            .node
    }

    /// The cached node `id` for modification: a pending page is cloned for the checkpoint
    /// first, then the page is marked dirty.
    pub fn node_mut(&mut self, id: PageId) -> &mut Node {
        let page = self
            .pages
            .get_mut(&id)
            .expect("page was loaded before modification");
        match &mut self.tracking {
            Tracking::PendingClones => {
                if page.pending && !self.ignore_pending_bit {
                    let checkpoint = self
                        .checkpoint
                        .as_mut()
                        .expect("a pending page implies a checkpoint in progress");
                    checkpoint.clones.insert(id, page.node.clone());
                    page.pending = false;
                }
            }
            Tracking::PageRedo(journal) => {
                journal.touched.entry(id).or_insert(false);
            }
            Tracking::BeforeImages(images) => {
                if images.imaged.insert(id) {
                    images.pending.push((id, page.lsn, page.node.clone()));
                }
                images.touched.insert(id);
            }
        }
        page.dirty = true;
        self.versions += 1;
        page.version = self.versions;
        &mut page.node
    }

    /// Adds a brand-new page (from a split) to the cache.
    pub fn insert_new(&mut self, node: Node) -> PageId {
        let id = self.next_page_id;
        self.next_page_id += 1;
        self.tick += 1;
        self.versions += 1;
        self.pages.insert(
            id,
            CachedPage {
                node,
                dirty: true,
                pending: false,
                version: self.versions,
                last_used: self.tick,
                lsn: 0,
                writing: false,
            },
        );
        match &mut self.tracking {
            Tracking::PendingClones => {}
            Tracking::PageRedo(journal) => {
                journal.touched.insert(id, true);
            }
            // A page made in this interval is not in the checkpoint's tree: nothing to restore.
            Tracking::BeforeImages(images) => {
                images.imaged.insert(id);
                images.touched.insert(id);
            }
        }
        id
    }

    /// A leaf received a put (`Some`) or a delete (`None`): the fuzzy strategy logs it as a
    /// delta unless the page needs a full image.
    pub fn note_delta(&mut self, leaf: PageId, key: &[u8], value: Option<&[u8]>) {
        if let Tracking::PageRedo(journal) = &mut self.tracking {
            journal
                .deltas
                .push((leaf, key.to_vec(), value.map(<[u8]>::to_vec)));
        }
    }

    /// A split changed `id` beyond what deltas describe: the fuzzy strategy logs its image.
    pub fn note_structural(&mut self, id: PageId) {
        if let Tracking::PageRedo(journal) = &mut self.tracking {
            journal.touched.insert(id, true);
        }
    }

    /// The fuzzy strategy's current redo point (0 for the others).
    pub fn redo_point(&self) -> u64 {
        match &self.tracking {
            Tracking::PageRedo(journal) => journal.redo_point,
            _ => 0,
        }
    }

    /// Fuzzy: a checkpoint took its redo point; pages changed for the first time since are
    /// logged as full images.
    pub fn set_redo_point(&mut self, redo_point: u64) {
        if let Tracking::PageRedo(journal) = &mut self.tracking {
            journal.redo_point = redo_point;
        }
    }

    /// Physical log: checkpoint `count` advanced the checkpoint number; every page's next first
    /// modification takes a before-image again.
    pub fn advance_checkpoint_number(&mut self, count: u64) {
        if let Tracking::BeforeImages(images) = &mut self.tracking {
            images.checkpoint_count = count;
            images.imaged.clear();
        }
    }

    /// Physical log: the checkpoint whose interval before-images are taken in now.
    pub fn before_image_interval(&self) -> u64 {
        match &self.tracking {
            Tracking::BeforeImages(images) => images.checkpoint_count,
            _ => 0,
        }
    }

    /// The page LSN of a cached page.
    pub fn page_lsn(&self, id: PageId) -> u64 {
        self.pages.get(&id).map_or(0, |page| page.lsn)
    }

    /// Stamps cached pages with the LSN of the record that changed them.
    pub fn set_lsn(&mut self, ids: impl IntoIterator<Item = PageId>, lsn: u64) {
        for id in ids {
            if let Some(page) = self.pages.get_mut(&id) {
                page.lsn = lsn;
            }
        }
    }

    /// Puts a page restored by redo (a full-page image or a delta applied) in the cache,
    /// dirty, at `lsn`.
    pub fn restore_page(&mut self, id: PageId, node: Node, lsn: u64) {
        self.insert_loaded(id, node, lsn);
        let page = self.pages.get_mut(&id).expect("just inserted");
        page.dirty = true;
    }

    /// A cached page's node for redo to change in place, marking it dirty at `lsn`; the caller
    /// loaded it. No write tracking: redo only repeats what the log already holds.
    pub fn redo_node(&mut self, id: PageId, lsn: u64) -> &mut Node {
        let page = self
            .pages
            .get_mut(&id)
            .expect("page was loaded before redo");
        page.dirty = true;
        page.lsn = lsn;
        self.versions += 1;
        page.version = self.versions;
        &mut page.node
    }

    /// Takes the fuzzy strategy's record of the pages touched since the last take.
    pub fn take_journal(&mut self) -> (BTreeMap<PageId, bool>, Vec<Delta>) {
        match &mut self.tracking {
            Tracking::PageRedo(journal) => (
                std::mem::take(&mut journal.touched),
                std::mem::take(&mut journal.deltas),
            ),
            _ => (BTreeMap::new(), Vec::new()),
        }
    }

    /// Takes the before-images not yet appended to the physical log, and the pages modified
    /// since the last take.
    pub fn take_before_images(&mut self) -> (Vec<(PageId, u64, Node)>, BTreeSet<PageId>) {
        match &mut self.tracking {
            Tracking::BeforeImages(images) => (
                std::mem::take(&mut images.pending),
                std::mem::take(&mut images.touched),
            ),
            _ => (Vec::new(), BTreeSet::new()),
        }
    }

    /// Encodes page `id` for a write in place and marks it as being written; None if it is not
    /// cached, not dirty, or already being written.
    pub fn prepare_slot_write(&mut self, id: PageId) -> Option<SlotWrite> {
        let offset = self.slot_offset(id);
        let slot_bytes = self.slot_len();
        let page = self.pages.get_mut(&id)?;
        if !page.dirty || page.writing {
            return None;
        }
        page.writing = true;
        Some(SlotWrite {
            page_id: id,
            offset,
            bytes: page::encode_slot(id, page.lsn, &page.node, slot_bytes),
            lsn: page.lsn,
            version: page.version,
        })
    }

    /// A write in place returned: the page may be evicted again, and if it was written as it
    /// still is, it is clean.
    pub fn slot_written(&mut self, write: &SlotWrite, ok: bool) {
        // A failed write may have landed in part: what the slot holds is unknown now.
        if ok {
            self.disk_lsns.insert(write.page_id, write.lsn);
        } else {
            self.disk_lsns.remove(&write.page_id);
        }
        if let Some(page) = self.pages.get_mut(&write.page_id) {
            page.writing = false;
            if ok && page.version == write.version {
                page.dirty = false;
            }
        }
    }

    /// begin_checkpoint's step: every dirty page becomes pending. Returns how many.
    pub fn set_pending_bits(&mut self) -> usize {
        let mut marked = 0;
        for page in self.pages.values_mut().filter(|page| page.dirty) {
            page.pending = true;
            marked += 1;
        }
        marked
    }

    /// Pages the checkpoint in progress must still write: begin-time clones and pending pages.
    /// The set only shrinks after begin_checkpoint, so this list covers every later clone.
    pub fn checkpoint_page_ids(&self) -> Vec<PageId> {
        let checkpoint = self.checkpoint.as_ref().expect("runs inside a checkpoint");
        let mut ids: Vec<PageId> = checkpoint.clones.keys().copied().collect();
        ids.extend(
            self.pages
                .iter()
                .filter(|(_, page)| page.pending)
                .map(|(id, _)| *id),
        );
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Encodes one page for the checkpoint (its clone if a writer made one, else the pending
    /// page as it is, clearing the bit) and reserves its block in the inprogress translation.
    /// None if the page no longer needs writing (eviction wrote it for the checkpoint).
    pub fn prepare_checkpoint_page(&mut self, page_id: PageId) -> Option<PreparedPage> {
        let checkpoint = self.checkpoint.as_mut().expect("runs inside a checkpoint");
        let (bytes, version) = match checkpoint.clones.remove(&page_id) {
            Some(node) => (page::encode_block(page_id, &node), None),
            None => {
                let page = self.pages.get_mut(&page_id).filter(|page| page.pending)?;
                page.pending = false;
                (page::encode_block(page_id, &page.node), Some(page.version))
            }
        };
        let blocks = self.blocks();
        let offset = blocks.allocate(bytes.len() as u32);
        let block = BlockRef::of(offset, &bytes);
        blocks.set_inprogress(page_id, block);
        Some(PreparedPage {
            page_id,
            block,
            bytes,
            version,
        })
    }

    /// A checkpoint failed midway: forget its clones and pending bits (the pages stay dirty, so
    /// the next checkpoint writes their live versions) and drop the inprogress translation.
    pub fn abandon_checkpoint(&mut self) {
        if let Some(checkpoint) = self.checkpoint.take() {
            for page in self.pages.values_mut() {
                page.pending = false;
            }
            // Once the header write was issued the header may be durable and point at these
            // blocks; they stay referenced. Every failure from there on poisons the engine, so
            // no later checkpoint needs the inprogress translation freed.
            if !checkpoint.header_written {
                if let PageStore::Blocks(blocks) = &mut self.store {
                    blocks.abandon_checkpoint();
                    debug_assert_eq!(blocks.check(), Ok(()), "after abandoning a checkpoint");
                }
            }
        }
    }

    /// After a checkpoint page write: if the live page is still the version written, it is
    /// clean and the current translation can point at the new block too.
    pub fn checkpoint_page_written(&mut self, prepared: &PreparedPage) {
        let Some(version) = prepared.version else {
            return;
        };
        if let Some(page) = self.pages.get_mut(&prepared.page_id) {
            if page.dirty && page.version == version {
                page.dirty = false;
                if let PageStore::Blocks(blocks) = &mut self.store {
                    blocks.set_current(prepared.page_id, prepared.block);
                }
            }
        }
    }

    /// The page to evict next while the cache is over capacity: the least recently used one
    /// that no checkpoint is writing. None when within capacity (or every page is being
    /// written; the cache then overshoots until the writes return).
    pub fn eviction_victim(&self) -> Option<PageId> {
        if self.pages.len() <= self.capacity {
            return None;
        }
        self.pages
            .iter()
            .filter(|(_, page)| !page.writing)
            .min_by_key(|(id, page)| (page.last_used, **id))
            .map(|(id, _)| *id)
    }

    pub fn is_cached(&self, id: PageId) -> bool {
        self.pages.contains_key(&id)
    }

    pub fn is_dirty(&self, id: PageId) -> bool {
        self.pages.get(&id).is_some_and(|page| page.dirty)
    }

    /// Drops a page from the cache; the caller wrote it first if it was dirty.
    pub fn remove(&mut self, id: PageId) {
        self.pages.remove(&id);
    }

    /// Writes a dirty victim to a fresh block referenced by the current translation (sharp).
    /// If that write fails the page stays cached and dirty (the data is safe in memory and in
    /// the log).
    pub async fn write_evicted_block<F: VfsFile>(
        &mut self,
        file: &F,
        victim: PageId,
    ) -> Result<()> {
        let page = &self.pages[&victim];
        let bytes = page::encode_block(victim, &page.node);
        let pending = page.pending;
        let blocks = self.blocks();
        let offset = blocks.allocate(bytes.len() as u32);
        let block = BlockRef::of(offset, &bytes);
        if let Err(source) = file.write_at(offset, &bytes).await {
            self.blocks().release_reserved(offset);
            return Err(Error::io("write", DATA_FILE, source));
        }
        let blocks = self.blocks();
        blocks.set_current(victim, block);
        if pending {
            // The page is unchanged since begin_checkpoint: this one write serves the
            // checkpoint too.
            blocks.set_inprogress(victim, block);
        }
        Ok(())
    }

    /// Drops every cached page without writing (after a checkpoint is abandoned nothing
    /// needs this; used when closing).
    pub fn clear(&mut self) {
        self.pages.clear();
    }
}

/// Reads and verifies the slot at `offset` for page `id`: None if it was never written (all
/// zeros, or past the end of the file).
pub(crate) async fn read_slot_at<F: VfsFile>(
    file: &F,
    offset: u64,
    slot_bytes: u64,
    id: PageId,
) -> Result<Option<(Node, u64)>> {
    let mut bytes = vec![0u8; slot_bytes as usize];
    let mut filled = 0;
    // Each pass fills at least one byte or stops, so it runs at most slot_bytes times.
    while filled < bytes.len() {
        let read = file
            .read_at(offset + filled as u64, &mut bytes[filled..])
            .await
            .map_err(|source| Error::io("read", DATA_FILE, source))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    if filled == 0 {
        return Ok(None);
    }
    match page::decode_slot(id, &bytes) {
        Ok(SlotContent::Empty) => Ok(None),
        Ok(SlotContent::Page { node, lsn }) => Ok(Some((node, lsn))),
        Err(detail) => Err(Error::corruption(
            DATA_FILE,
            offset,
            Structure::Page(id),
            detail,
        )),
    }
}
