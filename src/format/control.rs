//! The in-place strategies' anchor: two ping-pong slots naming the last completed checkpoint.
//!
//! The fuzzy strategy keeps them in a control file (PostgreSQL's `pg_control`), the
//! physical-log strategy in the reserved pages at the front of its data file (GBase 8t's
//! reserved pages). Checkpoint `n` writes slot `n % 2`, so a torn write can only destroy the
//! slot being written, never the last good pointer in the other one. A slot is framed like a
//! header slot ([`super::header::frame_slot`]: magic, version, fields, crc32 in the last 4 of
//! 512 bytes) and holds the checkpoint count, the LSN of the checkpoint record in the redo log,
//! the strategy that wrote it and the page size.

use super::header::{frame_slot, read_framed_slot, SlotRecord, SlotState, HEADER_BYTES};
use super::reader::{read_u32, read_u64};
use crate::types::Lsn;

/// The fuzzy strategy's control file.
pub const CONTROL_FILE: &str = "control";
/// Byte offsets of slot 0 and slot 1 (in the control file, or the physical-log data file).
pub const CONTROL_SLOT_OFFSETS: [u64; 2] = [0, 512];
/// A slot's encoded size: one 512-byte sector.
pub const CONTROL_BYTES: usize = HEADER_BYTES;
/// Marks a control slot ("CRSHCTL1" read as little-endian bytes).
pub const CONTROL_MAGIC: u64 = u64::from_le_bytes(*b"CRSHCTL1");

/// Strategy codes stored in a slot, so a database is never opened with the wrong design.
pub const STRATEGY_FUZZY: u8 = 2;
pub const STRATEGY_PHYSICAL_LOG: u8 = 3;

/// What a completed checkpoint made durable: where its checkpoint record is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub checkpoint_count: u64,
    /// LSN of the checkpoint record in the redo log.
    pub checkpoint_lsn: Lsn,
    /// A copy of the checkpoint record's redo point: where replay starts (PostgreSQL keeps the
    /// same copy in `pg_control`, so recovery reads the log once).
    pub redo_lsn: Lsn,
    /// Copies of the checkpoint record's page id high-water mark and physical log start.
    pub next_page_id: u64,
    pub physical_log_start: u64,
    pub strategy: u8,
    pub page_size_bytes: u32,
}

impl SlotRecord for Control {
    fn checkpoint_count(&self) -> u64 {
        self.checkpoint_count
    }
}

impl Control {
    /// Exactly `CONTROL_BYTES` bytes: magic u64, version u32, checkpoint_count u64,
    /// checkpoint_lsn u64, redo_lsn u64, next_page_id u64, physical_log_start u64, strategy u8,
    /// page_size_bytes u32, filler drawn from the fields, crc32.
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::with_capacity(53);
        fields.extend_from_slice(&self.checkpoint_count.to_le_bytes());
        fields.extend_from_slice(&self.checkpoint_lsn.0.to_le_bytes());
        fields.extend_from_slice(&self.redo_lsn.0.to_le_bytes());
        fields.extend_from_slice(&self.next_page_id.to_le_bytes());
        fields.extend_from_slice(&self.physical_log_start.to_le_bytes());
        fields.push(self.strategy);
        fields.extend_from_slice(&self.page_size_bytes.to_le_bytes());
        frame_slot(CONTROL_MAGIC, &fields)
    }
}

/// Verifies the bytes read from slot `slot`; only the first `CONTROL_BYTES` are examined.
pub fn read_slot(slot: usize, bytes: &[u8]) -> SlotState<Control> {
    read_framed_slot(slot, bytes, CONTROL_MAGIC, |bytes| Control {
        checkpoint_count: read_u64(bytes, 12),
        checkpoint_lsn: Lsn(read_u64(bytes, 20)),
        redo_lsn: Lsn(read_u64(bytes, 28)),
        next_page_id: read_u64(bytes, 36),
        physical_log_start: read_u64(bytes, 44),
        strategy: bytes[52],
        page_size_bytes: read_u32(bytes, 53),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::{choose, HeaderChoice};
    use proptest::prelude::*;

    fn control_strategy() -> impl Strategy<Value = Control> {
        (
            (any::<u64>(), any::<u64>(), any::<u64>()),
            (any::<u64>(), any::<u64>()),
            any::<u8>(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    (checkpoint_count, lsn, redo),
                    (next_page_id, start),
                    strategy,
                    page_size_bytes,
                )| {
                    Control {
                        checkpoint_count,
                        checkpoint_lsn: Lsn(lsn),
                        redo_lsn: Lsn(redo),
                        next_page_id,
                        physical_log_start: start,
                        strategy,
                        page_size_bytes,
                    }
                },
            )
    }

    #[test]
    fn slots_fit_their_offsets() {
        // Proves slot 0 ends where slot 1 begins, so writing one never touches the other.
        assert_eq!(
            CONTROL_SLOT_OFFSETS[0] + CONTROL_BYTES as u64,
            CONTROL_SLOT_OFFSETS[1]
        );
    }

    #[test]
    fn the_newer_valid_slot_wins_and_a_torn_one_is_only_a_warning() {
        // Proves the two-slot rule holds for control records as for headers.
        let record = |count| Control {
            checkpoint_count: count,
            checkpoint_lsn: Lsn(count * 10),
            redo_lsn: Lsn(count * 5),
            next_page_id: 3,
            physical_log_start: 0,
            strategy: STRATEGY_FUZZY,
            page_size_bytes: 512,
        };
        let mut torn = record(5).encode();
        torn[40] ^= 1;
        let slots = [read_slot(0, &record(4).encode()), read_slot(1, &torn)];
        let HeaderChoice::Use {
            header, warning, ..
        } = choose(&slots)
        else {
            panic!("no choice")
        };
        assert_eq!(header, record(4));
        assert!(warning.is_some());
    }

    proptest! {
        // Any control record reads back unchanged from the slot it belongs in.
        #[test]
        fn round_trip(control in control_strategy()) {
            let bytes = control.encode();
            prop_assert_eq!(bytes.len(), CONTROL_BYTES);
            prop_assert_eq!(read_slot(control.slot(), &bytes), SlotState::Valid(control));
        }

        // Any single bit flip makes the slot Invalid.
        #[test]
        fn bit_flips_are_detected(control in control_strategy(), bit in 0..CONTROL_BYTES * 8) {
            let mut bytes = control.encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let state = read_slot(control.slot(), &bytes);
            prop_assert!(matches!(state, SlotState::Invalid { .. }), "{:?}", state);
        }
    }
}
