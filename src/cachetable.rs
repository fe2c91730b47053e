//! The cachetable: a bounded map of B+tree pages with per-page dirty and checkpoint-pending
//! flags, the copy-on-write clones a checkpoint still has to write, and eviction.
//!
//! A page marked pending at begin_checkpoint must reach the checkpoint as it was at begin. A
//! writer that meets a pending page clones it for the checkpoint first and then modifies the
//! live page (TokuDB's "writers help"), so writers never wait for checkpoint I/O. Evicting a
//! dirty page writes it to a fresh block referenced by the current translation; a pending page
//! evicted before the checkpoint wrote it is written once and serves both tables.

use std::collections::BTreeMap;

use crate::allocator::BlockTable;
use crate::error::{Error, Result, Structure};
use crate::format::page::{self, Node};
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
    pub blocks: BlockTable,
    pub root: PageId,
    pub next_page_id: PageId,
    pub checkpoint: Option<PendingCheckpoint>,
    /// Skip the clone-on-write of pending pages (a planted bug).
    pub ignore_pending_bit: bool,
    /// Skip block checksum verification on read (a planted bug).
    pub skip_checksum: bool,
}

impl Cachetable {
    pub fn new(
        blocks: BlockTable,
        root: PageId,
        next_page_id: PageId,
        capacity: usize,
        page_size_bytes: usize,
    ) -> Self {
        Self {
            pages: BTreeMap::new(),
            tick: 0,
            versions: 0,
            capacity,
            page_size_bytes,
            blocks,
            root,
            next_page_id,
            checkpoint: None,
            ignore_pending_bit: false,
            skip_checksum: false,
        }
    }

    pub fn dirty_pages(&self) -> usize {
        self.pages.values().filter(|page| page.dirty).count()
    }

    /// Makes sure `id` is in the cache, reading and verifying its block if needed.
    pub async fn load<F: VfsFile>(&mut self, file: &F, id: PageId) -> Result<()> {
        self.tick += 1;
        if let Some(page) = self.pages.get_mut(&id) {
            page.last_used = self.tick;
            return Ok(());
        }
        let block = self.blocks.current_block(id).ok_or_else(|| {
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
        let node = page::decode_block(id, &bytes).map_err(|detail| {
            Error::corruption(DATA_FILE, block.offset, Structure::Page(id), detail)
        })?;
        self.versions += 1;
        self.pages.insert(
            id,
            CachedPage {
                node,
                dirty: false,
                pending: false,
                version: self.versions,
                last_used: self.tick,
            },
        );
        Ok(())
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
        if page.pending && !self.ignore_pending_bit {
            let checkpoint = self
                .checkpoint
                .as_mut()
                .expect("a pending page implies a checkpoint in progress");
            checkpoint.clones.insert(id, page.node.clone());
            page.pending = false;
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
            },
        );
        id
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
        let offset = self.blocks.allocate(bytes.len() as u32);
        let block = BlockRef::of(offset, &bytes);
        self.blocks.set_inprogress(page_id, block);
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
                self.blocks.abandon_checkpoint();
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
                self.blocks.set_current(prepared.page_id, prepared.block);
            }
        }
    }

    /// Evicts least recently used pages until the cache is within capacity. A dirty page is
    /// written to a fresh block first; if that write fails the page stays cached and dirty
    /// and eviction stops (the data is safe in memory and in the log).
    pub async fn evict_to_capacity<F: VfsFile>(&mut self, file: &F) -> Result<()> {
        // Each pass removes one page or returns, so it runs at most `pages.len()` times.
        while self.pages.len() > self.capacity {
            let victim = self
                .pages
                .iter()
                .min_by_key(|(id, page)| (page.last_used, **id))
                .map(|(id, _)| *id)
                .expect("the cache is over capacity, so not empty");
            let page = &self.pages[&victim];
            if page.dirty {
                let bytes = page::encode_block(victim, &page.node);
                let offset = self.blocks.allocate(bytes.len() as u32);
                let block = BlockRef::of(offset, &bytes);
                if let Err(source) = file.write_at(offset, &bytes).await {
                    self.blocks.release_reserved(offset);
                    return Err(Error::io("write", DATA_FILE, source));
                }
                self.blocks.set_current(victim, block);
                if page.pending {
                    // The page is unchanged since begin_checkpoint: this one write serves the
                    // checkpoint too.
                    self.blocks.set_inprogress(victim, block);
                }
            }
            self.pages.remove(&victim);
        }
        Ok(())
    }

    /// Drops every cached page without writing (after a checkpoint is abandoned nothing
    /// needs this; used when closing).
    pub fn clear(&mut self) {
        self.pages.clear();
    }
}
