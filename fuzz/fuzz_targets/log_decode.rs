//! Fuzzes the redo log decoder: arbitrary bytes, read as a log starting at an arbitrary LSN,
//! never panic it, and every record it accepts re-encodes at its LSN to exactly the bytes it
//! was decoded from.
//!
//! Input: 8 bytes of expected LSN (little endian; missing bytes are zero), then the log bytes.
#![no_main]

use crashpoint::format::record::{decode, encode, encoded_len, Decoded, RECORD_HEADER_BYTES};
use crashpoint::Lsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (lsn_bytes, log) = input.split_at(input.len().min(8));
    let mut raw = [0u8; 8];
    raw[..lsn_bytes.len()].copy_from_slice(lsn_bytes);
    let start = u64::from_le_bytes(raw);

    // Reads the log front to back as recovery does. Every accepted record is at least
    // RECORD_HEADER_BYTES long, so the loop ends within len / RECORD_HEADER_BYTES + 1 passes.
    let mut position = 0usize;
    for _ in 0..=log.len() / RECORD_HEADER_BYTES {
        let lsn = Lsn(start.wrapping_add(position as u64));
        let rest = &log[position..];
        match decode(rest, lsn) {
            Decoded::Record { record, len } => {
                assert!(
                    (RECORD_HEADER_BYTES..=rest.len()).contains(&len),
                    "record length {len} outside {RECORD_HEADER_BYTES}..={}",
                    rest.len()
                );
                assert_eq!(len, encoded_len(&record), "len disagrees with encoded_len");
                let mut encoded = Vec::with_capacity(len);
                encode(lsn, &record, &mut encoded);
                assert_eq!(
                    &encoded[..],
                    &rest[..len],
                    "{record:?} at lsn {lsn} does not re-encode to its bytes"
                );
                // The same frame cut short by one byte is never a record.
                assert!(
                    !matches!(decode(&rest[..len - 1], lsn), Decoded::Record { .. }),
                    "a frame cut by one byte still decodes"
                );
                position += len;
            }
            Decoded::End | Decoded::Invalid { .. } => break,
        }
    }
});
