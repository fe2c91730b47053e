//! The block translation table: which block of the data file holds each page.
//!
//! The engine keeps three versions of this table in memory (current, inprogress, checkpointed;
//! see `crate::allocator`), but only the inprogress one is ever written, as one block, and only
//! the checkpointed one is ever read back. This module owns that block's encoding:
//! `[magic u32][count u32][count x (page u64, offset u64, len u32, checksum u32)][crc32 u32]`,
//! entries sorted by page id, the crc covering every byte before it.

use std::collections::BTreeMap;

use super::reader::{read_u32, read_u64};
use crate::format::header::DATA_START;
use crate::types::PageId;

/// Marks a serialized translation table ("BTT1" read as little-endian bytes).
pub const TRANSLATION_MAGIC: u32 = u32::from_le_bytes(*b"BTT1");

/// The most entries a decoded table may claim; bounds the work done on a garbage count.
pub const TRANSLATION_ENTRIES_MAX: usize = 1 << 24;

const PREFIX_BYTES: usize = 8;
const ENTRY_BYTES: usize = 24;
const CHECKSUM_BYTES: usize = 4;

/// Where a block lives and what its bytes must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockRef {
    pub offset: u64,
    pub len: u32,
    /// crc32 of the block's bytes.
    pub checksum: u32,
}

impl BlockRef {
    /// The reference for `bytes` written at `offset`.
    ///
    /// Panics if `bytes` is longer than `u32::MAX`; blocks are bounded far below that.
    pub fn of(offset: u64, bytes: &[u8]) -> BlockRef {
        let len = u32::try_from(bytes.len()).expect("a block is shorter than 4 GiB");
        BlockRef {
            offset,
            len,
            checksum: crc32fast::hash(bytes),
        }
    }

    /// True when `bytes` (as read back from `offset`) are exactly the block this names.
    pub fn verify(&self, bytes: &[u8]) -> bool {
        bytes.len() == self.len as usize && crc32fast::hash(bytes) == self.checksum
    }

    /// One past the block's last byte; saturates so garbage can never overflow.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

/// One version of the page-to-block map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translation {
    pub entries: BTreeMap<PageId, BlockRef>,
}

impl Translation {
    /// The reference a header keeps to an encoded translation at `offset`. Its checksum
    /// covers the content without the encoding's own CRC trailer: a CRC-32 over data followed
    /// by that data's CRC-32 is the same constant for every input (the CRC residue), so a
    /// checksum of the whole block would accept any well-formed translation.
    pub fn block_ref(offset: u64, encoded: &[u8]) -> BlockRef {
        let content = &encoded[..encoded.len().saturating_sub(4)];
        BlockRef {
            offset,
            len: encoded.len() as u32,
            checksum: crc32fast::hash(content),
        }
    }

    /// Whether `encoded` is the translation `block` refers to (see [`Translation::block_ref`]).
    pub fn matches(block: &BlockRef, encoded: &[u8]) -> bool {
        encoded.len() == block.len as usize
            && encoded.len() >= 4
            && crc32fast::hash(&encoded[..encoded.len() - 4]) == block.checksum
    }

    /// The table's block: prefix, sorted entries, then a crc32 of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.entries.len() <= TRANSLATION_ENTRIES_MAX,
            "translation of {} entries exceeds TRANSLATION_ENTRIES_MAX",
            self.entries.len()
        );
        let mut out =
            Vec::with_capacity(PREFIX_BYTES + self.entries.len() * ENTRY_BYTES + CHECKSUM_BYTES);
        out.extend_from_slice(&TRANSLATION_MAGIC.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (page, block) in &self.entries {
            out.extend_from_slice(&page.to_le_bytes());
            out.extend_from_slice(&block.offset.to_le_bytes());
            out.extend_from_slice(&block.len.to_le_bytes());
            out.extend_from_slice(&block.checksum.to_le_bytes());
        }
        let checksum = crc32fast::hash(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Verifies and decodes a table block.
    ///
    /// Besides the framing (magic, count, exact length, checksum) this rejects page ids that are
    /// not strictly ascending and blocks that start before `DATA_START` or overlap each other:
    /// the allocator rebuilds its free space from this table, so an impossible layout must stop
    /// recovery rather than let two pages share bytes.
    pub fn decode(bytes: &[u8]) -> Result<Translation, String> {
        if bytes.len() < PREFIX_BYTES + CHECKSUM_BYTES {
            return Err(format!(
                "translation of {} bytes is shorter than its framing",
                bytes.len()
            ));
        }
        let magic = read_u32(bytes, 0);
        if magic != TRANSLATION_MAGIC {
            return Err(format!("bad translation magic {magic:#010x}"));
        }
        let count = read_u32(bytes, 4) as usize;
        if count > TRANSLATION_ENTRIES_MAX {
            return Err(format!(
                "translation count {count} exceeds {TRANSLATION_ENTRIES_MAX}"
            ));
        }
        // count is at most 2^24, so this cannot overflow even on 32-bit targets.
        let expected_len = PREFIX_BYTES + count * ENTRY_BYTES + CHECKSUM_BYTES;
        if bytes.len() != expected_len {
            return Err(format!(
                "translation of {count} entries must be {expected_len} bytes, found {}",
                bytes.len()
            ));
        }
        let body_len = expected_len - CHECKSUM_BYTES;
        let stored = read_u32(bytes, body_len);
        let computed = crc32fast::hash(&bytes[..body_len]);
        if stored != computed {
            return Err(format!(
                "translation checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        let mut entries = BTreeMap::new();
        let mut previous_page: Option<PageId> = None;
        for index in 0..count {
            let at = PREFIX_BYTES + index * ENTRY_BYTES;
            let page = read_u64(bytes, at);
            let block = BlockRef {
                offset: read_u64(bytes, at + 8),
                len: read_u32(bytes, at + 16),
                checksum: read_u32(bytes, at + 20),
            };
            if let Some(previous) = previous_page {
                if page <= previous {
                    return Err(format!("translation page {page} follows page {previous}"));
                }
            }
            if block.offset < DATA_START {
                return Err(format!(
                    "translation page {page} block at {} lies before DATA_START",
                    block.offset
                ));
            }
            if block.offset.checked_add(u64::from(block.len)).is_none() {
                return Err(format!("translation page {page} block overflows the file"));
            }
            previous_page = Some(page);
            entries.insert(page, block);
        }
        let mut by_offset: Vec<(BlockRef, PageId)> = entries
            .iter()
            .map(|(page, block)| (*block, *page))
            .collect();
        by_offset.sort_unstable();
        for pair in by_offset.windows(2) {
            let ((first, first_page), (second, second_page)) = (pair[0], pair[1]);
            // A zero-length block still owns its offset, so two blocks may never share one.
            if second.offset < first.end() || second.offset == first.offset {
                return Err(format!(
                    "translation pages {first_page} and {second_page} have overlapping blocks \
                     at {} and {}",
                    first.offset, second.offset
                ));
            }
        }
        Ok(Translation { entries })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_header_checksum_tells_translations_apart() {
        // Proves the header's checksum is not fooled by the CRC residue: two translations of
        // the same size at the same offset get different references, and each matches only
        // itself, while whole-block CRCs of both are equal.
        let one = Translation {
            entries: [(0, BlockRef::of(8192, b"one"))].into_iter().collect(),
        }
        .encode();
        let two = Translation {
            entries: [(0, BlockRef::of(8192, b"two!"))].into_iter().collect(),
        }
        .encode();
        assert_eq!(one.len(), two.len());
        assert_eq!(
            crc32fast::hash(&one),
            crc32fast::hash(&two),
            "the CRC residue this guards against"
        );
        let (first, second) = (
            Translation::block_ref(8704, &one),
            Translation::block_ref(8704, &two),
        );
        assert_ne!(first.checksum, second.checksum);
        assert!(Translation::matches(&first, &one) && !Translation::matches(&first, &two));
        assert!(Translation::matches(&second, &two) && !Translation::matches(&second, &one));
    }
    use super::*;
    use proptest::prelude::*;

    /// Tables whose blocks are laid out one after another from DATA_START, as the allocator
    /// would place them.
    fn translation_strategy() -> impl Strategy<Value = Translation> {
        proptest::collection::btree_map(any::<u64>(), (0u32..5000, any::<u32>()), 0..40).prop_map(
            |pages| {
                let mut offset = DATA_START;
                let mut entries = BTreeMap::new();
                for (page, (len, checksum)) in pages {
                    entries.insert(
                        page,
                        BlockRef {
                            offset,
                            len,
                            checksum,
                        },
                    );
                    offset += u64::from(len).max(1).div_ceil(512) * 512;
                }
                Translation { entries }
            },
        )
    }

    fn single(page: PageId, offset: u64, len: u32) -> (PageId, BlockRef) {
        (
            page,
            BlockRef {
                offset,
                len,
                checksum: 7,
            },
        )
    }

    // An empty table encodes to just its framing and decodes back to empty.
    #[test]
    fn empty_round_trip() {
        let bytes = Translation::default().encode();
        assert_eq!(bytes.len(), PREFIX_BYTES + CHECKSUM_BYTES);
        assert_eq!(Translation::decode(&bytes), Ok(Translation::default()));
    }

    // BlockRef::verify accepts exactly the bytes it was made from.
    #[test]
    fn block_ref_verifies_its_bytes() {
        let block = BlockRef::of(DATA_START, b"hello");
        assert!(block.verify(b"hello"));
        assert!(!block.verify(b"hellO"));
        assert!(!block.verify(b"hello!"));
        assert!(!block.verify(b""));
    }

    // A well-checksummed table whose blocks overlap or start in the header area is rejected.
    #[test]
    fn impossible_layouts_are_rejected() {
        let overlapping = Translation {
            entries: [single(1, DATA_START, 600), single(2, DATA_START + 512, 10)]
                .into_iter()
                .collect(),
        };
        assert!(Translation::decode(&overlapping.encode())
            .unwrap_err()
            .contains("overlapping"));
        let shared = Translation {
            entries: [single(1, DATA_START, 0), single(2, DATA_START, 0)]
                .into_iter()
                .collect(),
        };
        assert!(Translation::decode(&shared.encode()).is_err());
        let early = Translation {
            entries: [single(1, 4096, 10)].into_iter().collect(),
        };
        assert!(Translation::decode(&early.encode())
            .unwrap_err()
            .contains("DATA_START"));
    }

    // Unsorted or duplicate page ids are rejected even when the checksum matches.
    #[test]
    fn unsorted_pages_are_rejected() {
        let table = Translation {
            entries: [single(1, DATA_START, 10), single(2, DATA_START + 512, 10)]
                .into_iter()
                .collect(),
        };
        let mut bytes = table.encode();
        // Rewrite the second entry's page id to 1 (a duplicate), then fix the checksum.
        bytes[PREFIX_BYTES + ENTRY_BYTES..PREFIX_BYTES + ENTRY_BYTES + 8]
            .copy_from_slice(&1u64.to_le_bytes());
        let body = bytes.len() - CHECKSUM_BYTES;
        let checksum = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&checksum.to_le_bytes());
        assert!(Translation::decode(&bytes).unwrap_err().contains("follows"));
    }

    // A count beyond the maximum is refused before anything is sized from it.
    #[test]
    fn huge_count_is_rejected() {
        let mut bytes = Translation::default().encode();
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Translation::decode(&bytes).unwrap_err().contains("exceeds"));
    }

    proptest! {
        // Every valid table survives encode then decode unchanged.
        #[test]
        fn round_trip(table in translation_strategy()) {
            prop_assert_eq!(Translation::decode(&table.encode()), Ok(table));
        }

        // Flipping any single bit of an encoded table makes decode fail.
        #[test]
        fn bit_flips_are_detected(table in translation_strategy(), bit in any::<prop::sample::Index>()) {
            let mut bytes = table.encode();
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Translation::decode(&bytes).is_err());
        }

        // Every strict prefix of an encoded table fails to decode.
        #[test]
        fn truncation_is_detected(table in translation_strategy()) {
            let bytes = table.encode();
            for len in 0..bytes.len() {
                prop_assert!(Translation::decode(&bytes[..len]).is_err(), "prefix of {} bytes", len);
            }
        }

        // Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Translation::decode(&bytes);
        }
    }
}
