//! Reading the redo log back at recovery: find the segments, decode records from the
//! checkpoint LSN, and find where the valid log ends.
//!
//! The log ends at the first position that does not hold a whole, verified record with the
//! expected LSN (a torn or garbage tail, or zeros), unless that position is exactly where the
//! next segment file starts, in which case reading goes on there. Everything after the end is
//! discarded by recovery. Segments are sealed (fsynced) before the next is created, so a bad
//! record followed by a later segment that holds data is reported as corruption.

use std::collections::BTreeMap;

use crate::error::{Error, Result, Structure};
use crate::format::record::{self, Record};
use crate::log::{parse_segment_name, segment_name};
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

/// Reads all records from `start` on. `start` must fall inside an existing segment.
pub async fn scan<V: Vfs>(vfs: &V, start: u64) -> Result<LogScan> {
    let names = vfs
        .list()
        .await
        .map_err(|source| Error::io("list", "log directory", source))?;
    let mut segments: BTreeMap<u64, u64> = BTreeMap::new();
    let mut contents: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for name in &names {
        let Some(segment_start) = parse_segment_name(name) else {
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
            record::decode(&bytes[offset..], Lsn(position))
        };
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
                // A segment is fsynced before the next one is created, so only the last
                // segment with data can end in a torn tail. A bad record in a sealed segment
                // followed by more log is corruption, never a place to silently cut.
                // (With no record read at all, recovery reports the missing begin_checkpoint.)
                let later = segments
                    .range(segment_start + 1..)
                    .find(|(_, &len)| len > 0);
                if let (Some((&later, _)), false) = (later, records.is_empty()) {
                    return Err(Error::corruption(
                        segment_name(segment_start),
                        position - segment_start,
                        Structure::LogRecord,
                        format!(
                            "{stop_reason} at LSN {position}, but segment {later} holds more log"
                        ),
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
