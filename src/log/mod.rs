//! The redo log: segment files of framed records, an append buffer, flush and group commit.
//!
//! An LSN is the byte position of a record in the log stream. A record never spans segments:
//! when it would push a segment past `log_segment_bytes`, a new segment file starts at its LSN,
//! so segment `log-<start>` holds exactly the bytes `[start, next segment's start)`.
//!
//! Appending is synchronous and in memory (under the engine's state latch, so LSN order is
//! apply order); [`Log::flush`] writes the buffer out and, when asked, fsyncs it. Every record
//! ending at or below [`Log::durable_lsn`] is on disk. Any failed write or sync of the log is
//! returned to the engine, which poisons itself: buffered records are gone and must not be
//! assumed durable by a retry.

pub mod reader;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use event_listener::Event;

use crate::error::{Error, Result};
use crate::format::record::{self, Record};
use crate::types::Lsn;
use crate::vfs::{Vfs, VfsFile};

/// File name prefix of the redo log's segments.
pub const REDO_LOG_PREFIX: &str = "log-";
/// File name prefix of the physical log's segments (the physical-log strategy's before-images).
pub const PHYSICAL_LOG_PREFIX: &str = "plog-";

/// The file name of the redo log segment whose first byte is at `start`.
pub fn segment_name(start: u64) -> String {
    prefixed_segment_name(REDO_LOG_PREFIX, start)
}

/// The file name of the segment of the log named by `prefix` whose first byte is at `start`.
pub fn prefixed_segment_name(prefix: &str, start: u64) -> String {
    format!("{prefix}{start:020}")
}

/// The start LSN a redo log segment file name encodes, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_prefixed_segment_name(REDO_LOG_PREFIX, name)
}

/// The start position a segment file name of the log named by `prefix` encodes, if it is one.
pub fn parse_prefixed_segment_name(prefix: &str, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is a segment of any log the engine keeps (redo or physical).
pub fn is_log_file(name: &str) -> bool {
    parse_segment_name(name).is_some()
        || parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, name).is_some()
}

/// Records appended but not yet written to a segment file.
#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    /// LSN of `bytes[0]`.
    start: u64,
    /// LSN the next record gets.
    next: u64,
    /// Start of the segment the next record goes into.
    segment_start: u64,
    /// Starts of segments that begin inside `bytes` and have no file yet, ascending.
    new_segments: Vec<u64>,
}

struct Io<F> {
    /// The segment being appended to: its start LSN and file.
    segment: Option<(u64, F)>,
    /// Segment files that exist, by start LSN.
    segments: BTreeSet<u64>,
    /// A segment was created since the last directory sync.
    directory_dirty: bool,
    /// The open segment has writes since its last sync.
    segment_dirty: bool,
    /// Every byte below this LSN was handed to a successful write.
    written: u64,
    /// A write or sync failed: the bytes it carried are gone from the buffer, so no later
    /// flush may report anything past them as written or durable.
    failure: Option<String>,
}

pub struct Log<V: Vfs> {
    buffer: Mutex<Buffer>,
    io: async_lock::Mutex<Io<V::File>>,
    durable: AtomicU64,
    /// Notified whenever `durable` moves or the engine is poisoned.
    durable_changed: Event,
    segment_bytes: u64,
    /// Synced flushes pad the log to a multiple of this, so no later write shares a sector
    /// with durable records.
    sector_bytes: u64,
    /// Segment file name prefix: which log this is.
    prefix: &'static str,
    /// A planted bug (the `retry-log-fsync` canary): a failed segment fsync is retried, and a
    /// successful retry is taken as the records being durable.
    pub(crate) retry_failed_sync: bool,
}

fn lock(buffer: &Mutex<Buffer>) -> MutexGuard<'_, Buffer> {
    buffer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<V: Vfs> Log<V> {
    /// A redo log whose next record goes at `end`, appending to the segment starting at
    /// `segment_start` (already open as `file`, or created at the first flush if None).
    pub fn new(
        end: u64,
        segment_start: u64,
        file: Option<V::File>,
        segments: BTreeSet<u64>,
        segment_bytes: u64,
        sector_bytes: u64,
    ) -> Self {
        Self::named(
            REDO_LOG_PREFIX,
            end,
            segment_start,
            file,
            segments,
            segment_bytes,
            sector_bytes,
        )
    }

    /// Like [`Log::new`] for the log whose segment files start with `prefix`.
    pub fn named(
        prefix: &'static str,
        end: u64,
        segment_start: u64,
        file: Option<V::File>,
        segments: BTreeSet<u64>,
        segment_bytes: u64,
        sector_bytes: u64,
    ) -> Self {
        let segment = file.map(|file| (segment_start, file));
        let mut new_segments = Vec::new();
        if segment.is_none() {
            new_segments.push(segment_start);
        }
        Self {
            buffer: Mutex::new(Buffer {
                bytes: Vec::new(),
                start: end,
                next: end,
                segment_start,
                new_segments,
            }),
            io: async_lock::Mutex::new(Io {
                segment,
                segments,
                directory_dirty: false,
                segment_dirty: false,
                written: end,
                failure: None,
            }),
            durable: AtomicU64::new(end),
            durable_changed: Event::new(),
            segment_bytes,
            sector_bytes,
            prefix,
            retry_failed_sync: false,
        }
    }

    /// The file name of this log's segment starting at `start`.
    pub fn segment_name(&self, start: u64) -> String {
        prefixed_segment_name(self.prefix, start)
    }

    /// Appends a record to the buffer; returns its LSN and the LSN just past it.
    pub fn append(&self, record: &Record) -> (Lsn, u64) {
        Self::append_locked(&mut lock(&self.buffer), record, self.segment_bytes)
    }

    fn append_locked(buffer: &mut Buffer, record: &Record, segment_bytes: u64) -> (Lsn, u64) {
        let len = record::encoded_len(record) as u64;
        let lsn = buffer.next;
        if lsn > buffer.segment_start && lsn - buffer.segment_start + len > segment_bytes {
            buffer.segment_start = lsn;
            buffer.new_segments.push(lsn);
        }
        record::encode(Lsn(lsn), record, &mut buffer.bytes);
        buffer.next = lsn + len;
        debug_assert_eq!(buffer.start + buffer.bytes.len() as u64, buffer.next);
        (Lsn(lsn), buffer.next)
    }

    /// LSN the next record will get.
    pub fn next_lsn(&self) -> u64 {
        lock(&self.buffer).next
    }

    /// Bytes appended but not yet written out.
    pub fn buffered_bytes(&self) -> usize {
        lock(&self.buffer).bytes.len()
    }

    pub fn durable_lsn(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Writes out everything appended so far and, with `sync`, fsyncs it (and the directory
    /// if a segment was created). On error the buffered bytes are lost: the caller must poison.
    pub async fn flush(&self, vfs: &V, sync: bool) -> Result<()> {
        let mut io = self.io.lock().await;
        if let Some(failure) = &io.failure {
            return Err(Error::Poisoned {
                cause: format!("an earlier log flush failed: {failure}"),
            });
        }
        let result = self.flush_locked(vfs, &mut io, sync).await;
        if let Err(error) = &result {
            io.failure = Some(error.to_string());
        }
        result
    }

    async fn flush_locked(&self, vfs: &V, io: &mut Io<V::File>, sync: bool) -> Result<()> {
        let (start, bytes, new_segments) = {
            let mut buffer = lock(&self.buffer);
            if sync {
                self.pad_to_sector(&mut buffer);
            }
            let start = buffer.start;
            buffer.start = buffer.next;
            (
                start,
                std::mem::take(&mut buffer.bytes),
                std::mem::take(&mut buffer.new_segments),
            )
        };
        debug_assert_eq!(
            start, io.written,
            "the buffer starts where the last write ended"
        );
        let end = start + bytes.len() as u64;
        let mut position = start;
        let mut breaks = new_segments.into_iter().peekable();
        // Each pass writes one segment's share of the buffer; there are at most
        // new_segments.len() + 1 passes.
        while position < end || breaks.peek() == Some(&position) {
            if breaks.peek() == Some(&position) {
                breaks.next();
                self.open_segment(vfs, io, position).await?;
            }
            let chunk_end = breaks.peek().copied().unwrap_or(end).min(end);
            let (segment_start, file) = io.segment.as_ref().expect("a segment is open");
            let segment_start = *segment_start;
            let offset = position - segment_start;
            file.write_at(
                offset,
                &bytes[(position - start) as usize..(chunk_end - start) as usize],
            )
            .await
            // The name is built only on failure: this is the commit path.
            .map_err(|source| Error::io("write", self.segment_name(segment_start), source))?;
            io.segment_dirty = true;
            position = chunk_end;
            io.written = position;
        }
        if sync {
            self.sync_open_segment(io).await?;
            if io.directory_dirty {
                vfs.sync_dir()
                    .await
                    .map_err(|source| Error::io("sync", "log directory", source))?;
                io.directory_dirty = false;
            }
            if io.written > self.durable_lsn() {
                self.durable.store(io.written, Ordering::SeqCst);
            }
            self.durable_changed.notify(usize::MAX);
        }
        Ok(())
    }

    /// Appends a padding record so the buffer ends on a sector boundary of its segment (or
    /// exactly at the segment's end).
    fn pad_to_sector(&self, buffer: &mut Buffer) {
        let sector = self.sector_bytes.max(1);
        let in_segment = buffer.next - buffer.segment_start;
        let mut gap = (sector - in_segment % sector) % sector;
        if gap == 0 {
            return;
        }
        if gap < record::RECORD_HEADER_BYTES as u64 {
            gap += sector;
        }
        // Padding must not run past the segment's end; start the next segment here instead,
        // whose first byte is at file offset 0, a sector boundary.
        let room = self.segment_bytes.saturating_sub(in_segment);
        if gap > room {
            buffer.segment_start = buffer.next;
            buffer.new_segments.push(buffer.next);
            return;
        }
        Self::append_locked(buffer, &Record::padding(gap as usize), self.segment_bytes);
    }

    async fn sync_open_segment(&self, io: &mut Io<V::File>) -> Result<()> {
        if let (Some((segment_start, file)), true) = (&io.segment, io.segment_dirty) {
            let mut synced = file.sync().await;
            if let (Err(error), true) = (&synced, self.retry_failed_sync) {
                tracing::warn!(%error, "planted bug: a failed log fsync is retried");
                synced = file.sync().await;
            }
            synced
                .map_err(|source| Error::io("sync", self.segment_name(*segment_start), source))?;
            io.segment_dirty = false;
        }
        Ok(())
    }

    /// Seals the open segment and creates the one starting at `start`. Sealing fsyncs the
    /// segment (so only the last segment can have an unsynced tail) and makes every earlier
    /// segment create durable (so a crash cannot keep this create and undo an earlier one:
    /// recovery may take a gap in segment LSNs for corruption, never for the log's end).
    async fn open_segment(&self, vfs: &V, io: &mut Io<V::File>, start: u64) -> Result<()> {
        self.sync_open_segment(io).await?;
        if io.directory_dirty {
            vfs.sync_dir()
                .await
                .map_err(|source| Error::io("sync", "log directory", source))?;
            io.directory_dirty = false;
        }
        let name = self.segment_name(start);
        let file = vfs
            .create(&name)
            .await
            .map_err(|source| Error::io("create", name, source))?;
        io.segment = Some((start, file));
        io.segments.insert(start);
        io.directory_dirty = true;
        Ok(())
    }

    /// Waits until every record ending at or below `end` is durable, or `poisoned` says why not.
    pub async fn wait_durable(&self, end: u64, poisoned: impl Fn() -> Option<Error>) -> Result<()> {
        loop {
            if self.durable_lsn() >= end {
                return Ok(());
            }
            if let Some(error) = poisoned() {
                return Err(error);
            }
            let listener = self.durable_changed.listen();
            if self.durable_lsn() >= end {
                return Ok(());
            }
            if let Some(error) = poisoned() {
                return Err(error);
            }
            listener.await;
        }
    }

    /// Wakes every waiter, e.g. after the engine was poisoned.
    pub fn wake_waiters(&self) {
        self.durable_changed.notify(usize::MAX);
    }

    /// Removes every segment that holds only bytes before `before` (the begin LSN of the
    /// newest durable checkpoint). Returns the starts of the removed segments.
    pub async fn trim(&self, vfs: &V, before: u64) -> Result<Vec<u64>> {
        let mut io = self.io.lock().await;
        let open = io.segment.as_ref().map(|(start, _)| *start);
        let starts: Vec<u64> = io.segments.iter().copied().collect();
        let mut removed = Vec::new();
        for pair in starts.windows(2) {
            let (start, next) = (pair[0], pair[1]);
            if next <= before && Some(start) != open {
                let name = self.segment_name(start);
                vfs.remove(&name)
                    .await
                    .map_err(|source| Error::io("remove", name, source))?;
                io.segments.remove(&start);
                removed.push(start);
            }
        }
        if !removed.is_empty() {
            vfs.sync_dir()
                .await
                .map_err(|source| Error::io("sync", "log directory", source))?;
        }
        Ok(removed)
    }

    /// Bytes of log written since `lsn`.
    pub fn bytes_since(&self, lsn: u64) -> u64 {
        self.next_lsn().saturating_sub(lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::mem::MemVfs;
    use futures::executor::block_on;
    use proptest::prelude::*;

    // Only the prefix followed by exactly 20 digits names a segment: other files in the
    // directory (a shorter number, a letter, another log's prefix) are never taken for one.
    #[test]
    fn only_twenty_digits_after_the_prefix_name_a_segment() {
        assert_eq!(parse_segment_name("log-00000000000000004096"), Some(4096));
        for name in [
            "log-4096",
            "log-000000000000000004096",
            "log-0000000000000000409x",
            "log-+0000000000000004096",
            "plog-00000000000000004096",
            "data",
            "log-",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
        assert!(is_log_file("plog-00000000000000004096"));
        assert!(is_log_file("log-00000000000000004096"));
        assert!(!is_log_file("data"));
        assert!(!is_log_file("control"));
    }

    // Segments hold whole records up to their size: a record that would run past its segment's
    // end starts the next segment, so each segment holds as many records as fit and no more,
    // and a flush writes each record into the segment named by where it starts.
    #[test]
    fn a_record_that_does_not_fit_starts_the_next_segment() {
        let record = Record::BeginCheckpoint {
            checkpoint_count: 7,
        };
        let len = record::encoded_len(&record) as u64;
        // A size records do not divide, and one they fill exactly (the last record ending at
        // the segment's end still fits).
        for segment_bytes in [1024, 4 * len] {
            segments_hold_what_fits(&record, segment_bytes);
        }
    }

    fn segments_hold_what_fits(record: &Record, segment_bytes: u64) {
        let vfs = MemVfs::new();
        let log: Log<MemVfs> = Log::new(0, 0, None, BTreeSet::new(), segment_bytes, 1);
        let len = record::encoded_len(record) as u64;
        let per_segment = (segment_bytes / len) as usize;
        assert!(per_segment >= 2, "{len}");
        let starts: Vec<u64> = (0..per_segment * 3 + 1)
            .map(|_| log.append(record).0 .0)
            .collect();
        block_on(log.flush(&vfs, false)).unwrap();
        let expected: Vec<u64> = starts.iter().step_by(per_segment).copied().collect();
        assert_eq!(segment_starts(&vfs), expected);
        for pair in expected.windows(2) {
            let file = block_on(vfs.open(&segment_name(pair[0]))).unwrap();
            assert_eq!(block_on(file.len()).unwrap(), pair[1] - pair[0]);
            assert!(pair[1] - pair[0] <= segment_bytes);
        }
        assert_eq!(log.next_lsn(), starts.last().unwrap() + len);
    }

    // A record larger than a segment, first in a fresh log, gets the first segment to itself
    // (one segment, past the size, rather than an empty one before it), and the next record
    // starts the second.
    #[test]
    fn a_record_larger_than_a_segment_has_one_to_itself() {
        let segment_bytes = 256;
        let vfs = MemVfs::new();
        let log: Log<MemVfs> = Log::new(0, 0, None, BTreeSet::new(), segment_bytes, 1);
        let large = Record::Commit {
            txn_id: 1,
            writes: vec![crate::types::Write::put(b"key".to_vec(), vec![7; 600])],
        };
        let (first, end) = log.append(&large);
        let (second, _) = log.append(&Record::BeginCheckpoint {
            checkpoint_count: 1,
        });
        assert_eq!((first.0, second.0), (0, end));
        block_on(log.flush(&vfs, false)).unwrap();
        assert_eq!(segment_starts(&vfs), [0, end]);
        let file = block_on(vfs.open(&segment_name(0))).unwrap();
        assert_eq!(block_on(file.len()).unwrap(), end);
    }

    proptest! {
        // A synced flush ends on a sector boundary of its segment (padding the gap with a record
        // at least a header long, or starting the next segment when the gap would run past this
        // one's end), so no later write rewrites a sector holding durable records; and a scan
        // reads back every record, in order, across the padding.
        #[test]
        fn a_synced_flush_ends_on_a_sector_boundary(
            sector_shift in 6u32..=9,
            sizes in proptest::collection::vec(0usize..400, 1..40),
        ) {
            let sector = 1u64 << sector_shift;
            let vfs = MemVfs::new();
            let log: Log<MemVfs> = Log::new(0, 0, None, BTreeSet::new(), 2048, sector);
            let mut appended = Vec::new();
            for (txn_id, size) in sizes.into_iter().enumerate() {
                let record = Record::Commit {
                    txn_id: txn_id as u64,
                    writes: vec![crate::types::Write::put(b"k".to_vec(), vec![1; size])],
                };
                appended.push(log.append(&record).0);
                block_on(log.flush(&vfs, true)).unwrap();
                let next = log.next_lsn();
                let start = *segment_starts(&vfs).iter().rfind(|&&start| start <= next).unwrap();
                prop_assert_eq!((next - start) % sector, 0, "log ends at {} in segment {}", next, start);
                prop_assert_eq!(log.durable_lsn(), next);
                // A log already on a boundary has nothing to pad: syncing it again writes nothing.
                block_on(log.flush(&vfs, true)).unwrap();
                prop_assert_eq!(log.next_lsn(), next);
            }
            // Padding does not start a segment per flush: a segment rolls only when a record or
            // its padding does not fit (at most 430 + 529 bytes short of 2048).
            let segments = segment_starts(&vfs).len() as u64;
            prop_assert!(segments <= 1 + log.next_lsn() / 1024, "{} segments", segments);
            let scan = block_on(reader::scan(&vfs, 0)).unwrap();
            let commits: Vec<Lsn> = scan
                .records
                .iter()
                .filter(|(_, record)| matches!(record, Record::Commit { .. }))
                .map(|(lsn, _)| *lsn)
                .collect();
            prop_assert_eq!(commits, appended);
        }
    }

    // Trimming removes exactly the segments that hold only bytes before the given LSN, never
    // the open one, and reports them; the log counts its bytes since any LSN.
    #[test]
    fn trim_removes_only_segments_wholly_before_the_lsn() {
        let vfs = MemVfs::new();
        let log: Log<MemVfs> = Log::new(0, 0, None, BTreeSet::new(), 256, 1);
        let record = Record::BeginCheckpoint {
            checkpoint_count: 3,
        };
        for _ in 0..40 {
            log.append(&record);
        }
        block_on(log.flush(&vfs, true)).unwrap();
        let starts = segment_starts(&vfs);
        assert!(starts.len() >= 4, "{starts:?}");
        assert_eq!(log.bytes_since(starts[1]), log.next_lsn() - starts[1]);
        // Up to the third segment's start: the first two go, and only they.
        let removed = block_on(log.trim(&vfs, starts[2])).unwrap();
        assert_eq!(removed, starts[..2]);
        assert_eq!(segment_starts(&vfs), starts[2..]);
        // Past the end of the log: everything but the open (last) segment goes.
        let removed = block_on(log.trim(&vfs, log.next_lsn() + 1)).unwrap();
        assert_eq!(removed, starts[2..starts.len() - 1]);
        assert_eq!(segment_starts(&vfs), [*starts.last().unwrap()]);
    }

    /// The starts of the redo log segments in `vfs`, ascending.
    fn segment_starts(vfs: &MemVfs) -> Vec<u64> {
        let names = block_on(vfs.list()).unwrap();
        let mut starts: Vec<u64> = names
            .iter()
            .filter_map(|name| parse_segment_name(name))
            .collect();
        starts.sort_unstable();
        starts
    }

    proptest! {
        // Every segment start reads back from its name, under either log's prefix.
        #[test]
        fn segment_names_round_trip(start in any::<u64>()) {
            prop_assert_eq!(parse_segment_name(&segment_name(start)), Some(start));
            let physical = prefixed_segment_name(PHYSICAL_LOG_PREFIX, start);
            prop_assert_eq!(parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, &physical), Some(start));
            prop_assert_eq!(parse_segment_name(&physical), None);
        }
    }
}
