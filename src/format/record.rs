//! Redo log records and their framing.
//!
//! Each record is framed as `[len u32][crc32 u32][lsn u64][kind u8][payload]`, where `len` counts
//! the whole frame and the crc covers the length bytes followed by everything from the LSN on.
//! Covering the length means a torn or flipped length cannot pass as a shorter valid record, and
//! carrying the LSN means a stale record left over from an earlier use of the same bytes cannot
//! pass as the next one. Recovery reads records in order and stops at the first that is not a
//! whole, verified record carrying the expected LSN.

use super::reader::{read_u32, read_u64, Reader};
use crate::types::{Lsn, PageId, Write};

/// Bytes of framing before the payload: len u32, crc u32, lsn u64, kind u8.
pub const RECORD_HEADER_BYTES: usize = 17;
/// The largest frame accepted; bounds what a garbage length can make the reader expect.
pub const RECORD_BYTES_MAX: usize = 16 << 20;

const KIND_COMMIT: u8 = 1;
const KIND_BEGIN_CHECKPOINT: u8 = 2;
const KIND_END_CHECKPOINT: u8 = 3;
const KIND_PADDING: u8 = 4;
const KIND_PAGE_COMMIT: u8 = 5;
const KIND_CHECKPOINT: u8 = 6;
const KIND_BEFORE_IMAGE: u8 = 7;
const REDO_IMAGE: u8 = 1;
const REDO_PUT: u8 = 2;
const REDO_DELETE: u8 = 3;
/// The smallest encoding of one page redo: tag u8, page id u64, one length u32.
const PAGE_REDO_BYTES_MIN: usize = 13;
const TAG_DELETE: u8 = 0;
const TAG_PUT: u8 = 1;
/// The smallest encoding of one write: key_len u32 and tag u8.
const WRITE_BYTES_MIN: usize = 5;

/// One redo log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A committed transaction's writes, in order (kind 1).
    Commit { txn_id: u64, writes: Vec<Write> },
    /// A checkpoint started; its header's checkpoint_lsn is this record's LSN (kind 2).
    BeginCheckpoint { checkpoint_count: u64 },
    /// The checkpoint begun at `begin_lsn` is durable (kind 3).
    EndCheckpoint {
        checkpoint_count: u64,
        begin_lsn: Lsn,
    },
    /// `zeros` zero bytes that carry the log to a sector boundary (kind 4). After an fsync
    /// the log writes its next record in a fresh sector, so a torn write can never garble a
    /// sector that holds records already durable.
    Padding { zeros: u32 },
    /// A committed transaction as per-page redo (kind 5; the fuzzy strategy). Replay applies
    /// each entry to its page only if the page's LSN is below this record's, so replaying twice
    /// changes nothing. `next_page_id` is the page id high-water mark after the commit.
    PageCommit {
        txn_id: u64,
        next_page_id: PageId,
        redo: Vec<PageRedo>,
    },
    /// A completed checkpoint's record (kind 6; the fuzzy and physical-log strategies): replay
    /// starts at `redo_lsn`, the tree's page id high-water mark was `next_page_id`, and the
    /// physical log's before-images of this checkpoint start at `physical_log_start`.
    /// `page_lsns[id]` is the LSN page `id`'s slot must hold on disk for the checkpoint
    /// ([`UNKNOWN_PAGE_LSN`] where the engine did not know it): a slot that holds an older one
    /// lost a write (a misdirected or dropped one), which recovery reports instead of reading
    /// stale data.
    Checkpoint {
        checkpoint_count: u64,
        redo_lsn: Lsn,
        next_page_id: PageId,
        physical_log_start: u64,
        page_lsns: Vec<u64>,
    },
    /// A page's raw node and page LSN as they were before its first change after checkpoint
    /// `checkpoint_count` advanced the checkpoint number (kind 7; the physical log).
    BeforeImage {
        checkpoint_count: u64,
        page_id: PageId,
        page_lsn: u64,
        node: Vec<u8>,
    },
}

/// A [`Record::Checkpoint`] page LSN the engine did not know.
pub const UNKNOWN_PAGE_LSN: u64 = u64::MAX;

/// One page's share of a [`Record::PageCommit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageRedo {
    /// The page's whole raw node after the commit: a full-page image.
    Image { page_id: PageId, node: Vec<u8> },
    /// Sets `key` to `value` in leaf `page_id`.
    Put {
        page_id: PageId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Removes `key` from leaf `page_id`.
    Delete { page_id: PageId, key: Vec<u8> },
}

impl PageRedo {
    pub fn page_id(&self) -> PageId {
        match self {
            PageRedo::Image { page_id, .. }
            | PageRedo::Put { page_id, .. }
            | PageRedo::Delete { page_id, .. } => *page_id,
        }
    }

    fn encoded_len(&self) -> usize {
        PAGE_REDO_BYTES_MIN
            + match self {
                PageRedo::Image { node, .. } => node.len(),
                PageRedo::Put { key, value, .. } => key.len() + 4 + value.len(),
                PageRedo::Delete { key, .. } => key.len(),
            }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl Record {
    /// The padding record that fills exactly `len` bytes; `len` must be at least
    /// `RECORD_HEADER_BYTES`.
    pub fn padding(len: usize) -> Record {
        debug_assert!(len >= RECORD_HEADER_BYTES);
        Record::Padding {
            zeros: (len - RECORD_HEADER_BYTES) as u32,
        }
    }
}

/// Appends one framed record to `out`.
///
/// Panics if the frame would exceed `RECORD_BYTES_MAX`, since the reader would reject it;
/// callers bound transactions with `encoded_len` first.
pub fn encode(lsn: Lsn, record: &Record, out: &mut Vec<u8>) {
    let len = encoded_len(record);
    assert!(
        len <= RECORD_BYTES_MAX,
        "record of {len} bytes exceeds RECORD_BYTES_MAX"
    );
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.0.to_le_bytes());
    match record {
        Record::Commit { txn_id, writes } => {
            out.push(KIND_COMMIT);
            out.extend_from_slice(&txn_id.to_le_bytes());
            out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
            for write in writes {
                out.extend_from_slice(&(write.key.len() as u32).to_le_bytes());
                out.extend_from_slice(&write.key);
                match &write.value {
                    None => out.push(TAG_DELETE),
                    Some(value) => {
                        out.push(TAG_PUT);
                        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                        out.extend_from_slice(value);
                    }
                }
            }
        }
        Record::BeginCheckpoint { checkpoint_count } => {
            out.push(KIND_BEGIN_CHECKPOINT);
            out.extend_from_slice(&checkpoint_count.to_le_bytes());
        }
        Record::EndCheckpoint {
            checkpoint_count,
            begin_lsn,
        } => {
            out.push(KIND_END_CHECKPOINT);
            out.extend_from_slice(&checkpoint_count.to_le_bytes());
            out.extend_from_slice(&begin_lsn.0.to_le_bytes());
        }
        Record::Padding { zeros } => {
            out.push(KIND_PADDING);
            out.resize(out.len() + *zeros as usize, 0);
        }
        Record::PageCommit {
            txn_id,
            next_page_id,
            redo,
        } => {
            out.push(KIND_PAGE_COMMIT);
            out.extend_from_slice(&txn_id.to_le_bytes());
            out.extend_from_slice(&next_page_id.to_le_bytes());
            out.extend_from_slice(&(redo.len() as u32).to_le_bytes());
            for entry in redo {
                match entry {
                    PageRedo::Image { page_id, node } => {
                        out.push(REDO_IMAGE);
                        out.extend_from_slice(&page_id.to_le_bytes());
                        put_bytes(out, node);
                    }
                    PageRedo::Put {
                        page_id,
                        key,
                        value,
                    } => {
                        out.push(REDO_PUT);
                        out.extend_from_slice(&page_id.to_le_bytes());
                        put_bytes(out, key);
                        put_bytes(out, value);
                    }
                    PageRedo::Delete { page_id, key } => {
                        out.push(REDO_DELETE);
                        out.extend_from_slice(&page_id.to_le_bytes());
                        put_bytes(out, key);
                    }
                }
            }
        }
        Record::Checkpoint {
            checkpoint_count,
            redo_lsn,
            next_page_id,
            physical_log_start,
            page_lsns,
        } => {
            out.push(KIND_CHECKPOINT);
            out.extend_from_slice(&checkpoint_count.to_le_bytes());
            out.extend_from_slice(&redo_lsn.0.to_le_bytes());
            out.extend_from_slice(&next_page_id.to_le_bytes());
            out.extend_from_slice(&physical_log_start.to_le_bytes());
            out.extend_from_slice(&(page_lsns.len() as u32).to_le_bytes());
            for lsn in page_lsns {
                out.extend_from_slice(&lsn.to_le_bytes());
            }
        }
        Record::BeforeImage {
            checkpoint_count,
            page_id,
            page_lsn,
            node,
        } => {
            out.push(KIND_BEFORE_IMAGE);
            out.extend_from_slice(&checkpoint_count.to_le_bytes());
            out.extend_from_slice(&page_id.to_le_bytes());
            out.extend_from_slice(&page_lsn.to_le_bytes());
            put_bytes(out, node);
        }
    }
    debug_assert_eq!(out.len() - start, len, "encoded_len disagrees with encode");
    let checksum = frame_checksum(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// Bytes `encode` would append.
pub fn encoded_len(record: &Record) -> usize {
    let payload = match record {
        Record::Commit { writes, .. } => {
            12 + writes
                .iter()
                .map(|write| {
                    WRITE_BYTES_MIN
                        + write.key.len()
                        + write.value.as_ref().map_or(0, |value| 4 + value.len())
                })
                .sum::<usize>()
        }
        Record::BeginCheckpoint { .. } => 8,
        Record::EndCheckpoint { .. } => 16,
        Record::Padding { zeros } => *zeros as usize,
        Record::PageCommit { redo, .. } => {
            20 + redo.iter().map(PageRedo::encoded_len).sum::<usize>()
        }
        Record::Checkpoint { page_lsns, .. } => 36 + 8 * page_lsns.len(),
        Record::BeforeImage { node, .. } => 28 + node.len(),
    };
    RECORD_HEADER_BYTES + payload
}

/// The outcome of reading at one position of the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, verified record of `len` bytes.
    Record { record: Record, len: usize },
    /// The clean end of written log: the 4 length bytes are zero, and so is the rest of the
    /// header-sized window that remains (fewer than 4 bytes remaining count as a length if all
    /// are zero).
    End,
    /// Anything else: a torn or garbage tail, a checksum mismatch, an LSN that is not
    /// `expected_lsn`, a bad kind or payload. `reason` is a short static description.
    Invalid { reason: &'static str },
}

/// Decodes the record at the start of `buf`, which must carry `expected_lsn`.
///
/// A zero length followed by nonzero bytes within the next `RECORD_HEADER_BYTES` is Invalid,
/// not End: every real record has a nonzero kind byte there, so such bytes are a record whose
/// length was zeroed (a flipped bit or a torn write), not unwritten log.
pub fn decode(buf: &[u8], expected_lsn: Lsn) -> Decoded {
    decode_with(buf, expected_lsn, true)
}

/// [`decode`], with the checksum check optional: only a planted bug (the
/// `skip-sealed-log-checksum` canary) turns it off.
pub fn decode_with(buf: &[u8], expected_lsn: Lsn, verify_checksum: bool) -> Decoded {
    let invalid = |reason| Decoded::Invalid { reason };
    if buf.len() < 4 {
        return if buf.iter().all(|&byte| byte == 0) {
            Decoded::End
        } else {
            invalid("torn length")
        };
    }
    let len = read_u32(buf, 0) as usize;
    if len == 0 {
        let window = &buf[..buf.len().min(RECORD_HEADER_BYTES)];
        return if window.iter().all(|&byte| byte == 0) {
            Decoded::End
        } else {
            invalid("zero length before a nonzero header")
        };
    }
    if len < RECORD_HEADER_BYTES {
        return invalid("length shorter than the record header");
    }
    if len > RECORD_BYTES_MAX {
        return invalid("length exceeds RECORD_BYTES_MAX");
    }
    if len > buf.len() {
        return invalid("record runs past the end of the log");
    }
    let frame = &buf[..len];
    if verify_checksum && read_u32(frame, 4) != frame_checksum(frame) {
        return invalid("checksum mismatch");
    }
    if read_u64(frame, 8) != expected_lsn.0 {
        return invalid("unexpected lsn");
    }
    let mut payload = Reader::new(&frame[RECORD_HEADER_BYTES..]);
    let record = match frame[16] {
        KIND_COMMIT => match decode_commit(&mut payload) {
            Ok(record) => record,
            Err(reason) => return invalid(reason),
        },
        KIND_BEGIN_CHECKPOINT => match payload.u64() {
            Some(checkpoint_count) => Record::BeginCheckpoint { checkpoint_count },
            None => return invalid("short begin_checkpoint payload"),
        },
        KIND_END_CHECKPOINT => match (payload.u64(), payload.u64()) {
            (Some(checkpoint_count), Some(begin_lsn)) => Record::EndCheckpoint {
                checkpoint_count,
                begin_lsn: Lsn(begin_lsn),
            },
            _ => return invalid("short end_checkpoint payload"),
        },
        KIND_PADDING => {
            if payload.bytes.iter().any(|&byte| byte != 0) {
                return invalid("padding is not zero");
            }
            let zeros = payload.bytes.len() as u32;
            payload.bytes = &[];
            Record::Padding { zeros }
        }
        KIND_PAGE_COMMIT => match decode_page_commit(&mut payload) {
            Ok(record) => record,
            Err(reason) => return invalid(reason),
        },
        KIND_CHECKPOINT => match decode_checkpoint(&mut payload) {
            Ok(record) => record,
            Err(reason) => return invalid(reason),
        },
        KIND_BEFORE_IMAGE => match (
            payload.u64(),
            payload.u64(),
            payload.u64(),
            payload.bytes_with_len(),
        ) {
            (Some(checkpoint_count), Some(page_id), Some(page_lsn), Some(node)) => {
                Record::BeforeImage {
                    checkpoint_count,
                    page_id,
                    page_lsn,
                    node,
                }
            }
            _ => return invalid("short before-image payload"),
        },
        _ => return invalid("unknown record kind"),
    };
    if !payload.bytes.is_empty() {
        return invalid("trailing bytes after the payload");
    }
    Decoded::Record { record, len }
}

fn decode_commit(payload: &mut Reader<'_>) -> Result<Record, &'static str> {
    let txn_id = payload.u64().ok_or("short commit payload")?;
    let count = payload.u32().ok_or("short commit payload")? as usize;
    // Every write takes at least WRITE_BYTES_MIN bytes, so a count the payload cannot hold is
    // refused before the vector is sized from it.
    if count > payload.bytes.len() / WRITE_BYTES_MIN {
        return Err("write count exceeds the payload");
    }
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        let key = payload.bytes_with_len().ok_or("short write key")?;
        let value = match payload.u8().ok_or("short write tag")? {
            TAG_DELETE => None,
            TAG_PUT => Some(payload.bytes_with_len().ok_or("short write value")?),
            _ => return Err("unknown write tag"),
        };
        writes.push(Write { key, value });
    }
    Ok(Record::Commit { txn_id, writes })
}

fn decode_checkpoint(payload: &mut Reader<'_>) -> Result<Record, &'static str> {
    let short = "short checkpoint payload";
    let checkpoint_count = payload.u64().ok_or(short)?;
    let redo_lsn = Lsn(payload.u64().ok_or(short)?);
    let next_page_id = payload.u64().ok_or(short)?;
    let physical_log_start = payload.u64().ok_or(short)?;
    let count = payload.u32().ok_or(short)? as usize;
    if count > payload.bytes.len() / 8 {
        return Err("page LSN count exceeds the payload");
    }
    let page_lsns = (0..count)
        .map(|_| payload.u64().ok_or(short))
        .collect::<Result<_, _>>()?;
    Ok(Record::Checkpoint {
        checkpoint_count,
        redo_lsn,
        next_page_id,
        physical_log_start,
        page_lsns,
    })
}

fn decode_page_commit(payload: &mut Reader<'_>) -> Result<Record, &'static str> {
    let txn_id = payload.u64().ok_or("short page commit payload")?;
    let next_page_id = payload.u64().ok_or("short page commit payload")?;
    let count = payload.u32().ok_or("short page commit payload")? as usize;
    if count > payload.bytes.len() / PAGE_REDO_BYTES_MIN {
        return Err("page redo count exceeds the payload");
    }
    let mut redo = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = payload.u8().ok_or("short page redo tag")?;
        let page_id = payload.u64().ok_or("short page redo page id")?;
        let first = payload.bytes_with_len().ok_or("short page redo bytes")?;
        redo.push(match tag {
            REDO_IMAGE => PageRedo::Image {
                page_id,
                node: first,
            },
            REDO_PUT => PageRedo::Put {
                page_id,
                key: first,
                value: payload.bytes_with_len().ok_or("short page redo value")?,
            },
            REDO_DELETE => PageRedo::Delete {
                page_id,
                key: first,
            },
            _ => return Err("unknown page redo tag"),
        });
    }
    Ok(Record::PageCommit {
        txn_id,
        next_page_id,
        redo,
    })
}

/// crc32 of the length bytes followed by everything after the crc field.
fn frame_checksum(frame: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame[..4]);
    hasher.update(&frame[8..]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write_strategy() -> impl Strategy<Value = Write> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
        (bytes(), proptest::option::of(bytes())).prop_map(|(key, value)| Write { key, value })
    }

    fn page_redo_strategy() -> impl Strategy<Value = PageRedo> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
        prop_oneof![
            (any::<u64>(), bytes()).prop_map(|(page_id, node)| PageRedo::Image { page_id, node }),
            (any::<u64>(), bytes(), bytes()).prop_map(|(page_id, key, value)| PageRedo::Put {
                page_id,
                key,
                value
            }),
            (any::<u64>(), bytes()).prop_map(|(page_id, key)| PageRedo::Delete { page_id, key }),
        ]
    }

    fn record_strategy() -> impl Strategy<Value = Record> {
        prop_oneof![
            (
                any::<u64>(),
                proptest::collection::vec(write_strategy(), 0..6)
            )
                .prop_map(|(txn_id, writes)| Record::Commit { txn_id, writes }),
            any::<u64>().prop_map(|checkpoint_count| Record::BeginCheckpoint { checkpoint_count }),
            (any::<u64>(), any::<u64>()).prop_map(|(checkpoint_count, begin_lsn)| {
                Record::EndCheckpoint {
                    checkpoint_count,
                    begin_lsn: Lsn(begin_lsn),
                }
            }),
            (0u32..600).prop_map(|zeros| Record::Padding { zeros }),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(page_redo_strategy(), 0..5)
            )
                .prop_map(|(txn_id, next_page_id, redo)| Record::PageCommit {
                    txn_id,
                    next_page_id,
                    redo
                }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u64>(), 0..8)
            )
                .prop_map(
                    |(checkpoint_count, redo_lsn, next_page_id, physical_log_start, page_lsns)| {
                        Record::Checkpoint {
                            checkpoint_count,
                            redo_lsn: Lsn(redo_lsn),
                            next_page_id,
                            physical_log_start,
                            page_lsns,
                        }
                    }
                ),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(checkpoint_count, page_id, page_lsn, node)| {
                    Record::BeforeImage {
                        checkpoint_count,
                        page_id,
                        page_lsn,
                        node,
                    }
                }),
        ]
    }

    fn encoded(lsn: Lsn, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        encode(lsn, record, &mut out);
        out
    }

    fn commit() -> Record {
        Record::Commit {
            txn_id: 9,
            writes: vec![Write::put("k", "v"), Write::delete(""), Write::put("", "")],
        }
    }

    // An all-zero tail, an empty tail and a short zero tail are all the clean end of the log.
    #[test]
    fn zero_tail_is_end() {
        assert_eq!(decode(&[], Lsn(0)), Decoded::End);
        assert_eq!(decode(&[0; 3], Lsn(0)), Decoded::End);
        assert_eq!(decode(&[0; 4], Lsn(0)), Decoded::End);
        assert_eq!(decode(&[0; 4096], Lsn(77)), Decoded::End);
    }

    // Short nonzero tails and zero lengths in front of written bytes are not mistaken for End.
    #[test]
    fn garbage_tail_is_invalid() {
        assert!(matches!(decode(&[0, 1], Lsn(0)), Decoded::Invalid { .. }));
        let mut bytes = encoded(Lsn(5), &commit());
        bytes[..4].fill(0);
        assert!(matches!(decode(&bytes, Lsn(5)), Decoded::Invalid { .. }));
        assert!(matches!(
            decode(&[16, 0, 0, 0, 0], Lsn(0)),
            Decoded::Invalid { .. }
        ));
        let huge = ((RECORD_BYTES_MAX + 1) as u32).to_le_bytes();
        assert!(matches!(decode(&huge, Lsn(0)), Decoded::Invalid { .. }));
    }

    // A record decodes only at the LSN it was written with.
    #[test]
    fn wrong_lsn_is_invalid() {
        let bytes = encoded(Lsn(1000), &commit());
        assert_eq!(
            decode(&bytes, Lsn(1000)),
            Decoded::Record {
                record: commit(),
                len: bytes.len()
            }
        );
        assert_eq!(
            decode(&bytes, Lsn(999)),
            Decoded::Invalid {
                reason: "unexpected lsn"
            }
        );
    }

    // A correctly checksummed frame with extra payload bytes, a bad kind or a huge write count
    // is still refused.
    #[test]
    fn malformed_payloads_are_invalid() {
        let reframe = |mut frame: Vec<u8>| {
            let len = frame.len() as u32;
            frame[..4].copy_from_slice(&len.to_le_bytes());
            let checksum = frame_checksum(&frame);
            frame[4..8].copy_from_slice(&checksum.to_le_bytes());
            frame
        };
        let mut trailing = encoded(
            Lsn(1),
            &Record::BeginCheckpoint {
                checkpoint_count: 2,
            },
        );
        trailing.push(0);
        assert_eq!(
            decode(&reframe(trailing), Lsn(1)),
            Decoded::Invalid {
                reason: "trailing bytes after the payload"
            }
        );
        let mut kind = encoded(
            Lsn(1),
            &Record::BeginCheckpoint {
                checkpoint_count: 2,
            },
        );
        kind[16] = 9;
        assert_eq!(
            decode(&reframe(kind), Lsn(1)),
            Decoded::Invalid {
                reason: "unknown record kind"
            }
        );
        let mut count = encoded(
            Lsn(1),
            &Record::Commit {
                txn_id: 1,
                writes: vec![],
            },
        );
        count[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&reframe(count), Lsn(1)),
            Decoded::Invalid {
                reason: "write count exceeds the payload"
            }
        );
    }

    proptest! {
        // Every record decodes back to itself, with len equal to encoded_len.
        #[test]
        fn round_trip(lsn in any::<u64>(), record in record_strategy()) {
            let bytes = encoded(Lsn(lsn), &record);
            prop_assert_eq!(bytes.len(), encoded_len(&record));
            let len = bytes.len();
            prop_assert_eq!(decode(&bytes, Lsn(lsn)), Decoded::Record { record, len });
        }

        // Cutting a log of back-to-back records at any byte yields exactly the records wholly
        // before the cut, then End or Invalid: never a partial record, never a panic.
        #[test]
        fn every_cut_yields_a_prefix(
            base in 0u64..(1 << 48),
            records in proptest::collection::vec(record_strategy(), 1..6),
        ) {
            let mut log = Vec::new();
            let mut ends = Vec::new();
            for record in &records {
                encode(Lsn(base + log.len() as u64), record, &mut log);
                ends.push(log.len());
            }
            for cut in 0..=log.len() {
                let buf = &log[..cut];
                let mut position = 0;
                let mut decoded = Vec::new();
                // Each iteration either consumes a record or stops, so this is bounded.
                for _ in 0..=records.len() {
                    match decode(&buf[position..], Lsn(base + position as u64)) {
                        Decoded::Record { record, len } => {
                            decoded.push(record);
                            position += len;
                        }
                        Decoded::End | Decoded::Invalid { .. } => break,
                    }
                }
                let whole = ends.iter().filter(|&&end| end <= cut).count();
                prop_assert_eq!(&decoded[..], &records[..whole], "cut at {}", cut);
            }
        }

        // Any single bit flip inside a record makes it Invalid.
        #[test]
        fn bit_flips_are_detected(
            lsn in any::<u64>(),
            record in record_strategy(),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encoded(Lsn(lsn), &record);
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let outcome = decode(&bytes, Lsn(lsn));
            prop_assert!(matches!(outcome, Decoded::Invalid { .. }), "bit {}: {:?}", bit, outcome);
        }

        // A record read at any LSN but its own is Invalid.
        #[test]
        fn other_lsns_are_invalid(lsn in any::<u64>(), other in any::<u64>(), record in record_strategy()) {
            prop_assume!(lsn != other);
            let bytes = encoded(Lsn(lsn), &record);
            let outcome = decode(&bytes, Lsn(other));
            prop_assert!(matches!(outcome, Decoded::Invalid { .. }), "{:?}", outcome);
        }

        // A record followed by zeros decodes, and the zeros after it are the clean end.
        #[test]
        fn zero_tail_after_records_is_end(lsn in 0u64..(1 << 48), record in record_strategy(), zeros in 0usize..64) {
            let mut bytes = encoded(Lsn(lsn), &record);
            let len = bytes.len();
            bytes.resize(len + zeros, 0);
            prop_assert_eq!(decode(&bytes, Lsn(lsn)), Decoded::Record { record, len });
            prop_assert_eq!(decode(&bytes[len..], Lsn(lsn + len as u64)), Decoded::End);
        }

        // Arbitrary bytes never panic the decoder, with or without a plausible frame length.
        #[test]
        fn arbitrary_bytes_never_panic(lsn in any::<u64>(), mut bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes, Lsn(lsn));
            if bytes.len() >= 4 {
                let len = bytes.len() as u32;
                bytes[..4].copy_from_slice(&len.to_le_bytes());
                let _ = decode(&bytes, Lsn(lsn));
            }
        }
    }
}
