//! Reading the redo log back at recovery: find the segments, decode records from the
//! checkpoint LSN, and find where the valid log ends.
//!
//! The log ends at the first position that does not hold a whole, verified record with the
//! expected LSN (a torn or garbage tail, or zeros), unless that position is exactly where the
//! next segment file starts, in which case reading goes on there. Everything after the end is
//! discarded by recovery. Segments are sealed (fsynced, and their names made durable) before
//! the next is created, so a bad record, or a missing segment, followed by a later segment that
//! holds data is reported as corruption: a gap in segment LSNs never ends the log quietly.

use std::collections::BTreeMap;

use crate::error::{Error, Result, Structure};
use crate::format::record::{self, Record};
use crate::log::{parse_prefixed_segment_name, prefixed_segment_name, REDO_LOG_PREFIX};
use crate::options::{Canary, Options};
use crate::types::Lsn;
use crate::vfs::{read_all, Vfs};

/// The log as recovery found it.
#[derive(Debug)]
pub struct LogScan {
    /// Every valid record from the start LSN on, in order.
    pub records: Vec<(Lsn, Record)>,
    /// One past the last valid record: where appending resumes.
    pub end: u64,
    /// The segment `end` falls in, and how long that segment file is now.
    pub end_segment: u64,
    pub end_segment_len: u64,
    /// Segment files, by start LSN, with their lengths.
    pub segments: BTreeMap<u64, u64>,
    /// Why reading stopped where it did (for the recovery report).
    pub stop_reason: &'static str,
}

/// Planted bugs of the scan (the `canary` feature); all off in a correct engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanFlaws {
    /// Records of sealed segments (those with a later segment) are decoded without verifying
    /// their checksums.
    pub skip_sealed_checksum: bool,
    /// A record whose header is whole and carries the expected LSN but which the end of its
    /// file cuts short is reported as corruption, not taken as a torn tail.
    pub truncated_record_is_corruption: bool,
}

impl ScanFlaws {
    /// The flaws `options` plant (none without the `canary` feature).
    pub fn planted(options: &Options) -> Self {
        ScanFlaws {
            skip_sealed_checksum: options.planted(Canary::SkipSealedLogChecksum),
            truncated_record_is_corruption: options.planted(Canary::TruncatedRecordIsCorruption),
        }
    }
}

/// Reads all redo log records from `start` on. `start` must fall inside an existing segment.
pub async fn scan<V: Vfs>(vfs: &V, start: u64) -> Result<LogScan> {
    scan_log(vfs, REDO_LOG_PREFIX, start, ScanFlaws::default()).await
}

/// [`scan`], with the planted bugs of `flaws`.
pub async fn scan_with<V: Vfs>(vfs: &V, start: u64, flaws: ScanFlaws) -> Result<LogScan> {
    scan_log(vfs, REDO_LOG_PREFIX, start, flaws).await
}

/// Reads all records of the log whose segment files start with `prefix`, from `start` on.
pub async fn scan_log<V: Vfs>(
    vfs: &V,
    prefix: &str,
    start: u64,
    flaws: ScanFlaws,
) -> Result<LogScan> {
    let segment_name = |start: u64| prefixed_segment_name(prefix, start);
    let names = vfs
        .list()
        .await
        .map_err(|source| Error::io("list", "log directory", source))?;
    let mut segments: BTreeMap<u64, u64> = BTreeMap::new();
    let mut contents: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for name in &names {
        let Some(segment_start) = parse_prefixed_segment_name(prefix, name) else {
            continue;
        };
        let file = vfs
            .open(name)
            .await
            .map_err(|source| Error::io("open", name.clone(), source))?;
        let bytes = read_all(&file)
            .await
            .map_err(|source| Error::io("read", name.clone(), source))?;
        segments.insert(segment_start, bytes.len() as u64);
        contents.insert(segment_start, bytes);
    }
    let Some((&first, _)) = segments.range(..=start).next_back() else {
        return Err(Error::corruption(
            segment_name(start),
            start,
            Structure::CheckpointRecord,
            "no log segment holds the checkpoint LSN",
        ));
    };

    let mut records = Vec::new();
    let mut segment_start = first;
    let mut position = start;
    let stop_reason;
    // Each pass consumes one whole record or ends the scan, and a record is at least
    // RECORD_HEADER_BYTES long, so the loop runs at most (log bytes / header bytes) + segments
    // times.
    loop {
        let bytes = &contents[&segment_start];
        let offset = (position - segment_start) as usize;
        let decoded = if offset >= bytes.len() {
            record::Decoded::End
        } else {
            let sealed = segments.range(segment_start + 1..).next().is_some();
            let verify = !(flaws.skip_sealed_checksum && sealed);
            record::decode_with(&bytes[offset..], Lsn(position), verify)
        };
        if flaws.truncated_record_is_corruption && header_cut_short(bytes, offset, position) {
            return Err(Error::corruption(
                segment_name(segment_start),
                offset as u64,
                Structure::LogRecord,
                format!("the record at LSN {position} runs past the end of its file"),
            ));
        }
        match decoded {
            record::Decoded::Record { record, len } => {
                records.push((Lsn(position), record));
                position += len as u64;
            }
            record::Decoded::End | record::Decoded::Invalid { .. } => {
                if contents.contains_key(&position) && position != segment_start {
                    segment_start = position;
                    continue;
                }
                stop_reason = match decoded {
                    record::Decoded::Invalid { reason } => reason,
                    _ => "end of written log",
                };
                // A segment is fsynced, and its create made durable, before the next one is
                // created, so only the last segment with data can end in a torn tail or be
                // missing: a bad record, zeros, or the end of a segment's file with no segment
                // starting there, followed by a later segment that holds data, is corruption
                // (acknowledged commits may be in that later segment), never a place to cut.
                // (With no record read at all, recovery reports the missing begin_checkpoint.)
                let at_end_of_file = matches!(decoded, record::Decoded::End)
                    && position - segment_start == contents[&segment_start].len() as u64;
                let later = segments
                    .range(segment_start + 1..)
                    .find(|(_, &len)| len > 0);
                if let (Some((&later, _)), false) = (later, records.is_empty()) {
                    let detail = if at_end_of_file {
                        format!(
                            "segment {} holds the log up to LSN {position}, but segment {} that \
                             should start there is missing and segment {} holds more log",
                            segment_name(segment_start),
                            segment_name(position),
                            segment_name(later)
                        )
                    } else {
                        format!(
                            "{stop_reason} at LSN {position}, but segment {} holds more log",
                            segment_name(later)
                        )
                    };
                    return Err(Error::corruption(
                        segment_name(segment_start),
                        position - segment_start,
                        Structure::LogRecord,
                        detail,
                    ));
                }
                break;
            }
        }
    }
    let end_segment_len = segments[&segment_start];
    Ok(LogScan {
        records,
        end: position,
        end_segment: segment_start,
        end_segment_len,
        segments,
        stop_reason,
    })
}

/// Whether the bytes at `offset` hold a record header with the expected LSN whose declared
/// length runs past the end of `bytes` (what the `truncated-record-is-corruption` canary
/// wrongly calls corruption).
fn header_cut_short(bytes: &[u8], offset: usize, position: u64) -> bool {
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.len() < record::RECORD_HEADER_BYTES {
        return false;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let lsn = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
    lsn == position && len > rest.len() && len <= record::RECORD_BYTES_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::encode;
    use crate::log::segment_name;
    use crate::vfs::mem::MemVfs;
    use crate::vfs::VfsFile;
    use futures::executor::block_on;

    /// A segment starting at `start` holding begin_checkpoint records back to back.
    fn segment(start: u64, records: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for count in 0..records {
            let lsn = start + bytes.len() as u64;
            encode(
                Lsn(lsn),
                &Record::BeginCheckpoint {
                    checkpoint_count: count as u64,
                },
                &mut bytes,
            );
        }
        bytes
    }

    fn write(vfs: &MemVfs, start: u64, bytes: &[u8]) {
        block_on(async {
            let file = vfs.create(&segment_name(start)).await.unwrap();
            file.write_at(0, bytes).await.unwrap();
        });
    }

    #[test]
    fn a_missing_middle_segment_is_corruption() {
        // Proves a gap in segment LSNs with a later segment holding records is reported, not
        // taken as the end of the log: the later records may be acknowledged commits.
        let vfs = MemVfs::new();
        let first = segment(0, 3);
        write(&vfs, 0, &first);
        let later = first.len() as u64 + 500;
        write(&vfs, later, &segment(later, 2));
        let error = block_on(scan(&vfs, 0)).unwrap_err();
        let Error::Corruption {
            file,
            structure: Structure::LogRecord,
            detail,
            ..
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(*file, segment_name(0));
        assert!(detail.contains("missing"), "{detail}");
    }

    #[test]
    fn a_log_ending_at_a_segment_end_with_nothing_after_is_clean() {
        // Proves the end of the last segment's file is a clean end of the log.
        let vfs = MemVfs::new();
        let first = segment(0, 3);
        write(&vfs, 0, &first);
        let scan = block_on(scan(&vfs, 0)).unwrap();
        assert_eq!(scan.end, first.len() as u64);
        assert_eq!(scan.records.len(), 3);
    }

    #[test]
    fn a_bad_record_in_a_sealed_segment_is_corruption() {
        // Proves a garbled record with more log after it is reported, not silently cut.
        let vfs = MemVfs::new();
        let mut first = segment(0, 3);
        let second_record = first.len() / 3;
        first[second_record + 10] ^= 0xff;
        write(&vfs, 0, &first);
        let next = first.len() as u64;
        write(&vfs, next, &segment(next, 2));
        let error = block_on(scan(&vfs, 0)).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Corruption {
                    structure: Structure::LogRecord,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn only_a_genuine_header_cut_short_counts_as_truncated() {
        // Proves the truncated-record flaw fires on a record whose file ends inside it, and
        // not on zeros, garbage lengths or a record read at another LSN.
        let whole = segment(0, 2);
        let second = whole.len() / 2;
        let cut = &whole[..whole.len() - 3];
        assert!(header_cut_short(cut, second, second as u64));
        assert!(!header_cut_short(&whole, second, second as u64));
        assert!(!header_cut_short(cut, second, second as u64 + 1));
        assert!(!header_cut_short(&[0; 64], 0, 0));
        assert!(!header_cut_short(
            &cut[..second + 10],
            second,
            second as u64
        ));
    }
}
