//! The block table: the three translation versions and the allocator of data-file space.
//!
//! Like TokuDB, the engine keeps three translations. `current` is the only one modified and is
//! never stored; `inprogress` is copied from current at begin_checkpoint and is the only one
//! written; `checkpointed` is the last durable one and the only one ever read from disk. Pages
//! are copy-on-write at the block level, so a block stays allocated while any of the three
//! references it, or while it is reserved (allocated for a write in flight that no table
//! references yet). Reusing a block that only `checkpointed` references would let a crash
//! before the next header lands recover into overwritten bytes; the `canary` feature plants
//! exactly that bug.
//!
//! A recovery that could not read one header slot cannot know what that slot's translation
//! names: a read fault may have hidden a newer header that a later recovery reads again. Until
//! the next checkpoint's header is durable (it goes to that slot), the space the recovered
//! translation leaves free is held, never handed out, so whatever the hidden header names
//! stays as it was written.
//!
//! Bookkeeping: every live block has a reference mask (one bit per table plus a reserved bit
//! and a held bit), keyed by offset. A translation's own block is referenced by the version it belongs to. Live
//! blocks and free extents together tile `[DATA_START, file_end)`; free extents are coalesced.
//! Blocks start at multiples of `BLOCK_ALIGNMENT_BYTES` and own their length rounded up to it.

use std::collections::BTreeMap;

use crate::format::header::DATA_START;
use crate::format::translation::{BlockRef, Translation};
use crate::types::PageId;

/// Blocks start on, and own space in multiples of, this many bytes (one sector).
pub const BLOCK_ALIGNMENT_BYTES: u64 = 512;

const CURRENT: u8 = 1;
const INPROGRESS: u8 = 2;
const CHECKPOINTED: u8 = 4;
const RESERVED: u8 = 8;
/// Space a recovery left unallocated but could not prove unreferenced (see the module doc).
const HELD: u8 = 16;

/// A live block: one past the last byte it owns, and who references it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    end: u64,
    mask: u8,
}

/// The inprogress translation and, once written, the block that holds it.
#[derive(Clone, Debug, Default)]
struct Version {
    entries: BTreeMap<PageId, BlockRef>,
    translation_block: Option<BlockRef>,
}

/// Three translations and the free space they leave.
#[derive(Debug)]
pub struct BlockTable {
    current: BTreeMap<PageId, BlockRef>,
    inprogress: Option<Version>,
    checkpointed: Version,
    /// Live blocks by offset.
    blocks: BTreeMap<u64, Block>,
    /// Free extents, start to end, never adjacent to each other.
    free: BTreeMap<u64, u64>,
    file_end: u64,
    #[cfg(feature = "canary")]
    reuse_checkpointed: bool,
}

impl Default for BlockTable {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockTable {
    /// A brand-new, empty data file.
    pub fn new() -> Self {
        Self {
            current: BTreeMap::new(),
            inprogress: None,
            checkpointed: Version::default(),
            blocks: BTreeMap::new(),
            free: BTreeMap::new(),
            file_end: DATA_START,
            #[cfg(feature = "canary")]
            reuse_checkpointed: false,
        }
    }

    /// After recovery: checkpointed = current = `translation`; `translation_block` is the block
    /// holding it; `file_end` is the data file length. Everything below `DATA_START` is never
    /// allocated, and every gap between referenced blocks below `file_end` is free, or, with
    /// `hold_gaps` (the other header slot did not verify), held until the next
    /// `finish_checkpoint`.
    pub fn from_checkpoint(
        translation: Translation,
        translation_block: BlockRef,
        file_end: u64,
        hold_gaps: bool,
    ) -> Self {
        let mut table = Self::new();
        for block in translation.entries.values() {
            table.mark_recovered(*block, CURRENT | CHECKPOINTED);
        }
        table.mark_recovered(translation_block, CHECKPOINTED);
        let highest_block_end = table
            .blocks
            .values()
            .map(|block| block.end)
            .max()
            .unwrap_or(0);
        table.file_end = align_up(file_end).max(highest_block_end).max(DATA_START);
        let mut cursor = DATA_START;
        let gaps: Vec<(u64, u64)> = table
            .blocks
            .iter()
            .filter_map(|(&offset, block)| {
                let gap = (cursor < offset).then_some((cursor, offset));
                cursor = cursor.max(block.end);
                gap
            })
            .collect();
        let tail = (cursor < table.file_end).then_some((cursor, table.file_end));
        for (start, end) in gaps.into_iter().chain(tail) {
            if hold_gaps {
                table.blocks.insert(start, Block { end, mask: HELD });
            } else {
                table.free_extent(start, end);
            }
        }
        table.current = translation.entries.clone();
        table.checkpointed = Version {
            entries: translation.entries,
            translation_block: Some(translation_block),
        };
        table
    }

    /// Reserves `len` bytes at an offset aligned to `BLOCK_ALIGNMENT_BYTES` (the length is
    /// rounded up to it, and a zero length to one unit, for bookkeeping): the first free extent
    /// that fits, else the end of the file. The block stays reserved until given to a table
    /// with `set_current` / `set_inprogress` / `set_inprogress_translation`, or released with
    /// `release_reserved`.
    ///
    /// First fit scans the free extents in offset order; coalescing keeps them few.
    pub fn allocate(&mut self, len: u32) -> u64 {
        let size = align_up(u64::from(len).max(1));
        let fit = self
            .free
            .iter()
            .find(|(&start, &end)| end - start >= size)
            .map(|(&start, _)| start);
        let offset = match fit {
            Some(start) => start,
            // A free extent that reaches the end of the file is grown rather than skipped.
            None => match self.free.last_key_value() {
                Some((&start, &end)) if end == self.file_end => start,
                _ => self.file_end,
            },
        };
        if let Some(end) = self.free.remove(&offset) {
            if end > offset + size {
                self.free.insert(offset + size, end);
            }
        }
        self.file_end = self.file_end.max(offset + size);
        let previous = self.blocks.insert(
            offset,
            Block {
                end: offset + size,
                mask: RESERVED,
            },
        );
        debug_assert!(previous.is_none(), "allocated the live block at {offset}");
        offset
    }

    /// Gives back a reserved block that no table took.
    ///
    /// Panics if no reserved block starts at `offset`: releasing anything else would free
    /// bytes a table still needs.
    pub fn release_reserved(&mut self, offset: u64) {
        let block = self.blocks.get_mut(&offset);
        assert!(
            block
                .as_ref()
                .is_some_and(|block| block.mask & RESERVED != 0),
            "release_reserved({offset}): no reserved block there"
        );
        if let Some(block) = block {
            block.mask &= !RESERVED;
        }
        self.settle(offset);
    }

    pub fn current(&self) -> &BTreeMap<PageId, BlockRef> {
        &self.current
    }

    pub fn inprogress(&self) -> Option<&BTreeMap<PageId, BlockRef>> {
        self.inprogress.as_ref().map(|version| &version.entries)
    }

    pub fn checkpointed(&self) -> &BTreeMap<PageId, BlockRef> {
        &self.checkpointed.entries
    }

    /// Where the inprogress translation was written, once `set_inprogress_translation` ran.
    pub fn inprogress_translation(&self) -> Option<BlockRef> {
        self.inprogress
            .as_ref()
            .and_then(|version| version.translation_block)
    }

    /// The block holding the checkpointed translation (None before the first checkpoint).
    pub fn checkpointed_translation(&self) -> Option<BlockRef> {
        self.checkpointed.translation_block
    }

    pub fn current_block(&self, page: PageId) -> Option<BlockRef> {
        self.current.get(&page).copied()
    }

    /// current[page] = block; the old current block is freed if nothing else references it.
    ///
    /// `block` must be reserved (or already inprogress for this page, when the end phase
    /// wrote it there first). Panics otherwise, since an untracked block could be handed out
    /// again.
    pub fn set_current(&mut self, page: PageId, block: BlockRef) {
        self.take_block(block, CURRENT, RESERVED | INPROGRESS, "set_current");
        if let Some(old) = self.current.insert(page, block) {
            if old.offset != block.offset {
                self.unmark(old.offset, CURRENT);
                self.settle(old.offset);
            }
        }
    }

    /// begin_checkpoint: inprogress = a copy of current.
    pub fn begin_checkpoint(&mut self) {
        debug_assert!(
            self.inprogress.is_none(),
            "begin_checkpoint with a checkpoint in progress"
        );
        // In release builds an unfinished checkpoint is dropped rather than leaked.
        self.abandon_checkpoint();
        for block in self.current.values() {
            if let Some(live) = self.blocks.get_mut(&block.offset) {
                live.mask |= INPROGRESS;
            }
        }
        self.inprogress = Some(Version {
            entries: self.current.clone(),
            translation_block: None,
        });
    }

    /// End phase: inprogress[page] = block (reserved or already current); frees the replaced
    /// inprogress block if nothing else references it.
    pub fn set_inprogress(&mut self, page: PageId, block: BlockRef) {
        assert!(
            self.inprogress.is_some(),
            "set_inprogress without begin_checkpoint"
        );
        self.take_block(block, INPROGRESS, RESERVED | CURRENT, "set_inprogress");
        let old = self
            .inprogress
            .as_mut()
            .and_then(|version| version.entries.insert(page, block));
        if let Some(old) = old {
            if old.offset != block.offset {
                self.unmark(old.offset, INPROGRESS);
                self.settle(old.offset);
            }
        }
    }

    /// Records where the inprogress translation was written (a reserved block); a translation
    /// block recorded earlier in this checkpoint is freed.
    pub fn set_inprogress_translation(&mut self, block: BlockRef) {
        assert!(
            self.inprogress.is_some(),
            "set_inprogress_translation without begin_checkpoint"
        );
        self.take_block(block, INPROGRESS, RESERVED, "set_inprogress_translation");
        let old = self
            .inprogress
            .as_mut()
            .and_then(|version| version.translation_block.replace(block));
        if let Some(old) = old {
            if old.offset != block.offset {
                self.unmark(old.offset, INPROGRESS);
                self.settle(old.offset);
            }
        }
    }

    /// After the header is durable: checkpointed = inprogress, inprogress = None. Frees, and
    /// returns sorted, the blocks only the old checkpointed version referenced (its translation
    /// block included). Space held since recovery is freed too (not returned: no version
    /// referenced it).
    pub fn finish_checkpoint(&mut self) -> Vec<BlockRef> {
        let new = self
            .inprogress
            .take()
            .expect("finish_checkpoint without begin_checkpoint");
        let old = std::mem::replace(&mut self.checkpointed, new);
        // Clear the old version's bits before setting the new one's, so a block in both keeps
        // its bit.
        for block in version_blocks(&old) {
            self.unmark(block.offset, CHECKPOINTED);
        }
        let promoted: Vec<u64> = version_blocks(&self.checkpointed)
            .map(|block| block.offset)
            .collect();
        for &offset in &promoted {
            if let Some(live) = self.blocks.get_mut(&offset) {
                live.mask = (live.mask & !INPROGRESS) | CHECKPOINTED;
            }
        }
        let mut freed = Vec::new();
        for block in version_blocks(&old) {
            if self.settle(block.offset) {
                freed.push(*block);
            }
        }
        // Only the canary can free a block that just became checkpointed.
        for offset in promoted {
            self.settle(offset);
        }
        let held: Vec<u64> = self
            .blocks
            .iter()
            .filter(|(_, block)| block.mask & HELD != 0)
            .map(|(&offset, _)| offset)
            .collect();
        for offset in held {
            self.unmark(offset, HELD);
            self.settle(offset);
        }
        freed.sort_unstable();
        freed
    }

    /// A checkpoint failed midway: drop inprogress, freeing what only it referenced.
    pub fn abandon_checkpoint(&mut self) {
        let Some(version) = self.inprogress.take() else {
            return;
        };
        for block in version_blocks(&version) {
            self.unmark(block.offset, INPROGRESS);
            self.settle(block.offset);
        }
    }

    /// True when no live block covers `offset` and it may be handed out (never below
    /// `DATA_START`).
    pub fn is_free(&self, offset: u64) -> bool {
        if offset < DATA_START {
            return false;
        }
        if offset >= self.file_end {
            return true;
        }
        self.free
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &end)| offset < end)
    }

    /// One past the highest byte ever allocated (at least `DATA_START`).
    pub fn file_end(&self) -> u64 {
        self.file_end
    }

    /// Debug check: live blocks and free extents tile `[DATA_START, file_end)` without
    /// overlapping, free extents are coalesced, and every block's mask matches the tables
    /// that reference it.
    pub fn check(&self) -> Result<(), String> {
        let mut expected: BTreeMap<u64, u8> = BTreeMap::new();
        let mut add = |block: &BlockRef, bit: u8| *expected.entry(block.offset).or_default() |= bit;
        self.current.values().for_each(|block| add(block, CURRENT));
        if let Some(version) = &self.inprogress {
            version_blocks(version).for_each(|block| add(block, INPROGRESS));
        }
        version_blocks(&self.checkpointed).for_each(|block| add(block, CHECKPOINTED));
        let canary = self.reuses_checkpointed();
        // With the canary, blocks only the checkpointed version references are forgotten, so
        // its bit cannot be checked.
        let compared = if canary {
            CURRENT | INPROGRESS
        } else {
            CURRENT | INPROGRESS | CHECKPOINTED
        };
        // Both ways: every referenced block carries its tables' bits, and no live block
        // carries a bit for a table that does not reference it.
        let offsets: std::collections::BTreeSet<u64> =
            expected.keys().chain(self.blocks.keys()).copied().collect();
        for offset in offsets {
            let bits = expected.get(&offset).copied().unwrap_or(0);
            let live = self.blocks.get(&offset).map_or(0, |block| block.mask);
            if live & compared != bits & compared {
                return Err(format!(
                    "block at {offset}: mask {live:#06b}, tables reference it as {bits:#06b}"
                ));
            }
        }
        let mut translation_refs = Vec::new();
        translation_refs.extend(
            self.current
                .iter()
                .map(|(page, block)| (format!("current[{page}]"), *block)),
        );
        if let Some(version) = &self.inprogress {
            translation_refs.extend(
                version
                    .entries
                    .iter()
                    .map(|(page, block)| (format!("inprogress[{page}]"), *block)),
            );
            translation_refs.extend(
                version
                    .translation_block
                    .map(|block| ("inprogress translation".to_string(), block)),
            );
        }
        if !canary {
            translation_refs.extend(
                self.checkpointed
                    .entries
                    .iter()
                    .map(|(page, block)| (format!("checkpointed[{page}]"), *block)),
            );
            translation_refs.extend(
                self.checkpointed
                    .translation_block
                    .map(|block| ("checkpointed translation".to_string(), block)),
            );
        }
        for (name, block) in translation_refs {
            let owned_end = self.blocks.get(&block.offset).map_or(0, |live| live.end);
            if block.end() > owned_end {
                return Err(format!(
                    "{name} = {block:?} runs past its owned extent ending at {owned_end}"
                ));
            }
        }
        // Walk blocks and free extents together in offset order: each must start where the
        // previous ended.
        let mut pieces: Vec<(u64, u64, bool)> = self
            .blocks
            .iter()
            .map(|(&offset, block)| (offset, block.end, true))
            .chain(self.free.iter().map(|(&start, &end)| (start, end, false)))
            .collect();
        pieces.sort_unstable();
        let mut cursor = DATA_START;
        let mut previous_was_free = false;
        for (start, end, is_block) in pieces {
            let what = if is_block { "block" } else { "free extent" };
            if start != cursor {
                return Err(format!(
                    "{what} [{start}, {end}) does not start at {cursor}"
                ));
            }
            if end <= start
                || start % BLOCK_ALIGNMENT_BYTES != 0
                || end % BLOCK_ALIGNMENT_BYTES != 0
            {
                return Err(format!("{what} [{start}, {end}) is empty or unaligned"));
            }
            if is_block && self.blocks[&start].mask == 0 {
                return Err(format!("block at {start} is live with no references"));
            }
            if !is_block && previous_was_free {
                return Err(format!(
                    "free extent at {start} is not coalesced with the one before"
                ));
            }
            previous_was_free = !is_block;
            cursor = end;
        }
        if cursor != self.file_end {
            return Err(format!(
                "space is tiled up to {cursor}, file_end is {}",
                self.file_end
            ));
        }
        Ok(())
    }

    /// Planted bug: blocks referenced only by `checkpointed` count as free.
    #[cfg(feature = "canary")]
    pub fn set_reuse_checkpointed(&mut self, on: bool) {
        self.reuse_checkpointed = on;
        if on {
            let offsets: Vec<u64> = self.blocks.keys().copied().collect();
            for offset in offsets {
                self.settle(offset);
            }
        }
    }

    fn reuses_checkpointed(&self) -> bool {
        #[cfg(feature = "canary")]
        {
            self.reuse_checkpointed
        }
        #[cfg(not(feature = "canary"))]
        {
            false
        }
    }

    /// Hands a live block to a table: sets `bit`, clears the reserved bit. The block must
    /// already carry one of `accepted` and be long enough for `block.len`.
    fn take_block(&mut self, block: BlockRef, bit: u8, accepted: u8, operation: &str) {
        let live = self.blocks.get_mut(&block.offset);
        let Some(live) = live.filter(|live| live.mask & accepted != 0) else {
            panic!("{operation}: the block at {} is not reserved", block.offset);
        };
        assert!(
            block.end() <= live.end,
            "{operation}: {block:?} is longer than the space reserved for it (to {})",
            live.end
        );
        live.mask = (live.mask & !RESERVED) | bit;
    }

    /// Clears `bit` on the block at `offset`, if it is still live.
    fn unmark(&mut self, offset: u64, bit: u8) {
        if let Some(live) = self.blocks.get_mut(&offset) {
            live.mask &= !bit;
        }
    }

    /// Frees the block at `offset` if nothing references it any more; returns whether it did.
    fn settle(&mut self, offset: u64) -> bool {
        let Some(&live) = self.blocks.get(&offset) else {
            return false;
        };
        let unreferenced =
            live.mask == 0 || (self.reuses_checkpointed() && live.mask == CHECKPOINTED);
        if unreferenced {
            self.blocks.remove(&offset);
            self.free_extent(offset, live.end);
        }
        unreferenced
    }

    /// Records a block named by the recovered translation; a block named twice (only possible
    /// for a corrupt table) keeps the larger extent.
    fn mark_recovered(&mut self, block: BlockRef, mask: u8) {
        let end = align_up(block.end().max(block.offset + 1));
        let live = self
            .blocks
            .entry(block.offset)
            .or_insert(Block { end, mask: 0 });
        live.end = live.end.max(end);
        live.mask |= mask;
    }

    /// Adds `[start, end)` to the free extents, merging with its neighbours.
    fn free_extent(&mut self, mut start: u64, mut end: u64) {
        if let Some((&before_start, &before_end)) = self.free.range(..start).next_back() {
            debug_assert!(
                before_end <= start,
                "freeing [{start}, {end}) inside a free extent"
            );
            if before_end == start {
                self.free.remove(&before_start);
                start = before_start;
            }
        }
        if let Some(after_end) = self.free.remove(&end) {
            end = after_end;
        }
        self.free.insert(start, end);
    }
}

/// Every block a version references: its pages' blocks and its own translation block.
fn version_blocks(version: &Version) -> impl Iterator<Item = &BlockRef> {
    version
        .entries
        .values()
        .chain(version.translation_block.iter())
}

fn align_up(value: u64) -> u64 {
    value
        .div_ceil(BLOCK_ALIGNMENT_BYTES)
        .saturating_mul(BLOCK_ALIGNMENT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNIT: u64 = BLOCK_ALIGNMENT_BYTES;

    fn block(offset: u64, len: u32) -> BlockRef {
        BlockRef {
            offset,
            len,
            checksum: 0,
        }
    }

    /// Allocates `len` bytes and makes them page `page`'s current block.
    fn write(table: &mut BlockTable, page: PageId, len: u32) -> BlockRef {
        let written = block(table.allocate(len), len);
        table.set_current(page, written);
        written
    }

    /// Runs a whole checkpoint with a translation block of `len` bytes.
    fn checkpoint(table: &mut BlockTable, len: u32) -> Vec<BlockRef> {
        table.begin_checkpoint();
        let translation = block(table.allocate(len), len);
        table.set_inprogress_translation(translation);
        table.finish_checkpoint()
    }

    /// Every block some table references, or that the test holds reserved.
    fn referenced(table: &BlockTable, reserved: &[BlockRef]) -> Vec<BlockRef> {
        let mut blocks: Vec<BlockRef> = table.current().values().copied().collect();
        blocks.extend(
            table
                .inprogress()
                .into_iter()
                .flat_map(|entries| entries.values().copied()),
        );
        blocks.extend(table.inprogress_translation());
        blocks.extend(table.checkpointed().values().copied());
        blocks.extend(table.checkpointed_translation());
        blocks.extend(reserved.iter().copied());
        blocks
    }

    /// The first referenced block that `[offset, offset + len)` overlaps, by owned extent.
    fn overlap(offset: u64, len: u32, referenced: &[BlockRef]) -> Option<BlockRef> {
        let end = offset + align_up(u64::from(len).max(1));
        referenced.iter().copied().find(|other| {
            let other_end = other.offset + align_up(u64::from(other.len).max(1));
            offset < other_end && other.offset < end
        })
    }

    // A new table allocates from DATA_START, aligned, and rounds lengths up for bookkeeping.
    #[test]
    fn new_table_allocates_from_data_start() {
        let mut table = BlockTable::new();
        assert_eq!(table.file_end(), DATA_START);
        assert!(!table.is_free(0) && !table.is_free(DATA_START - 1) && table.is_free(DATA_START));
        assert_eq!(table.allocate(1), DATA_START);
        assert_eq!(table.allocate(0), DATA_START + UNIT);
        assert_eq!(table.allocate(513), DATA_START + 2 * UNIT);
        assert_eq!(table.file_end(), DATA_START + 4 * UNIT);
        assert!(!table.is_free(DATA_START + 3 * UNIT + 10));
        table.check().unwrap();
    }

    // A released reservation is reused first fit, and neighbours coalesce.
    #[test]
    fn release_reserved_frees_and_coalesces() {
        let mut table = BlockTable::new();
        let first = table.allocate(100);
        let second = table.allocate(100);
        let third = table.allocate(100);
        table.release_reserved(first);
        table.release_reserved(second);
        table.check().unwrap();
        assert!(table.is_free(first) && table.is_free(second) && !table.is_free(third));
        assert_eq!(
            table.allocate(1000),
            first,
            "two coalesced units fit 1000 bytes"
        );
        table.release_reserved(third);
        table.check().unwrap();
        assert_eq!(table.allocate(600), third);
    }

    // A free extent at the end of the file grows instead of leaving a hole.
    #[test]
    fn tail_extent_grows() {
        let mut table = BlockTable::new();
        let first = table.allocate(100);
        let second = table.allocate(100);
        table.release_reserved(second);
        assert_eq!(table.allocate(2000), second);
        assert_eq!(table.file_end(), second + 4 * UNIT);
        assert!(!table.is_free(first));
        table.check().unwrap();
    }

    // set_current frees the page's old block when no other table references it.
    #[test]
    fn set_current_frees_the_old_block() {
        let mut table = BlockTable::new();
        let old = write(&mut table, 1, 100);
        let new = write(&mut table, 1, 100);
        assert_eq!(table.current_block(1), Some(new));
        assert!(table.is_free(old.offset));
        table.check().unwrap();
    }

    // A block the checkpointed version references survives set_current until the next
    // checkpoint finishes, which frees and returns it.
    #[test]
    fn checkpointed_blocks_outlive_current() {
        let mut table = BlockTable::new();
        let old = write(&mut table, 1, 100);
        let freed = checkpoint(&mut table, 40);
        assert_eq!(
            freed,
            vec![],
            "the first checkpoint replaces an empty version"
        );
        let first_translation = table.checkpointed_translation().unwrap();
        let new = write(&mut table, 1, 100);
        assert!(
            !table.is_free(old.offset),
            "the checkpointed version still needs it"
        );
        assert_ne!(table.allocate(100), old.offset);
        table.check().unwrap();
        let mut freed = checkpoint(&mut table, 40);
        let mut expected = vec![old, first_translation];
        expected.sort_unstable();
        freed.sort_unstable();
        assert_eq!(freed, expected);
        assert!(table.is_free(old.offset) && !table.is_free(new.offset));
        table.check().unwrap();
    }

    // begin_checkpoint copies current; later writes change current but not inprogress, and the
    // inprogress copy keeps its blocks alive.
    #[test]
    fn inprogress_is_a_snapshot_of_current() {
        let mut table = BlockTable::new();
        let old = write(&mut table, 1, 100);
        table.begin_checkpoint();
        assert_eq!(table.inprogress(), Some(table.current()));
        let new = write(&mut table, 1, 100);
        assert_eq!(table.inprogress().unwrap()[&1], old);
        assert_eq!(table.current_block(1), Some(new));
        assert!(!table.is_free(old.offset));
        table.check().unwrap();
    }

    // set_inprogress replaces a page's inprogress block, freeing the old one if only it held it.
    #[test]
    fn set_inprogress_replaces_and_frees() {
        let mut table = BlockTable::new();
        let old = write(&mut table, 1, 100);
        table.begin_checkpoint();
        write(&mut table, 1, 100);
        let pending = block(table.allocate(100), 100);
        table.set_inprogress(1, pending);
        assert!(table.is_free(old.offset));
        // A block that is already current may be named too.
        let shared = write(&mut table, 2, 100);
        table.set_inprogress(2, shared);
        table.check().unwrap();
        let translation = block(table.allocate(30), 30);
        table.set_inprogress_translation(translation);
        table.finish_checkpoint();
        assert_eq!(table.checkpointed()[&1], pending);
        assert_eq!(table.checkpointed()[&2], shared);
        assert_eq!(table.checkpointed_translation(), Some(translation));
        table.check().unwrap();
    }

    // A block written in the end phase may be made current after it became inprogress.
    #[test]
    fn inprogress_block_may_become_current() {
        let mut table = BlockTable::new();
        write(&mut table, 1, 100);
        table.begin_checkpoint();
        let written = block(table.allocate(100), 100);
        table.set_inprogress(1, written);
        table.set_current(1, written);
        table.check().unwrap();
        let freed = checkpoint_finish(&mut table);
        assert!(freed.is_empty());
        assert!(!table.is_free(written.offset));
        table.check().unwrap();
    }

    fn checkpoint_finish(table: &mut BlockTable) -> Vec<BlockRef> {
        let translation = block(table.allocate(30), 30);
        table.set_inprogress_translation(translation);
        table.finish_checkpoint()
    }

    // Abandoning a checkpoint frees what only inprogress held and keeps the rest.
    #[test]
    fn abandon_frees_only_inprogress_blocks() {
        let mut table = BlockTable::new();
        let kept = write(&mut table, 1, 100);
        table.begin_checkpoint();
        let pending = block(table.allocate(100), 100);
        table.set_inprogress(2, pending);
        let translation = block(table.allocate(100), 100);
        table.set_inprogress_translation(translation);
        table.abandon_checkpoint();
        assert_eq!(table.inprogress(), None);
        assert!(table.is_free(pending.offset) && table.is_free(translation.offset));
        assert!(!table.is_free(kept.offset));
        table.check().unwrap();
        // A new checkpoint may begin after an abandoned one.
        checkpoint(&mut table, 10);
        table.check().unwrap();
    }

    // Recovery marks every checkpointed block and its translation block used and the gaps free.
    #[test]
    fn from_checkpoint_rebuilds_free_space() {
        let translation = Translation {
            entries: [
                (1, block(DATA_START + UNIT, 700)),
                (2, block(DATA_START + 4 * UNIT, 10)),
            ]
            .into_iter()
            .collect(),
        };
        let translation_block = block(DATA_START + 6 * UNIT, 50);
        let mut table = BlockTable::from_checkpoint(
            translation.clone(),
            translation_block,
            DATA_START + 8 * UNIT + 100,
            false,
        );
        table.check().unwrap();
        assert_eq!(table.current(), &translation.entries);
        assert_eq!(table.checkpointed(), &translation.entries);
        assert_eq!(table.checkpointed_translation(), Some(translation_block));
        assert_eq!(table.file_end(), DATA_START + 9 * UNIT);
        for offset in [
            DATA_START,
            DATA_START + 3 * UNIT,
            DATA_START + 5 * UNIT,
            DATA_START + 7 * UNIT,
        ] {
            assert!(table.is_free(offset), "{offset}");
        }
        for offset in [
            DATA_START + UNIT,
            DATA_START + 2 * UNIT,
            DATA_START + 4 * UNIT,
            DATA_START + 6 * UNIT,
        ] {
            assert!(!table.is_free(offset), "{offset}");
        }
        assert_eq!(table.allocate(600), DATA_START + 7 * UNIT);
        // The translation block goes once the next checkpoint replaces it.
        let freed = checkpoint(&mut table, 10);
        assert_eq!(freed, vec![translation_block]);
        table.check().unwrap();
    }

    // A file shorter than its blocks (a torn tail) still covers every recovered block.
    #[test]
    fn from_checkpoint_with_short_file() {
        let translation = Translation {
            entries: [(1, block(DATA_START, 100))].into_iter().collect(),
        };
        let table =
            BlockTable::from_checkpoint(translation, block(DATA_START + UNIT, 20), 0, false);
        table.check().unwrap();
        assert_eq!(table.file_end(), DATA_START + 2 * UNIT);
    }

    // With the gaps held (the other header slot did not verify), nothing below the recovered
    // file end is handed out until a checkpoint finishes; then the gaps are free again.
    #[test]
    fn held_gaps_stay_untouched_until_the_next_checkpoint_finishes() {
        let translation = Translation {
            entries: [(1, block(DATA_START + UNIT, 100))].into_iter().collect(),
        };
        let translation_block = block(DATA_START + 3 * UNIT, 50);
        let file_end = DATA_START + 5 * UNIT;
        let mut table = BlockTable::from_checkpoint(translation, translation_block, file_end, true);
        table.check().unwrap();
        for offset in [DATA_START, DATA_START + 2 * UNIT, DATA_START + 4 * UNIT] {
            assert!(!table.is_free(offset), "{offset} is held");
        }
        let page = write(&mut table, 1, 100);
        assert_eq!(page.offset, file_end);
        table.begin_checkpoint();
        let written = block(table.allocate(10), 10);
        assert_eq!(written.offset, file_end + UNIT);
        table.set_inprogress_translation(written);
        // An abandoned checkpoint wrote no header: the gaps stay held.
        table.abandon_checkpoint();
        assert!(!table.is_free(DATA_START));
        assert_eq!(table.allocate(10), file_end + UNIT);
        table.check().unwrap();
        let freed = checkpoint(&mut table, 10);
        table.check().unwrap();
        assert_eq!(
            freed,
            vec![block(DATA_START + UNIT, 100), translation_block]
        );
        for offset in [DATA_START, DATA_START + 2 * UNIT, DATA_START + 4 * UNIT] {
            assert!(
                table.is_free(offset),
                "{offset} is free after the checkpoint"
            );
        }
        assert_eq!(table.allocate(10), DATA_START);
    }

    // A block of length zero (an empty page) still owns one unit, so blocks tile the file.
    #[test]
    fn a_recovered_empty_block_owns_one_unit() {
        let translation = Translation {
            entries: [(1, block(DATA_START, 0)), (2, block(DATA_START + UNIT, 10))]
                .into_iter()
                .collect(),
        };
        let mut table =
            BlockTable::from_checkpoint(translation, block(DATA_START + 2 * UNIT, 0), 0, false);
        table.check().unwrap();
        assert_eq!(table.file_end(), DATA_START + 3 * UNIT);
        assert_eq!(table.allocate(1), DATA_START + 3 * UNIT);
    }

    /// A table with a block in every role: current only, current and checkpointed, inprogress,
    /// checkpointed only, both translations, and free space between.
    fn busy_table() -> (BlockTable, BlockRef, BlockRef) {
        let mut table = BlockTable::new();
        write(&mut table, 1, 100);
        let replaced = write(&mut table, 2, 100);
        checkpoint(&mut table, 50);
        let current_only = write(&mut table, 2, 700);
        table.begin_checkpoint();
        let translation = block(table.allocate(30), 30);
        table.set_inprogress_translation(translation);
        assert_eq!(table.inprogress_translation(), Some(translation));
        table.check().unwrap();
        (table, replaced, current_only)
    }

    // check() is what every other test trusts: each kind of inconsistency is named.
    #[test]
    fn check_names_each_inconsistency() {
        // A bit on a block no table references (here, one only reserved).
        let (mut table, _, _) = busy_table();
        let reserved = table.allocate(10);
        table.check().unwrap();
        table.blocks.get_mut(&reserved).unwrap().mask |= INPROGRESS;
        let error = table.check().unwrap_err();
        assert!(error.contains("tables reference it as"), "{error}");

        let (mut table, replaced, _) = busy_table();
        table.blocks.get_mut(&replaced.offset).unwrap().mask &= !CHECKPOINTED;
        let error = table.check().unwrap_err();
        assert!(error.contains("tables reference it as"), "{error}");

        let (mut table, _, _) = busy_table();
        let translation = table.checkpointed.translation_block.as_mut().unwrap();
        translation.len = 2 * UNIT as u32;
        let error = table.check().unwrap_err();
        assert!(error.contains("checkpointed translation"), "{error}");

        let (mut table, _, _) = busy_table();
        let reserved = table.allocate(10);
        table.blocks.get_mut(&reserved).unwrap().mask = 0;
        let error = table.check().unwrap_err();
        assert!(error.contains("no references"), "{error}");

        let mut table = BlockTable::new();
        table.free.insert(DATA_START, DATA_START + 100);
        table.file_end = DATA_START + 100;
        let error = table.check().unwrap_err();
        assert!(error.contains("unaligned"), "{error}");

        let mut table = BlockTable::new();
        table.free.insert(DATA_START, DATA_START);
        let error = table.check().unwrap_err();
        assert!(error.contains("is empty"), "{error}");

        let mut table = BlockTable::new();
        table.free.insert(DATA_START, DATA_START + UNIT);
        table.free.insert(DATA_START + UNIT, DATA_START + 2 * UNIT);
        table.file_end = DATA_START + 2 * UNIT;
        let error = table.check().unwrap_err();
        assert!(error.contains("not coalesced"), "{error}");

        let mut table = BlockTable::new();
        table.free.insert(DATA_START + UNIT, DATA_START + 2 * UNIT);
        table.file_end = DATA_START + 2 * UNIT;
        let error = table.check().unwrap_err();
        assert!(error.contains("does not start at"), "{error}");

        let mut table = BlockTable::new();
        table.file_end = DATA_START + UNIT;
        let error = table.check().unwrap_err();
        assert!(error.contains("file_end"), "{error}");
    }

    // Handing a table a block that a table already holds is refused like one never reserved.
    #[test]
    #[should_panic(expected = "not reserved")]
    fn set_current_refuses_a_block_another_page_holds() {
        let mut table = BlockTable::new();
        let first = write(&mut table, 1, 10);
        table.set_current(2, first);
    }

    // Handing a table a block that was never reserved is refused loudly.
    #[test]
    #[should_panic(expected = "not reserved")]
    fn set_current_requires_a_reservation() {
        let mut table = BlockTable::new();
        table.set_current(1, block(DATA_START, 10));
    }

    /// One step of the random operation sequences.
    #[derive(Clone, Debug)]
    enum Operation {
        Write { page: PageId, len: u32 },
        Reserve { len: u32 },
        Release { index: usize },
        BeginCheckpoint,
        SetInprogress { page: PageId, len: u32 },
        SetInprogressCurrent { page: PageId },
        SetInprogressTranslation { len: u32 },
        FinishCheckpoint,
        AbandonCheckpoint,
    }

    fn operation_strategy() -> impl Strategy<Value = Operation> {
        let len = || 0u32..3000;
        let page = || 0u64..8;
        prop_oneof![
            6 => (page(), len()).prop_map(|(page, len)| Operation::Write { page, len }),
            1 => len().prop_map(|len| Operation::Reserve { len }),
            1 => any::<usize>().prop_map(|index| Operation::Release { index }),
            2 => Just(Operation::BeginCheckpoint),
            2 => (page(), len()).prop_map(|(page, len)| Operation::SetInprogress { page, len }),
            1 => page().prop_map(|page| Operation::SetInprogressCurrent { page }),
            2 => len().prop_map(|len| Operation::SetInprogressTranslation { len }),
            2 => Just(Operation::FinishCheckpoint),
            1 => Just(Operation::AbandonCheckpoint),
        ]
    }

    /// Runs `operations`, checking after every allocation that the offset overlaps nothing
    /// referenced or reserved; returns the first violation instead of panicking so the canary
    /// test can expect one.
    fn run(table: &mut BlockTable, operations: &[Operation]) -> Result<(), String> {
        let mut reserved: Vec<BlockRef> = Vec::new();
        let allocate = |table: &mut BlockTable, reserved: &[BlockRef], len: u32| {
            let live = referenced(table, reserved);
            let offset = table.allocate(len);
            match overlap(offset, len, &live) {
                Some(other) => Err(format!(
                    "allocated {offset}+{len} over referenced {other:?}"
                )),
                None => Ok(block(offset, len)),
            }
        };
        for (step, operation) in operations.iter().enumerate() {
            match *operation {
                Operation::Write { page, len } => {
                    let written = allocate(table, &reserved, len)?;
                    table.set_current(page, written);
                }
                Operation::Reserve { len } => reserved.push(allocate(table, &reserved, len)?),
                Operation::Release { index } => {
                    if !reserved.is_empty() {
                        let released = reserved.swap_remove(index % reserved.len());
                        table.release_reserved(released.offset);
                    }
                }
                Operation::BeginCheckpoint => {
                    if table.inprogress().is_none() {
                        table.begin_checkpoint();
                    }
                }
                Operation::SetInprogress { page, len } => {
                    if table.inprogress().is_some() {
                        let written = allocate(table, &reserved, len)?;
                        table.set_inprogress(page, written);
                    }
                }
                Operation::SetInprogressCurrent { page } => {
                    if let (Some(_), Some(current)) =
                        (table.inprogress(), table.current_block(page))
                    {
                        table.set_inprogress(page, current);
                    }
                }
                Operation::SetInprogressTranslation { len } => {
                    if table.inprogress().is_some() {
                        let written = allocate(table, &reserved, len)?;
                        table.set_inprogress_translation(written);
                    }
                }
                Operation::FinishCheckpoint => {
                    if table.inprogress().is_some() {
                        let freed = table.finish_checkpoint();
                        let still = referenced(table, &reserved);
                        for block in freed {
                            if !table.is_free(block.offset)
                                || still.iter().any(|other| other.offset == block.offset)
                            {
                                return Err(format!("finish_checkpoint returned live {block:?}"));
                            }
                        }
                    }
                }
                Operation::AbandonCheckpoint => table.abandon_checkpoint(),
            }
            table
                .check()
                .map_err(|error| format!("step {step} {operation:?}: {error}"))?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        // The allocator never hands out a block that current, inprogress, checkpointed (with
        // their translation blocks) or a reservation still holds, and check() holds after every
        // step.
        #[test]
        fn never_hands_out_a_referenced_block(operations in proptest::collection::vec(operation_strategy(), 1..80)) {
            let mut table = BlockTable::new();
            let outcome = run(&mut table, &operations);
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        }

        // The same holds after recovering from a checkpoint that was built by random steps.
        #[test]
        fn recovered_table_never_hands_out_a_referenced_block(
            before in proptest::collection::vec(operation_strategy(), 1..40),
            after in proptest::collection::vec(operation_strategy(), 1..40),
            hold_gaps in any::<bool>(),
        ) {
            let mut table = BlockTable::new();
            prop_assert!(run(&mut table, &before).is_ok());
            table.abandon_checkpoint();
            checkpoint(&mut table, 100);
            let translation = Translation { entries: table.checkpointed().clone() };
            let translation_block = table.checkpointed_translation().unwrap();
            let file_end = table.file_end();
            let mut recovered = BlockTable::from_checkpoint(translation.clone(), translation_block, file_end, hold_gaps);
            prop_assert_eq!(recovered.check(), Ok(()));
            // Held gaps: until a checkpoint finishes, every block handed out lies past the
            // recovered file end.
            let cut = after
                .iter()
                .position(|operation| matches!(operation, Operation::FinishCheckpoint))
                .unwrap_or(after.len());
            let outcome = run(&mut recovered, &after[..cut]);
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
            if hold_gaps {
                let recovered_blocks: Vec<BlockRef> = translation.entries.values().copied().chain([translation_block]).collect();
                for block in referenced(&recovered, &[]) {
                    prop_assert!(
                        recovered_blocks.contains(&block) || block.offset >= file_end,
                        "{:?} handed out below the recovered file end {}", block, file_end
                    );
                }
            }
            let outcome = run(&mut recovered, &after[cut..]);
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        }
    }

    // With the planted bug on, a block only the checkpointed version holds is handed out again.
    #[cfg(feature = "canary")]
    #[test]
    fn canary_reuses_a_checkpointed_block() {
        let mut table = BlockTable::new();
        table.set_reuse_checkpointed(true);
        let operations = [
            Operation::Write { page: 1, len: 100 },
            Operation::BeginCheckpoint,
            Operation::SetInprogressTranslation { len: 50 },
            Operation::FinishCheckpoint,
            Operation::Write { page: 1, len: 100 },
            Operation::Write { page: 2, len: 100 },
        ];
        let outcome = run(&mut table, &operations);
        assert!(
            outcome
                .as_ref()
                .is_err_and(|error| error.contains("over referenced")),
            "{outcome:?}"
        );
        // Without the bug the same steps are safe.
        assert_eq!(run(&mut BlockTable::new(), &operations), Ok(()));
    }

    // With the planted bug on, random operation sequences find the violation.
    #[cfg(feature = "canary")]
    #[test]
    fn canary_breaks_the_random_property() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = proptest::collection::vec(operation_strategy(), 1..80);
        let result = runner.run(&strategy, |operations| {
            let mut table = BlockTable::new();
            table.set_reuse_checkpointed(true);
            let outcome = run(&mut table, &operations);
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
            Ok(())
        });
        assert!(result.is_err(), "the canary went unnoticed");
    }
}
