//! B+tree nodes and their on-disk blocks.
//!
//! A node's raw encoding is `[kind u8][count u32]` followed by, for a leaf, `count` entries of
//! `(key_len u32, key, value_len u32, value)`, and for an internal node `count` keys of
//! `(key_len u32, key)` and then `count + 1` child page ids (u64). A block wraps the raw
//! encoding as `[magic u32][page_id u64][raw_len u32][lz4 block-compressed raw encoding]`.
//! The block's checksum lives in the translation entry that points at it, not in the block;
//! the page id inside the block catches a translation entry that points at the wrong block.

use super::reader::Reader;
use crate::types::PageId;

/// Marks a page block ("PAG1" read as little-endian bytes).
pub const PAGE_MAGIC: u32 = u32::from_le_bytes(*b"PAG1");
/// The largest raw encoding a block may claim; bounds the buffer a garbage length can request.
pub const PAGE_RAW_BYTES_MAX: usize = 16 << 20;

const KIND_LEAF: u8 = 1;
const KIND_INTERNAL: u8 = 2;
const RAW_PREFIX_BYTES: usize = 5;
const BLOCK_PREFIX_BYTES: usize = 16;
/// An lz4 block never expands its input by more than a factor of 255 (a match costs at least
/// one byte per 255 bytes it produces), so a larger claimed raw length is garbage.
const LZ4_EXPANSION_MAX: usize = 255;

/// A B+tree node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// Entries sorted by key, keys unique.
    Leaf { entries: Vec<(Vec<u8>, Vec<u8>)> },
    /// `children.len() == keys.len() + 1`; child `i + 1` holds keys `>= keys[i]`.
    Internal {
        keys: Vec<Vec<u8>>,
        children: Vec<PageId>,
    },
}

impl Node {
    /// Size of the uncompressed encoding; the tree splits a node when this exceeds the page size.
    pub fn encoded_size(&self) -> usize {
        RAW_PREFIX_BYTES
            + match self {
                Node::Leaf { entries } => entries
                    .iter()
                    .map(|(key, value)| 8 + key.len() + value.len())
                    .sum::<usize>(),
                Node::Internal { keys, children } => {
                    keys.iter().map(|key| 4 + key.len()).sum::<usize>() + 8 * children.len()
                }
            }
    }

    /// Checks that keys are sorted and unique and that an internal node has one more child than
    /// keys; used right before encode and right after decode.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Node::Leaf { entries } => {
                for (index, pair) in entries.windows(2).enumerate() {
                    if pair[0].0 >= pair[1].0 {
                        return Err(format!(
                            "leaf key {} ({:?}) is not below key {} ({:?})",
                            index,
                            pair[0].0,
                            index + 1,
                            pair[1].0
                        ));
                    }
                }
            }
            Node::Internal { keys, children } => {
                if children.len() != keys.len() + 1 {
                    return Err(format!(
                        "internal node has {} keys but {} children",
                        keys.len(),
                        children.len()
                    ));
                }
                for (index, pair) in keys.windows(2).enumerate() {
                    if pair[0] >= pair[1] {
                        return Err(format!(
                            "internal key {} ({:?}) is not below key {} ({:?})",
                            index,
                            pair[0],
                            index + 1,
                            pair[1]
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn encode_raw(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size());
        match self {
            Node::Leaf { entries } => {
                out.push(KIND_LEAF);
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (key, value) in entries {
                    put_bytes(&mut out, key);
                    put_bytes(&mut out, value);
                }
            }
            Node::Internal { keys, children } => {
                out.push(KIND_INTERNAL);
                out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
                for key in keys {
                    put_bytes(&mut out, key);
                }
                for child in children {
                    out.extend_from_slice(&child.to_le_bytes());
                }
            }
        }
        debug_assert_eq!(
            out.len(),
            self.encoded_size(),
            "encoded_size disagrees with encode"
        );
        out
    }

    fn decode_raw(raw: &[u8]) -> Result<Node, String> {
        let mut reader = Reader::new(raw);
        let kind = reader.u8().ok_or("node shorter than its kind")?;
        let count = reader.u32().ok_or("node shorter than its count")? as usize;
        let node = match kind {
            KIND_LEAF => {
                // Each entry takes at least 8 bytes, so the count is bounded before sizing.
                if count > reader.bytes.len() / 8 {
                    return Err(format!("leaf count {count} exceeds the node's bytes"));
                }
                let mut entries = Vec::with_capacity(count);
                for index in 0..count {
                    let key = reader
                        .bytes_with_len()
                        .ok_or(format!("leaf key {index} is short"))?;
                    let value = reader
                        .bytes_with_len()
                        .ok_or(format!("leaf value {index} is short"))?;
                    entries.push((key, value));
                }
                Node::Leaf { entries }
            }
            KIND_INTERNAL => {
                // Keys take at least 4 bytes each and the count + 1 children 8 bytes each.
                if count > reader.bytes.len().saturating_sub(8) / 12 {
                    return Err(format!("internal count {count} exceeds the node's bytes"));
                }
                let mut keys = Vec::with_capacity(count);
                for index in 0..count {
                    keys.push(
                        reader
                            .bytes_with_len()
                            .ok_or(format!("internal key {index} is short"))?,
                    );
                }
                let mut children = Vec::with_capacity(count + 1);
                for index in 0..=count {
                    children.push(reader.u64().ok_or(format!("child {index} is short"))?);
                }
                Node::Internal { keys, children }
            }
            other => return Err(format!("unknown node kind {other}")),
        };
        if !reader.bytes.is_empty() {
            return Err(format!(
                "{} trailing bytes after the node",
                reader.bytes.len()
            ));
        }
        Ok(node)
    }
}

/// The block for `node` stored as page `page_id`.
///
/// Panics if the raw encoding exceeds `PAGE_RAW_BYTES_MAX`, which the reader would reject; the
/// tree splits nodes long before that.
pub fn encode_block(page_id: PageId, node: &Node) -> Vec<u8> {
    debug_assert_eq!(
        node.check(),
        Ok(()),
        "encoding an invalid node for page {page_id}"
    );
    let raw = node.encode_raw();
    assert!(
        raw.len() <= PAGE_RAW_BYTES_MAX,
        "page {page_id} of {} raw bytes exceeds PAGE_RAW_BYTES_MAX",
        raw.len()
    );
    let compressed = lz4_flex::block::compress(&raw);
    let mut out = Vec::with_capacity(BLOCK_PREFIX_BYTES + compressed.len());
    out.extend_from_slice(&PAGE_MAGIC.to_le_bytes());
    out.extend_from_slice(&page_id.to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// Verifies and decodes a page block read for `expected_page_id`. Never panics.
pub fn decode_block(expected_page_id: PageId, bytes: &[u8]) -> Result<Node, String> {
    if bytes.len() < BLOCK_PREFIX_BYTES {
        return Err(format!(
            "page block of {} bytes is shorter than its prefix",
            bytes.len()
        ));
    }
    let mut reader = Reader::new(bytes);
    let (Some(magic), Some(page_id), Some(raw_len)) = (reader.u32(), reader.u64(), reader.u32())
    else {
        unreachable!("the prefix length was checked");
    };
    if magic != PAGE_MAGIC {
        return Err(format!("bad page magic {magic:#010x}"));
    }
    if page_id != expected_page_id {
        return Err(format!(
            "block holds page {page_id}, expected page {expected_page_id}"
        ));
    }
    let raw_len = raw_len as usize;
    if raw_len > PAGE_RAW_BYTES_MAX {
        return Err(format!("raw length {raw_len} exceeds PAGE_RAW_BYTES_MAX"));
    }
    let compressed = reader.bytes;
    if raw_len > compressed.len().saturating_mul(LZ4_EXPANSION_MAX) {
        return Err(format!(
            "raw length {raw_len} is impossible for {} compressed bytes",
            compressed.len()
        ));
    }
    let mut raw = vec![0u8; raw_len];
    let produced = lz4_flex::block::decompress_into(compressed, &mut raw)
        .map_err(|error| format!("page decompression failed: {error}"))?;
    if produced != raw_len {
        return Err(format!("decompressed {produced} bytes, expected {raw_len}"));
    }
    let node = Node::decode_raw(&raw)?;
    node.check()?;
    Ok(node)
}

/// Marks a page slot of the in-place strategies ("PGS1" read as little-endian bytes).
pub const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"PGS1");
/// Bytes before the node in a slot: magic u32, crc32 u32, page_id u64, page LSN u64, raw_len
/// u32.
pub const SLOT_PREFIX_BYTES: usize = 28;
/// Slots start on, and are sized in multiples of, this many bytes (one sector).
pub const SLOT_ALIGNMENT_BYTES: u64 = 512;

/// The raw (uncompressed) encoding of a node, as redo records carry it.
pub fn encode_node(node: &Node) -> Vec<u8> {
    debug_assert_eq!(node.check(), Ok(()), "encoding an invalid node");
    node.encode_raw()
}

/// Decodes and checks a raw node encoding.
pub fn decode_node(raw: &[u8]) -> Result<Node, String> {
    let node = Node::decode_raw(raw)?;
    node.check()?;
    Ok(node)
}

/// A fixed page slot's size: room for the prefix, a full page and one more entry (a node at
/// rest never exceeds that, see `tree.rs`), rounded up to the slot alignment.
pub fn slot_bytes(page_size_bytes: usize, entry_bytes_max: usize) -> u64 {
    let needed = (SLOT_PREFIX_BYTES + page_size_bytes + entry_bytes_max) as u64;
    needed.div_ceil(SLOT_ALIGNMENT_BYTES) * SLOT_ALIGNMENT_BYTES
}

/// A page slot written in place: `[magic u32][crc32 u32][page_id u64][lsn u64][raw_len u32]`,
/// the raw node, zero padding to `slot_bytes`. The crc covers every byte of the prefix but
/// itself and the raw node, so a torn slot (any sector old or garbage) fails to verify; the LSN
/// is the last redo record the page reflects, which makes redo idempotent.
pub fn encode_slot(page_id: PageId, lsn: u64, node: &Node, slot_bytes: u64) -> Vec<u8> {
    let raw = encode_node(node);
    assert!(
        SLOT_PREFIX_BYTES + raw.len() <= slot_bytes as usize,
        "page {page_id} of {} raw bytes overflows its {slot_bytes}-byte slot",
        raw.len()
    );
    let mut out = Vec::with_capacity(slot_bytes as usize);
    out.extend_from_slice(&SLOT_MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&page_id.to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&raw);
    let checksum = slot_checksum(&out);
    out[4..8].copy_from_slice(&checksum.to_le_bytes());
    out.resize(slot_bytes as usize, 0);
    out
}

/// What a slot holds.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotContent {
    /// All zeros: the page was never written there.
    Empty,
    Page {
        node: Node,
        lsn: u64,
    },
}

/// Verifies and decodes a slot read back from disk.
pub fn decode_slot(expected_page_id: PageId, bytes: &[u8]) -> Result<SlotContent, String> {
    if bytes.iter().all(|&byte| byte == 0) {
        return Ok(SlotContent::Empty);
    }
    if bytes.len() < SLOT_PREFIX_BYTES {
        return Err(format!(
            "slot of {} bytes is shorter than its prefix",
            bytes.len()
        ));
    }
    let mut reader = Reader::new(bytes);
    let (Some(magic), Some(stored), Some(page_id), Some(lsn), Some(raw_len)) = (
        reader.u32(),
        reader.u32(),
        reader.u64(),
        reader.u64(),
        reader.u32(),
    ) else {
        unreachable!("the prefix length was checked");
    };
    if magic != SLOT_MAGIC {
        return Err(format!("bad slot magic {magic:#010x}"));
    }
    let end = SLOT_PREFIX_BYTES.saturating_add(raw_len as usize);
    if end > bytes.len() {
        return Err(format!("raw length {raw_len} runs past the slot"));
    }
    let computed = slot_checksum(&bytes[..end]);
    if stored != computed {
        return Err(format!(
            "slot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    if page_id != expected_page_id {
        return Err(format!(
            "slot holds page {page_id}, expected page {expected_page_id}"
        ));
    }
    let node = decode_node(&bytes[SLOT_PREFIX_BYTES..end])?;
    Ok(SlotContent::Page { node, lsn })
}

/// crc32 of a slot's magic and everything after its crc field.
fn slot_checksum(slot: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&slot[..4]);
    hasher.update(&slot[8..]);
    hasher.finalize()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..32)
    }

    fn node_strategy() -> impl Strategy<Value = Node> {
        prop_oneof![
            proptest::collection::btree_map(bytes(), bytes(), 0..20).prop_map(|entries| {
                Node::Leaf {
                    entries: entries.into_iter().collect(),
                }
            }),
            proptest::collection::btree_set(bytes(), 0..20).prop_flat_map(|keys| {
                let count = keys.len() + 1;
                proptest::collection::vec(any::<u64>(), count).prop_map(move |children| {
                    Node::Internal {
                        keys: keys.iter().cloned().collect(),
                        children,
                    }
                })
            }),
        ]
    }

    fn leaf(keys: &[&str]) -> Node {
        Node::Leaf {
            entries: keys
                .iter()
                .map(|key| (key.as_bytes().to_vec(), b"v".to_vec()))
                .collect(),
        }
    }

    // check() accepts sorted unique keys and rejects unsorted, duplicate or miscounted nodes.
    #[test]
    fn check_enforces_the_invariants() {
        assert_eq!(leaf(&[]).check(), Ok(()));
        assert_eq!(leaf(&["a", "b"]).check(), Ok(()));
        assert!(leaf(&["b", "a"]).check().is_err());
        assert!(leaf(&["a", "a"]).check().is_err());
        let internal = |keys: &[&str], children: usize| Node::Internal {
            keys: keys.iter().map(|key| key.as_bytes().to_vec()).collect(),
            children: (0..children as u64).collect(),
        };
        assert_eq!(internal(&["m"], 2).check(), Ok(()));
        assert!(internal(&["m"], 1).check().is_err());
        assert!(internal(&["m", "c"], 3).check().is_err());
    }

    // A block read for another page id, with a bad magic or an oversized raw length is refused.
    #[test]
    fn block_framing_is_verified() {
        let block = encode_block(7, &leaf(&["a"]));
        assert_eq!(decode_block(7, &block), Ok(leaf(&["a"])));
        assert!(decode_block(8, &block)
            .unwrap_err()
            .contains("expected page 8"));
        let mut magic = block.clone();
        magic[0] ^= 1;
        assert!(decode_block(7, &magic).unwrap_err().contains("magic"));
        let mut huge = block.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_block(7, &huge)
            .unwrap_err()
            .contains("PAGE_RAW_BYTES_MAX"));
        let mut short = block.clone();
        short[12..16].copy_from_slice(&1u32.to_le_bytes());
        assert!(decode_block(7, &short).is_err());
        assert!(decode_block(7, &block[..10]).is_err());
    }

    #[test]
    fn a_slot_reads_back_its_page_and_lsn_and_refuses_another_page() {
        // Proves slot framing round-trips, pads to the slot size, and names a wrong page id.
        let slot = encode_slot(3, 77, &leaf(&["a", "b"]), 1024);
        assert_eq!(slot.len(), 1024);
        assert_eq!(
            decode_slot(3, &slot),
            Ok(SlotContent::Page {
                node: leaf(&["a", "b"]),
                lsn: 77
            })
        );
        assert!(decode_slot(4, &slot)
            .unwrap_err()
            .contains("expected page 4"));
        assert_eq!(decode_slot(3, &[0; 1024]), Ok(SlotContent::Empty));
    }

    // A well-framed block whose node breaks an invariant is refused after decoding.
    #[test]
    fn decoded_nodes_are_checked() {
        let unsorted = Node::Leaf {
            entries: vec![(b"b".to_vec(), vec![]), (b"a".to_vec(), vec![])],
        };
        let raw = unsorted.encode_raw();
        let mut block = Vec::new();
        block.extend_from_slice(&PAGE_MAGIC.to_le_bytes());
        block.extend_from_slice(&3u64.to_le_bytes());
        block.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        block.extend_from_slice(&lz4_flex::block::compress(&raw));
        assert!(decode_block(3, &block).unwrap_err().contains("not below"));
    }

    // The expansion bound holds for the most compressible input, so it never refuses real data.
    #[test]
    fn expansion_bound_admits_runs_of_zeros() {
        let raw = vec![0u8; 1 << 20];
        let compressed = lz4_flex::block::compress(&raw);
        assert!(raw.len() <= compressed.len() * LZ4_EXPANSION_MAX);
        let node = Node::Leaf {
            entries: vec![(vec![0; 8], vec![0; PAGE_RAW_BYTES_MAX / 2])],
        };
        assert_eq!(decode_block(1, &encode_block(1, &node)), Ok(node));
    }

    proptest! {
        // Any single bit flip in a slot's prefix or node is detected (the padding is not
        // covered: it carries nothing).
        #[test]
        fn slot_bit_flips_are_detected(node in node_strategy(), lsn in any::<u64>(), bit in 0usize..4096) {
            let slot = encode_slot(9, lsn, &node, 8192);
            let used = SLOT_PREFIX_BYTES + encode_node(&node).len();
            let bit = bit % (used * 8);
            let mut flipped = slot.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_slot(9, &flipped).is_err());
        }
    }

    proptest! {
        // Every valid node survives encode_block then decode_block unchanged.
        #[test]
        fn round_trip(page_id in any::<u64>(), node in node_strategy()) {
            prop_assert_eq!(node.check(), Ok(()));
            prop_assert_eq!(decode_block(page_id, &encode_block(page_id, &node)), Ok(node));
        }

        // encoded_size is exactly the length of the raw encoding.
        #[test]
        fn encoded_size_matches(node in node_strategy()) {
            prop_assert_eq!(node.encode_raw().len(), node.encoded_size());
            prop_assert_eq!(Node::decode_raw(&node.encode_raw()), Ok(node));
        }

        // Arbitrary block bytes never panic the decoder.
        #[test]
        fn arbitrary_blocks_never_panic(page_id in 0u64..4, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_block(page_id, &bytes);
        }

        // Arbitrary raw encodings behind a valid frame never panic the decoder.
        #[test]
        fn arbitrary_raw_nodes_never_panic(kind in 0u8..4, raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut raw = raw;
            if !raw.is_empty() {
                raw[0] = kind;
            }
            let _ = Node::decode_raw(&raw);
            let mut block = Vec::new();
            block.extend_from_slice(&PAGE_MAGIC.to_le_bytes());
            block.extend_from_slice(&0u64.to_le_bytes());
            block.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            block.extend_from_slice(&lz4_flex::block::compress(&raw));
            let _ = decode_block(0, &block);
        }

        // Flipping any bit of a block's compressed body either fails or yields a valid node.
        #[test]
        fn corrupted_bodies_never_panic(node in node_strategy(), bit in any::<prop::sample::Index>()) {
            let mut block = encode_block(1, &node);
            let bit = bit.index(block.len() * 8);
            block[bit / 8] ^= 1 << (bit % 8);
            if let Ok(decoded) = decode_block(1, &block) {
                prop_assert_eq!(decoded.check(), Ok(()));
            }
        }
    }
}
