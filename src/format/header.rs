//! The two header slots at the front of the data file, and the choice between them.
//!
//! Checkpoint `n` writes its header into slot `n % 2`, so the previous checkpoint's header stays
//! intact in the other slot while the new one is written (TokuDB's ping-pong headers). A slot's
//! encoding is `HEADER_BYTES` long so it fits one sector and its write is atomic on real disks;
//! the simulated disk may still tear it, which the trailing crc32 detects. At open the newer
//! valid slot wins; an invalid other slot is reported as a warning, not an error, because the
//! chosen checkpoint does not depend on it.

use super::reader::{read_u32, read_u64};
use crate::format::translation::BlockRef;
use crate::types::{Lsn, PageId};

/// Byte offsets of slot 0 and slot 1 in the data file.
pub const HEADER_SLOT_OFFSETS: [u64; 2] = [0, 4096];
/// A slot's encoded size (fits one sector, so its write is atomic on real disks).
pub const HEADER_BYTES: usize = 512;
/// First byte a block may use; everything before it belongs to the header slots.
pub const DATA_START: u64 = 8192;
/// Marks a header slot ("CRSHPNT1" read as little-endian bytes).
pub const HEADER_MAGIC: u64 = u64::from_le_bytes(*b"CRSHPNT1");
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of meaningful fields before the filler.
const FIELDS_BYTES: usize = 64;
const CHECKSUM_AT: usize = HEADER_BYTES - 4;

/// What a checkpoint made durable: where its translation is and where its log replay starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub checkpoint_count: u64,
    /// LSN of this checkpoint's begin_checkpoint record.
    pub checkpoint_lsn: Lsn,
    /// Where the checkpointed translation table is.
    pub translation: BlockRef,
    pub root_page: PageId,
    pub next_page_id: PageId,
    pub page_size_bytes: u32,
}

impl Header {
    /// Exactly `HEADER_BYTES` bytes: magic u64, version u32, checkpoint_count u64,
    /// checkpoint_lsn u64, translation (offset u64, len u32, checksum u32), root_page u64,
    /// next_page_id u64, page_size_bytes u32, filler drawn from the fields, then the crc32 of all bytes before
    /// it in the last 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::with_capacity(FIELDS_BYTES);
        fields.extend_from_slice(&self.checkpoint_count.to_le_bytes());
        fields.extend_from_slice(&self.checkpoint_lsn.0.to_le_bytes());
        fields.extend_from_slice(&self.translation.offset.to_le_bytes());
        fields.extend_from_slice(&self.translation.len.to_le_bytes());
        fields.extend_from_slice(&self.translation.checksum.to_le_bytes());
        fields.extend_from_slice(&self.root_page.to_le_bytes());
        fields.extend_from_slice(&self.next_page_id.to_le_bytes());
        fields.extend_from_slice(&self.page_size_bytes.to_le_bytes());
        debug_assert_eq!(fields.len() + 12, FIELDS_BYTES);
        frame_slot(HEADER_MAGIC, &fields)
    }
}

/// A record kept in two ping-pong slots: the checkpoint count picks its slot.
pub trait SlotRecord: Clone {
    fn checkpoint_count(&self) -> u64;

    /// The slot this record belongs in: checkpoint_count % 2.
    fn slot(&self) -> usize {
        (self.checkpoint_count() % 2) as usize
    }
}

impl SlotRecord for Header {
    fn checkpoint_count(&self) -> u64 {
        self.checkpoint_count
    }
}

/// What one slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState<T = Header> {
    /// Every byte is zero or the slot lies past the end of the file: never written.
    Empty,
    Valid(T),
    /// Bad magic, version or checksum, a torn or short slot, or a record whose count parity
    /// names the other slot (a misdirected write).
    Invalid {
        reason: String,
    },
}

/// Verifies the bytes read from header slot `slot`.
///
/// `bytes` may be shorter than `HEADER_BYTES` if the file is short (empty if the slot lies
/// wholly past its end); only the first `HEADER_BYTES` bytes are examined.
pub fn read_slot(slot: usize, bytes: &[u8]) -> SlotState {
    read_framed_slot(slot, bytes, HEADER_MAGIC, |bytes| Header {
        checkpoint_count: read_u64(bytes, 12),
        checkpoint_lsn: Lsn(read_u64(bytes, 20)),
        translation: BlockRef {
            offset: read_u64(bytes, 28),
            len: read_u32(bytes, 36),
            checksum: read_u32(bytes, 40),
        },
        root_page: read_u64(bytes, 44),
        next_page_id: read_u64(bytes, 52),
        page_size_bytes: read_u32(bytes, 60),
    })
}

/// Frames a slot record: `magic u64, version u32`, then `fields`, filler, and the crc32 of
/// everything before it in the last 4 of `HEADER_BYTES` bytes.
///
/// The filler is not zeros but a stream drawn from the fields ([`fill_from_fields`]), so two
/// different records differ in every sector of the slot on any disk whose sectors are at least
/// 64 bytes (the first 64 bytes hold the fields that tell records apart). A torn write of a record then can never complete an older record's sectors:
/// with zero padding, a checkpoint that a crash abandoned (its slot torn, so recovery used the
/// other) could come back whole when the next write into the slot, torn again, landed only
/// the padding sectors the two records share, and recovery would follow it to blocks already
/// reused. A mix of two records now always fails the checksum.
pub(crate) fn frame_slot(magic: u64, fields: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(fields);
    assert!(out.len() <= CHECKSUM_AT, "slot fields overflow the slot");
    fill_from_fields(&mut out);
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_BYTES);
    out
}

/// Extends `framed` (magic, version and fields) to `CHECKSUM_AT` bytes with a SplitMix64
/// stream seeded by the crc32 of those bytes: deterministic, so the same record always encodes
/// the same way, and different for any two records that differ anywhere. Readers need not
/// know it: the checksum covers the filler like any other byte.
fn fill_from_fields(framed: &mut Vec<u8>) {
    let mut state = u64::from(crc32fast::hash(framed)) | (1 << 32);
    while framed.len() < CHECKSUM_AT {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut word = state;
        word = (word ^ (word >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        word = (word ^ (word >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        word ^= word >> 31;
        let take = (CHECKSUM_AT - framed.len()).min(8);
        framed.extend_from_slice(&word.to_le_bytes()[..take]);
    }
}

/// Verifies a slot framed by [`frame_slot`] with `magic` and decodes it with `decode`, which
/// gets the whole verified slot (its fields start at byte 12).
pub(crate) fn read_framed_slot<T: SlotRecord>(
    slot: usize,
    bytes: &[u8],
    magic: u64,
    decode: impl FnOnce(&[u8]) -> T,
) -> SlotState<T> {
    let bytes = &bytes[..bytes.len().min(HEADER_BYTES)];
    if bytes.iter().all(|&byte| byte == 0) {
        return SlotState::Empty;
    }
    let invalid = |reason: String| SlotState::Invalid { reason };
    if slot >= 2 {
        return invalid(format!("there is no slot {slot}"));
    }
    if bytes.len() < HEADER_BYTES {
        return invalid(format!(
            "slot holds {} of {HEADER_BYTES} bytes",
            bytes.len()
        ));
    }
    let found = read_u64(bytes, 0);
    if found != magic {
        return invalid(format!("bad magic {found:#018x}"));
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return invalid(format!("unsupported format version {version}"));
    }
    let stored = read_u32(bytes, CHECKSUM_AT);
    let computed = crc32fast::hash(&bytes[..CHECKSUM_AT]);
    if stored != computed {
        return invalid(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let record = decode(bytes);
    // A record that verifies but sits in the wrong slot was written to the wrong place; trusting
    // it could let it shadow the checkpoint it was meant to follow.
    if record.slot() != slot {
        return invalid(format!(
            "checkpoint {} belongs in slot {}, found in slot {slot} (misdirected write)",
            record.checkpoint_count(),
            record.slot()
        ));
    }
    SlotState::Valid(record)
}

/// Which slot's record to open with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderChoice<T = Header> {
    /// Use this record; `warning` is Some when the other slot is Invalid (TokuDB warns and goes
    /// on).
    Use {
        header: T,
        slot: usize,
        warning: Option<String>,
    },
    /// Both slots Empty: never checkpointed.
    Fresh,
    /// No slot is Valid and at least one is Invalid. `reasons` per slot ("empty" for an Empty
    /// one).
    Corrupt { reasons: [String; 2] },
}

/// Of two Valid slots take the higher count; one Valid: use it (warn if the other is Invalid,
/// not if Empty).
pub fn choose<T: SlotRecord>(slots: &[SlotState<T>; 2]) -> HeaderChoice<T> {
    let chosen = match (&slots[0], &slots[1]) {
        (SlotState::Valid(first), SlotState::Valid(second)) => {
            // Valid slots always differ in count parity, so ties cannot happen; slot 0 wins one.
            if second.checkpoint_count() > first.checkpoint_count() {
                1
            } else {
                0
            }
        }
        (SlotState::Valid(_), _) => 0,
        (_, SlotState::Valid(_)) => 1,
        (SlotState::Empty, SlotState::Empty) => return HeaderChoice::Fresh,
        (first, second) => {
            return HeaderChoice::Corrupt {
                reasons: [describe(first), describe(second)],
            };
        }
    };
    let SlotState::Valid(header) = &slots[chosen] else {
        unreachable!("the chosen slot is Valid");
    };
    let warning = match &slots[1 - chosen] {
        SlotState::Invalid { reason } => Some(format!("slot {} is invalid: {reason}", 1 - chosen)),
        SlotState::Empty | SlotState::Valid(_) => None,
    };
    HeaderChoice::Use {
        header: header.clone(),
        slot: chosen,
        warning,
    }
}

fn describe<T: SlotRecord>(state: &SlotState<T>) -> String {
    match state {
        SlotState::Empty => "empty".to_string(),
        SlotState::Valid(record) => format!("valid (checkpoint {})", record.checkpoint_count()),
        SlotState::Invalid { reason } => reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header_strategy() -> impl Strategy<Value = Header> {
        (
            any::<u64>(),
            any::<u64>(),
            (any::<u64>(), any::<u32>(), any::<u32>()),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    checkpoint_count,
                    lsn,
                    (offset, len, checksum),
                    root_page,
                    next_page_id,
                    size,
                )| {
                    Header {
                        checkpoint_count,
                        checkpoint_lsn: Lsn(lsn),
                        translation: BlockRef {
                            offset,
                            len,
                            checksum,
                        },
                        root_page,
                        next_page_id,
                        page_size_bytes: size,
                    }
                },
            )
    }

    fn header(checkpoint_count: u64) -> Header {
        Header {
            checkpoint_count,
            checkpoint_lsn: Lsn(100 * checkpoint_count),
            translation: BlockRef {
                offset: DATA_START,
                len: 12,
                checksum: 3,
            },
            root_page: 1,
            next_page_id: 2,
            page_size_bytes: 4096,
        }
    }

    fn valid(checkpoint_count: u64) -> SlotState {
        SlotState::Valid(header(checkpoint_count))
    }

    fn invalid() -> SlotState {
        SlotState::Invalid {
            reason: "torn".to_string(),
        }
    }

    fn used(checkpoint_count: u64, slot: usize, warned: bool) -> HeaderChoice {
        HeaderChoice::Use {
            header: header(checkpoint_count),
            slot,
            warning: warned.then(|| format!("slot {} is invalid: torn", 1 - slot)),
        }
    }

    // The two slots fit before DATA_START and each slot fits in the gap before the next.
    #[test]
    fn layout_constants_are_consistent() {
        assert!(HEADER_SLOT_OFFSETS[0] + HEADER_BYTES as u64 <= HEADER_SLOT_OFFSETS[1]);
        assert!(HEADER_SLOT_OFFSETS[1] + HEADER_BYTES as u64 <= DATA_START);
        assert_eq!(header(5).encode().len(), HEADER_BYTES);
    }

    // Zero bytes, a missing slot and a short zero read are all Empty; short garbage is Invalid.
    #[test]
    fn empty_and_short_slots() {
        assert_eq!(read_slot(0, &[]), SlotState::Empty);
        assert_eq!(read_slot(1, &[0; 100]), SlotState::Empty);
        assert_eq!(read_slot(0, &[0; HEADER_BYTES]), SlotState::Empty);
        let bytes = header(2).encode();
        assert!(matches!(
            read_slot(0, &bytes[..300]),
            SlotState::Invalid { .. }
        ));
    }

    // Bytes past HEADER_BYTES (the rest of the sector run) do not affect the verdict.
    #[test]
    fn trailing_bytes_are_ignored() {
        let mut bytes = header(3).encode();
        bytes.extend_from_slice(&[0xAB; 100]);
        assert_eq!(read_slot(1, &bytes), valid(3));
    }

    // A correctly checksummed header with another version is refused.
    #[test]
    fn other_version_is_invalid() {
        let mut bytes = header(2).encode();
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        let checksum = crc32fast::hash(&bytes[..CHECKSUM_AT]);
        bytes[CHECKSUM_AT..].copy_from_slice(&checksum.to_le_bytes());
        let SlotState::Invalid { reason } = read_slot(0, &bytes) else {
            panic!("accepted")
        };
        assert!(reason.contains("version"), "{reason}");
    }

    // A valid header read from the slot its count does not name is a misdirected write.
    #[test]
    fn wrong_slot_is_invalid() {
        let bytes = header(4).encode();
        assert_eq!(read_slot(0, &bytes), valid(4));
        let SlotState::Invalid { reason } = read_slot(1, &bytes) else {
            panic!("accepted")
        };
        assert!(reason.contains("misdirected"), "{reason}");
        assert!(matches!(read_slot(2, &bytes), SlotState::Invalid { .. }));
    }

    // Every combination of Empty / Valid(n) / Valid(n+1) / Invalid gives the right choice.
    #[test]
    fn choose_covers_every_combination() {
        let corrupt = |first: &str, second: &str| HeaderChoice::Corrupt {
            reasons: [first.to_string(), second.to_string()],
        };
        // Slot 0 holds even counts (2 or 4), slot 1 odd ones (3): 4 is n+1 relative to 3.
        let cases: Vec<([SlotState; 2], HeaderChoice)> = vec![
            ([SlotState::Empty, SlotState::Empty], HeaderChoice::Fresh),
            ([SlotState::Empty, valid(3)], used(3, 1, false)),
            ([SlotState::Empty, invalid()], corrupt("empty", "torn")),
            ([valid(2), SlotState::Empty], used(2, 0, false)),
            ([valid(2), valid(3)], used(3, 1, false)),
            ([valid(2), invalid()], used(2, 0, true)),
            ([valid(4), SlotState::Empty], used(4, 0, false)),
            ([valid(4), valid(3)], used(4, 0, false)),
            ([valid(4), invalid()], used(4, 0, true)),
            ([invalid(), SlotState::Empty], corrupt("torn", "empty")),
            ([invalid(), valid(3)], used(3, 1, true)),
            ([invalid(), invalid()], corrupt("torn", "torn")),
        ];
        for (slots, expected) in cases {
            assert_eq!(choose(&slots), expected, "slots {slots:?}");
        }
    }

    proptest! {
        // Any header reads back unchanged from the slot it belongs in.
        #[test]
        fn round_trip(header in header_strategy()) {
            let bytes = header.encode();
            prop_assert_eq!(bytes.len(), HEADER_BYTES);
            prop_assert_eq!(read_slot(header.slot(), &bytes), SlotState::Valid(header));
        }

        // Any single bit flip in an encoded header makes its slot Invalid.
        #[test]
        fn bit_flips_are_detected(header in header_strategy(), bit in 0..HEADER_BYTES * 8) {
            let mut bytes = header.encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let state = read_slot(header.slot(), &bytes);
            prop_assert!(matches!(state, SlotState::Invalid { .. }), "{:?}", state);
        }

        // A torn write never revives the record a slot held before: over an older record of
        // the same checkpoint that a crash left damaged in one sector (the abandoned attempt
        // recovery passed over), every subset of the new record's sectors landing leaves a
        // slot that verifies as the new record (all landed) or not at all, on every sector
        // size the simulated disk offers.
        #[test]
        fn a_torn_rewrite_never_revives_the_older_record(
            older in header_strategy(),
            lsn_step in 1u64..1 << 40,
            sector_shift in 6u32..=9,
            damaged in any::<proptest::sample::Index>(),
            garbage in any::<bool>(),
        ) {
            let newer = Header {
                checkpoint_lsn: Lsn(older.checkpoint_lsn.0.wrapping_add(lsn_step)),
                ..older.clone()
            };
            let sector = 1usize << sector_shift;
            let sectors = HEADER_BYTES / sector;
            let mut slot = older.encode();
            let hit = damaged.index(sectors) * sector;
            for (offset, byte) in slot[hit..hit + sector].iter_mut().enumerate() {
                *byte = if garbage { (offset as u8).wrapping_mul(151) ^ 0x5A } else { 0 };
            }
            let new_bytes = newer.encode();
            for landed in 0u32..1 << sectors {
                let mut torn = slot.clone();
                for index in (0..sectors).filter(|index| landed & (1 << index) != 0) {
                    let range = index * sector..(index + 1) * sector;
                    torn[range.clone()].copy_from_slice(&new_bytes[range]);
                }
                let state = read_slot(older.slot(), &torn);
                if landed == (1 << sectors) - 1 {
                    prop_assert_eq!(state, SlotState::Valid(newer.clone()));
                } else {
                    prop_assert!(
                        matches!(state, SlotState::Invalid { .. } | SlotState::Empty),
                        "sectors {:#b} of {} landed: {:?}", landed, sectors, state
                    );
                }
            }
        }

        // Arbitrary bytes never panic the reader.
        #[test]
        fn arbitrary_bytes_never_panic(slot in 0usize..3, bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_slot(slot, &bytes);
        }
    }
}
