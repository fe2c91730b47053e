//! The simulated disk's state and every operation's effect, synchronous and under one lock.
//! [`super::SimFs`] and [`super::SimFile`] only add latency around these.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::crash::{
    apply_write, rewrite_sectors, CrashPoint, DataOp, DiskImage, InodeId, NamespaceOp, PendingOp,
};
use super::fault::{FailedSync, FaultKind, FaultRecord};
use super::trace::{Digest, TraceEvent};
use super::FsConfig;

/// At most this many trace events and fault records are kept; later ones are only counted and
/// folded into the digest, so a long run cannot exhaust memory.
pub(super) const RECORDS_LIMIT: usize = 1 << 20;

/// An unsynced data operation of one inode.
#[derive(Clone, Debug)]
struct Unsynced {
    seq: u64,
    op: DataOp,
    /// A lying fsync reported it durable.
    acknowledged: bool,
    /// The bytes the caller meant to change: `op`'s range, except for a misdirected write,
    /// whose bytes landed elsewhere.
    intended: (u64, u64),
}

#[derive(Debug, Default)]
struct Inode {
    /// The bytes on the platter.
    durable: Arc<Vec<u8>>,
    /// What reads see: the page cache, `durable` with `unsynced` applied (unless an fsync error
    /// dropped some of them, see `cache_diverged`).
    current: Vec<u8>,
    unsynced: Vec<Unsynced>,
    /// The live name, if any.
    name: Option<String>,
    /// The durable name, if any.
    durable_name: Option<String>,
    /// An unsynced create made this inode, so a crash image may contain it.
    created_unsynced: bool,
    open_handles: usize,
    /// An fsync error dropped unsynced operations that reads still see: `current` no longer
    /// equals `durable` plus `unsynced`.
    cache_diverged: bool,
    /// Durable sectors (numbers, in the disk's sector size) a latent sector error made
    /// unreadable: a read that needs a byte of one from the platter fails. A durable write
    /// over the sector clears it (the drive remaps it).
    unreadable: BTreeSet<u64>,
}

impl Inode {
    fn reachable(&self) -> bool {
        self.name.is_some()
            || self.durable_name.is_some()
            || self.created_unsynced
            || self.open_handles > 0
    }

    /// Whether the page cache holds a dirty byte at `position` (so a rotten platter byte there
    /// is not seen by reads).
    fn dirty_at(&self, position: u64) -> bool {
        self.unsynced.iter().any(|unsynced| match &unsynced.op {
            DataOp::Write { offset, data } => {
                (*offset..offset + data.len() as u64).contains(&position)
            }
            DataOp::SetLen { len } => position >= *len,
        })
    }
}

/// Describes one call for the trace.
pub(super) struct Call {
    pub(super) op: &'static str,
    pub(super) file: String,
    pub(super) offset: u64,
    pub(super) len: u64,
    /// CRC-32 of the data written, 0 for other calls.
    pub(super) crc: u32,
}

/// A file system call for a log line: `fs #16 write log-… [1024, +512) ok`.
struct CallShown<'a> {
    index: u64,
    call: &'a Call,
    result: &'a Result<u64, io::ErrorKind>,
    fault: Option<FaultKind>,
}

impl std::fmt::Display for CallShown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let call = self.call;
        write!(f, "fs #{} {}", self.index, call.op)?;
        if !call.file.is_empty() {
            write!(f, " {}", call.file)?;
        }
        match call.op {
            "read" | "write" => write!(f, " [{}, +{})", call.offset, call.len)?,
            "set_len" => write!(f, " to {}", call.len)?,
            _ => {}
        }
        match self.result {
            Ok(count) if matches!(call.op, "read" | "len" | "list") => write!(f, " -> {count}")?,
            Ok(_) => f.write_str(" ok")?,
            Err(kind) => write!(f, " -> error {kind:?}")?,
        }
        if let Some(fault) = self.fault {
            write!(f, " (fault: {fault})")?;
        }
        Ok(())
    }
}

pub(super) struct State {
    config: FsConfig,
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: u64,
    live: BTreeMap<String, InodeId>,
    durable: BTreeMap<String, InodeId>,
    namespace: Vec<NamespaceOp>,
    fault_rng: ChaCha8Rng,
    /// Draws the faults of a reads-only scope (recovery), so that what recovery meets never
    /// moves the draws of the phase that follows on the same disk.
    read_fault_rng: ChaCha8Rng,
    latency_rng: ChaCha8Rng,
    pub(super) scope: FaultScope,
    pub(super) io_count: u64,
    /// Bytes the writes asked to write, whatever their fate (for write amplification).
    pub(super) bytes_written: u64,
    digest: Digest,
    trace: Vec<TraceEvent>,
    pub(super) faults: Vec<FaultRecord>,
    pub(super) fault_count: u64,
    /// Every fsync that failed, with what it failed to make durable.
    pub(super) failed_syncs: Vec<FailedSync>,
    /// Set by the fault-injection helpers during one call, for its trace event.
    call_fault: Option<FaultKind>,
    pub(super) crashed: Option<CrashPoint>,
    pub(super) crash_at_io: Option<u64>,
    /// Called after every call while `recording` is on, with the call's index and the crash
    /// point right after it: how exhaustive exploration sees every state a crash could leave.
    pub(super) recorder: Option<Recorder>,
    pub(super) recording: bool,
    /// Told of every write that takes effect.
    pub(super) write_watch: Option<WriteWatch>,
    /// Exactly which calls (by index) get which fault; replaces the rates when set. How a
    /// shrunk schedule replays its faults.
    pub(super) fault_plan: Option<BTreeMap<u64, FaultKind>>,
}

/// Receives `(file, offset, bytes)` of every write that took effect, at the offset the caller
/// asked for (a misdirected write's bytes land elsewhere).
pub type WriteWatch = std::sync::Arc<dyn Fn(&str, u64, &[u8]) + Send + Sync>;

/// The ChaCha stream (of the fault seed) that reads-only scopes draw from.
const READ_FAULT_STREAM: u64 = 1;

/// Which injected faults a disk draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope {
    /// None: the disk only does what it is told (damage already at rest stays, though).
    Off,
    /// Only the faults reads meet ([`FaultKind::hits_reads`]), from their own stream: what a
    /// recovery, which mostly reads, runs with.
    Reads,
    /// Every configured fault.
    All,
}

/// Receives `(call index, crash point after the call)`.
pub type Recorder = std::sync::Arc<dyn Fn(u64, CrashPoint) + Send + Sync>;

fn crashed_error() -> io::Error {
    io::Error::other("simulated crash")
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

impl State {
    pub(super) fn new(config: FsConfig) -> Self {
        State {
            fault_rng: ChaCha8Rng::seed_from_u64(config.fault_seed),
            read_fault_rng: {
                let mut rng = ChaCha8Rng::seed_from_u64(config.fault_seed);
                rng.set_stream(READ_FAULT_STREAM);
                rng
            },
            latency_rng: ChaCha8Rng::seed_from_u64(config.latency_seed),
            config,
            inodes: BTreeMap::new(),
            next_inode: 0,
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            namespace: Vec::new(),
            scope: FaultScope::All,
            io_count: 0,
            bytes_written: 0,
            digest: Digest::new(),
            trace: Vec::new(),
            faults: Vec::new(),
            fault_count: 0,
            failed_syncs: Vec::new(),
            call_fault: None,
            crashed: None,
            crash_at_io: None,
            recorder: None,
            recording: false,
            write_watch: None,
            fault_plan: None,
        }
    }

    pub(super) fn from_image(image: DiskImage, config: FsConfig) -> Self {
        let mut state = State::new(config);
        let mut unreadable = image.unreadable;
        for (name, bytes) in image.files {
            let id = state.new_inode();
            let inode = state.inodes.get_mut(&id).expect("just made");
            inode.unreadable = unreadable.remove(&name).unwrap_or_default();
            inode.durable = Arc::new(bytes.clone());
            inode.current = bytes;
            inode.name = Some(name.clone());
            inode.durable_name = Some(name.clone());
            state.live.insert(name.clone(), id);
            state.durable.insert(name, id);
        }
        state
    }

    fn new_inode(&mut self) -> InodeId {
        let id = InodeId(self.next_inode);
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        id
    }

    fn inode(&mut self, id: InodeId) -> &mut Inode {
        self.inodes
            .get_mut(&id)
            .expect("an open file's inode is never collected")
    }

    pub(super) fn draw_latency(&mut self) -> Duration {
        let (min, max) = (
            self.config.faults.latency_min(),
            self.config.faults.latency_max(),
        );
        if max.is_zero() {
            return Duration::ZERO;
        }
        let nanos = self
            .latency_rng
            .gen_range(min.as_nanos() as u64..=max.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }

    /// The name a file call is traced under.
    pub(super) fn file_name(&self, id: InodeId) -> String {
        match self.inodes.get(&id).and_then(|inode| inode.name.clone()) {
            Some(name) => name,
            None => format!("<unlinked inode {}>", id.0),
        }
    }

    /// Runs one call whose latency has elapsed: counts it, applies it unless the disk has
    /// crashed, traces it, and crashes the disk if it was armed to crash after this call.
    /// `apply` gets the call's index (its sequence number).
    pub(super) fn run<T>(
        &mut self,
        call: Call,
        apply: impl FnOnce(&mut State, u64, &Call) -> io::Result<T>,
        count: impl Fn(&T) -> u64,
    ) -> io::Result<T> {
        self.io_count += 1;
        let index = self.io_count;
        self.call_fault = None;
        let result = if self.crashed.is_some() {
            Err(crashed_error())
        } else {
            apply(self, index, &call)
        };
        let traced = result.as_ref().map(count).map_err(io::Error::kind);
        self.record(index, call, traced);
        if self.crash_at_io == Some(index) {
            self.crash();
        }
        if self.recording && self.crashed.is_none() {
            if let Some(recorder) = &self.recorder {
                recorder(index, self.crash_point());
            }
        }
        result
    }

    fn record(&mut self, index: u64, call: Call, result: Result<u64, io::ErrorKind>) {
        let digest = &mut self.digest;
        digest.u64(index);
        digest.str(call.op);
        digest.str(&call.file);
        digest.u64(call.offset);
        digest.u64(call.len);
        digest.u64(u64::from(call.crc));
        match &result {
            Ok(count) => {
                digest.u64(0);
                digest.u64(*count);
            }
            Err(kind) => {
                digest.u64(1);
                digest.str(&format!("{kind:?}"));
            }
        }
        digest.str(self.call_fault.map_or("", |fault| fault.name()));
        tracing::trace!(
            "{}",
            CallShown {
                index,
                call: &call,
                result: &result,
                fault: self.call_fault,
            }
        );
        if self.config.record_trace && self.trace.len() < RECORDS_LIMIT {
            let time_nanos = self.now_nanos(index);
            self.trace.push(TraceEvent {
                index,
                time_nanos,
                op: call.op,
                file: call.file,
                offset: call.offset,
                len: call.len,
                result,
                fault: self.call_fault,
            });
        }
    }

    /// Simulated nanoseconds since the runtime started, so the traces of every disk of a run
    /// share one timeline; the call index outside a madsim runtime.
    fn now_nanos(&mut self, index: u64) -> u64 {
        match madsim::time::TimeHandle::try_current() {
            Some(time) => time.elapsed().as_nanos() as u64,
            None => index,
        }
    }

    pub(super) fn digest(&self) -> u64 {
        self.digest.0
    }

    pub(super) fn take_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    /// Decides whether a fault of `kind` hits this call: from the fault plan if one is set
    /// (exactly the planned calls), else drawn at `rate`. Nothing is drawn while the scope
    /// leaves `kind` out, so a quiet phase does not move the fault stream.
    fn roll(&mut self, kind: FaultKind, rate: f64) -> bool {
        let in_scope = match self.scope {
            FaultScope::Off => false,
            FaultScope::Reads => kind.hits_reads(),
            FaultScope::All => true,
        };
        if !in_scope || self.crashed.is_some() {
            return false;
        }
        // Drawn even under a plan, so a plan recorded from a run replays that run's fault
        // details (misdirection targets, flipped bits) from the same stream positions.
        let drawn = rate > 0.0 && self.rng().gen_bool(rate);
        match &self.fault_plan {
            Some(plan) => plan.get(&self.io_count) == Some(&kind),
            None => drawn,
        }
    }

    /// The stream the current scope draws fault details from.
    fn rng(&mut self) -> &mut ChaCha8Rng {
        match self.scope {
            FaultScope::Reads => &mut self.read_fault_rng,
            FaultScope::Off | FaultScope::All => &mut self.fault_rng,
        }
    }

    /// Records a fault that hit `call`; `damaged` lists the byte ranges of the call's file it
    /// made unreliable (see [`FaultRecord::damaged`]).
    fn inject(
        &mut self,
        index: u64,
        kind: FaultKind,
        call: &Call,
        detail: String,
        damaged: Vec<(u64, u64)>,
    ) {
        let record = FaultRecord {
            index,
            kind,
            file: call.file.clone(),
            offset: call.offset,
            len: call.len,
            detail,
            damaged,
        };
        self.record_fault(record);
    }

    fn record_fault(&mut self, record: FaultRecord) {
        tracing::debug!(
            index = record.index,
            kind = record.kind.name(),
            file = %record.file,
            offset = record.offset,
            len = record.len,
            detail = %record.detail,
            "fault injected"
        );
        self.call_fault = Some(record.kind);
        self.fault_count += 1;
        if self.faults.len() < RECORDS_LIMIT {
            self.faults.push(record);
        }
    }

    // ---- Directory calls ----

    pub(super) fn create(&mut self, index: u64, name: &str) -> io::Result<InodeId> {
        if let Some(&id) = self.live.get(name) {
            // Like O_TRUNC: the same inode, truncated by an unsynced data operation.
            let inode = self.inode(id);
            inode.current.clear();
            inode.unsynced.push(Unsynced {
                seq: index,
                op: DataOp::SetLen { len: 0 },
                intended: DataOp::SetLen { len: 0 }.range(),
                acknowledged: false,
            });
            inode.open_handles += 1;
            return Ok(id);
        }
        let id = self.new_inode();
        let inode = self.inode(id);
        inode.name = Some(name.to_string());
        inode.created_unsynced = true;
        inode.open_handles = 1;
        self.live.insert(name.to_string(), id);
        self.namespace.push(NamespaceOp::Create {
            seq: index,
            name: name.to_string(),
            inode: id,
        });
        Ok(id)
    }

    pub(super) fn open(&mut self, name: &str) -> io::Result<InodeId> {
        let id = *self.live.get(name).ok_or_else(|| not_found(name))?;
        self.inode(id).open_handles += 1;
        Ok(id)
    }

    pub(super) fn remove(&mut self, index: u64, name: &str) -> io::Result<()> {
        let id = self.live.remove(name).ok_or_else(|| not_found(name))?;
        self.inode(id).name = None;
        self.namespace.push(NamespaceOp::Remove {
            seq: index,
            name: name.to_string(),
        });
        self.collect(id);
        Ok(())
    }

    pub(super) fn rename(&mut self, index: u64, from: &str, to: &str) -> io::Result<()> {
        if from == to {
            return self
                .live
                .get(from)
                .map(|_| ())
                .ok_or_else(|| not_found(from));
        }
        let id = self.live.remove(from).ok_or_else(|| not_found(from))?;
        if let Some(replaced) = self.live.insert(to.to_string(), id) {
            self.inode(replaced).name = None;
            self.collect(replaced);
        }
        self.inode(id).name = Some(to.to_string());
        self.namespace.push(NamespaceOp::Rename {
            seq: index,
            from: from.to_string(),
            to: to.to_string(),
        });
        Ok(())
    }

    pub(super) fn list(&self) -> Vec<String> {
        self.live.keys().cloned().collect()
    }

    pub(super) fn sync_dir(&mut self) {
        self.durable = self.live.clone();
        self.namespace.clear();
        for inode in self.inodes.values_mut() {
            inode.durable_name = None;
            inode.created_unsynced = false;
        }
        for (name, id) in &self.durable {
            let inode = self.inodes.get_mut(id).expect("a live name's inode exists");
            inode.durable_name = Some(name.clone());
        }
        self.inodes.retain(|_, inode| inode.reachable());
    }

    /// Forgets an inode no name, unsynced create or open handle can reach.
    fn collect(&mut self, id: InodeId) {
        if self.inodes.get(&id).is_some_and(|inode| !inode.reachable()) {
            self.inodes.remove(&id);
        }
    }

    pub(super) fn close(&mut self, id: InodeId) {
        if let Some(inode) = self.inodes.get_mut(&id) {
            inode.open_handles -= 1;
        }
        self.collect(id);
    }

    // ---- File calls ----

    pub(super) fn read(
        &mut self,
        index: u64,
        call: &Call,
        id: InodeId,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let rate = self.config.faults.bit_rot;
        if self.roll(FaultKind::BitRot, rate) {
            self.rot(index);
        }
        let rate = self.config.faults.latent_sector_error;
        if self.roll(FaultKind::LatentSectorError, rate) {
            self.make_unreadable(index);
        }
        let available = (self.inode(id).current.len() as u64).saturating_sub(offset) as usize;
        let mut read = buf.len().min(available);
        if let Some(sector) = self.unreadable_sector(id, offset, read as u64) {
            return Err(io::Error::other(format!(
                "simulated latent sector error: sector {sector} is unreadable"
            )));
        }
        let rate = self.config.faults.short_read;
        if read >= 2 && self.roll(FaultKind::ShortRead, rate) {
            let short = self.rng().gen_range(1..read);
            let detail = format!("returned {short} of {read} bytes");
            self.inject(index, FaultKind::ShortRead, call, detail, Vec::new());
            read = short;
        }
        let mut source = offset;
        let rate = self.config.faults.misdirected_read;
        if read > 0 && self.roll(FaultKind::MisdirectedRead, rate) {
            let len = self.inode(id).current.len() as u64;
            source = self.misdirect_read(offset, len);
            let detail = format!("returned the bytes at offset {source}");
            let damaged = vec![(offset, offset + read as u64)];
            self.inject(index, FaultKind::MisdirectedRead, call, detail, damaged);
        }
        if read > 0 {
            let current = &self.inode(id).current;
            for (position, byte) in (source..).zip(buf[..read].iter_mut()) {
                *byte = current.get(position as usize).copied().unwrap_or(0);
            }
        }
        Ok(read)
    }

    /// A sector-aligned offset, other than `offset`, in the file's sectors or the one past its
    /// end (which reads as zeros): where a misdirected read takes its bytes from.
    fn misdirect_read(&mut self, offset: u64, len: u64) -> u64 {
        let sector_size_bytes = self.config.sector_size_bytes();
        let sectors = len.div_ceil(sector_size_bytes) + 1;
        let mut target = self.rng().gen_range(0..sectors) * sector_size_bytes;
        if target == offset {
            target += sector_size_bytes;
        }
        target
    }

    /// Picks one durable sector among every durable file's (uniformly over sectors, files in
    /// name order): the inode, its name, and the sector's byte range. None if nothing is
    /// durable.
    fn durable_sector(&mut self) -> Option<(InodeId, String, u64, u64)> {
        let sector_size_bytes = self.config.sector_size_bytes();
        let files: Vec<(InodeId, String, u64)> = self
            .durable
            .iter()
            .map(|(name, id)| (*id, name.clone(), self.inodes[id].durable.len() as u64))
            .filter(|(_, _, len)| *len > 0)
            .collect();
        let total: u64 = files
            .iter()
            .map(|(_, _, len)| len.div_ceil(sector_size_bytes))
            .sum();
        if total == 0 {
            return None;
        }
        let mut pick = self.rng().gen_range(0..total);
        for (id, name, len) in files {
            let sectors = len.div_ceil(sector_size_bytes);
            if pick < sectors {
                let start = pick * sector_size_bytes;
                return Some((id, name, start, (start + sector_size_bytes).min(len)));
            }
            pick -= sectors;
        }
        unreachable!("the pick is below the total of the sectors")
    }

    /// Flips 1 to 8 bits of one durable sector of any durable file (the log included, where
    /// only recovery reads). Reads see the flips wherever the page cache holds the platter's
    /// bytes (not where an unsynced write covers them).
    fn rot(&mut self, index: u64) {
        let Some((id, file, start, end)) = self.durable_sector() else {
            return;
        };
        // Most rot is a single flipped bit; now and then a burst of up to 8.
        let flips = if self.rng().gen_bool(0.5) {
            1
        } else {
            self.rng().gen_range(2..=8)
        };
        let mut positions = Vec::with_capacity(flips);
        for _ in 0..flips {
            let position = self.rng().gen_range(start..end);
            let mask = 1u8 << self.rng().gen_range(0..8);
            positions.push((position, mask));
        }
        let inode = self.inode(id);
        let durable = Arc::make_mut(&mut inode.durable);
        for &(position, mask) in &positions {
            durable[position as usize] ^= mask;
        }
        for &(position, mask) in &positions {
            if (position as usize) < inode.current.len() && !inode.dirty_at(position) {
                inode.current[position as usize] ^= mask;
            }
        }
        let shown: Vec<String> = positions
            .iter()
            .map(|(position, mask)| format!("{position}^{mask:#04x}"))
            .collect();
        let detail = format!("flipped bits at {}", shown.join(", "));
        let damaged = positions
            .iter()
            .map(|&(position, _)| (position, position + 1))
            .collect();
        self.record_fault(FaultRecord {
            index,
            kind: FaultKind::BitRot,
            file,
            offset: start,
            len: end - start,
            detail,
            damaged,
        });
    }

    /// Makes one durable sector of any durable file unreadable (a latent sector error).
    fn make_unreadable(&mut self, index: u64) {
        let Some((id, file, start, end)) = self.durable_sector() else {
            return;
        };
        let sector = start / self.config.sector_size_bytes();
        self.inode(id).unreadable.insert(sector);
        self.record_fault(FaultRecord {
            index,
            kind: FaultKind::LatentSectorError,
            file,
            offset: start,
            len: end - start,
            detail: format!("sector {sector} unreadable until rewritten"),
            damaged: vec![(start, end)],
        });
    }

    /// The first unreadable sector a read of `[offset, offset + len)` needs from the platter
    /// (one the page cache does not cover with an unsynced write).
    fn unreadable_sector(&self, id: InodeId, offset: u64, len: u64) -> Option<u64> {
        let inode = &self.inodes[&id];
        if inode.unreadable.is_empty() || len == 0 {
            return None;
        }
        let sector_size_bytes = self.config.sector_size_bytes();
        let first = offset / sector_size_bytes;
        let last = (offset + len).div_ceil(sector_size_bytes);
        inode
            .unreadable
            .range(first..last)
            .copied()
            .find(|&sector| {
                let start = (sector * sector_size_bytes).max(offset);
                let end = ((sector + 1) * sector_size_bytes).min(offset + len);
                (start..end).any(|position| !inode.dirty_at(position))
            })
    }

    pub(super) fn write(
        &mut self,
        index: u64,
        call: &Call,
        id: InodeId,
        offset: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let faults = self.config.faults.clone();
        if self.roll(FaultKind::WriteError, faults.write_error) {
            let detail = "nothing written".to_string();
            self.inject(index, FaultKind::WriteError, call, detail, Vec::new());
            return Err(io::Error::other("simulated write error"));
        }
        let end = offset + data.len() as u64;
        let len = self.inode(id).current.len() as u64;
        if end > len && self.roll(FaultKind::NoSpace, faults.no_space) {
            let detail = "nothing written".to_string();
            self.inject(index, FaultKind::NoSpace, call, detail, Vec::new());
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space"));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut target = offset;
        if self.roll(FaultKind::MisdirectedWrite, faults.misdirected_write) {
            target = self.misdirect(offset, data.len() as u64, len.max(end));
            let detail = format!("landed at offset {target}");
            // The intended range keeps its old bytes and the landing range loses its own.
            let len = data.len() as u64;
            let damaged = vec![(offset, offset + len), (target, target + len)];
            self.inject(index, FaultKind::MisdirectedWrite, call, detail, damaged);
        }
        let inode = self.inode(id);
        apply_write(&mut inode.current, target, data);
        inode.unsynced.push(Unsynced {
            seq: index,
            op: DataOp::Write {
                offset: target,
                data: Arc::new(data.to_vec()),
            },
            acknowledged: false,
            intended: (offset, end),
        });
        if let Some(watch) = &self.write_watch {
            watch(&call.file, offset, data);
        }
        Ok(())
    }

    /// A sector-aligned offset in `[0, limit]` (rounded up to a sector) where a write of `len`
    /// bytes does not overlap `[offset, offset + len)`.
    fn misdirect(&mut self, offset: u64, len: u64, limit: u64) -> u64 {
        let sector_size_bytes = self.config.sector_size_bytes();
        // Aligned offsets k * sector with k * sector + len <= offset.
        let below = if offset >= len {
            (offset - len) / sector_size_bytes + 1
        } else {
            0
        };
        // Aligned offsets from the first one at or after the write's end up to the limit.
        let first_above = (offset + len).div_ceil(sector_size_bytes);
        let above = limit.div_ceil(sector_size_bytes) - first_above + 1;
        let pick = self.rng().gen_range(0..below + above);
        let target = if pick < below {
            pick
        } else {
            first_above + pick - below
        } * sector_size_bytes;
        assert!(
            target + len <= offset || target >= offset + len,
            "misdirected write overlaps its target"
        );
        target
    }

    pub(super) fn sync(&mut self, index: u64, call: &Call, id: InodeId) -> io::Result<()> {
        let faults = self.config.faults.clone();
        let unsynced = self.inode(id).unsynced.len();
        if self.roll(FaultKind::LyingFsync, faults.lying_fsync) {
            let mut damaged = Vec::with_capacity(unsynced);
            for pending in &mut self.inode(id).unsynced {
                pending.acknowledged = true;
                damaged.push(pending.op.range());
            }
            let detail = format!("reported {unsynced} unsynced operations durable, persisted none");
            self.inject(index, FaultKind::LyingFsync, call, detail, damaged);
            return Ok(());
        }
        if self.roll(FaultKind::FsyncError, faults.fsync_error) {
            let mut kept = Vec::with_capacity(unsynced);
            let mut damaged = Vec::new();
            let all = std::mem::take(&mut self.inode(id).unsynced);
            let failed = FailedSync {
                index,
                file: call.file.clone(),
                len: self.inode(id).current.len() as u64,
                // What the engine was told did not become durable: the bytes it wrote, where it
                // asked for them (a misdirected write's landing spot is damage, not its data).
                // A write an earlier lying fsync reported durable is not among them: the engine
                // was told it was durable before this failure, and its loss is that lie's.
                unsynced: all
                    .iter()
                    .filter(|pending| !pending.acknowledged)
                    .map(|pending| pending.intended)
                    .collect(),
            };
            for pending in all {
                if self.rng().gen_bool(0.5) {
                    kept.push(pending);
                } else {
                    damaged.push(pending.op.range());
                }
            }
            let dropped = unsynced - kept.len();
            let inode = self.inode(id);
            inode.unsynced = kept;
            inode.cache_diverged |= dropped > 0;
            if self.failed_syncs.len() < RECORDS_LIMIT {
                self.failed_syncs.push(failed);
            }
            let detail = format!("dropped {dropped} of {unsynced} unsynced operations");
            self.inject(index, FaultKind::FsyncError, call, detail, damaged);
            return Err(io::Error::other("simulated fsync error"));
        }
        let sector_size_bytes = self.config.sector_size_bytes();
        let inode = self.inode(id);
        if !inode.unsynced.is_empty() {
            let durable = Arc::make_mut(&mut inode.durable);
            for pending in inode.unsynced.drain(..) {
                rewrite_sectors(&mut inode.unreadable, &pending.op, sector_size_bytes);
                match pending.op {
                    DataOp::Write { offset, data } => apply_write(durable, offset, &data),
                    DataOp::SetLen { len } => durable.resize(len as usize, 0),
                }
            }
        }
        if inode.cache_diverged {
            inode.cache_diverged = *inode.durable != inode.current;
        } else {
            debug_assert!(
                *inode.durable == inode.current,
                "honest sync left durable != current"
            );
        }
        Ok(())
    }

    pub(super) fn len(&mut self, id: InodeId) -> u64 {
        self.inode(id).current.len() as u64
    }

    pub(super) fn set_len(&mut self, index: u64, id: InodeId, len: u64) {
        let inode = self.inode(id);
        inode.current.resize(len as usize, 0);
        inode.unsynced.push(Unsynced {
            seq: index,
            op: DataOp::SetLen { len },
            intended: DataOp::SetLen { len }.range(),
            acknowledged: false,
        });
    }

    // ---- Crashes and images ----

    pub(super) fn crash(&mut self) -> CrashPoint {
        if self.crashed.is_none() {
            tracing::debug!(index = self.io_count, "simulated crash");
            self.crashed = Some(self.crash_point());
            self.crash_at_io = None;
        }
        self.crashed.clone().expect("just set")
    }

    pub(super) fn crash_point(&self) -> CrashPoint {
        if let Some(point) = &self.crashed {
            return point.clone();
        }
        let files = self
            .durable
            .iter()
            .map(|(name, id)| (name.clone(), self.inodes[id].durable.clone()))
            .collect();
        let mut scope: BTreeSet<InodeId> = self.durable.values().copied().collect();
        let mut created_as: BTreeMap<InodeId, &str> = BTreeMap::new();
        for op in &self.namespace {
            if let NamespaceOp::Create { name, inode, .. } = op {
                scope.insert(*inode);
                created_as.insert(*inode, name);
            }
        }
        let mut pending = Vec::new();
        let mut inodes = BTreeMap::new();
        let mut unreadable = BTreeMap::new();
        for id in scope {
            let inode = &self.inodes[&id];
            inodes.insert(id, inode.durable.clone());
            if !inode.unreadable.is_empty() {
                unreadable.insert(id, inode.unreadable.clone());
            }
            let file = inode
                .name
                .clone()
                .or_else(|| inode.durable_name.clone())
                .or_else(|| created_as.get(&id).map(|name| name.to_string()))
                .expect("an inode in a crash point has a name");
            for unsynced in &inode.unsynced {
                pending.push(PendingOp {
                    seq: unsynced.seq,
                    file: file.clone(),
                    inode: id,
                    op: unsynced.op.clone(),
                    acknowledged: unsynced.acknowledged,
                });
            }
        }
        pending.sort_by_key(|op| op.seq);
        CrashPoint {
            files,
            pending,
            namespace: self.namespace.clone(),
            sector_size_bytes: self.config.sector_size_bytes(),
            durable_names: self.durable.clone(),
            inodes,
            unreadable,
        }
    }

    pub(super) fn durable_image(&self) -> DiskImage {
        let files = self
            .durable
            .iter()
            .map(|(name, id)| (name.clone(), self.inodes[id].durable.as_ref().clone()))
            .collect();
        let unreadable = self
            .durable
            .iter()
            .filter(|(_, id)| !self.inodes[id].unreadable.is_empty())
            .map(|(name, id)| (name.clone(), self.inodes[id].unreadable.clone()))
            .collect();
        DiskImage { files, unreadable }
    }

    pub(super) fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.live
            .get(name)
            .map(|id| self.inodes[id].current.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{Call, CallShown};
    use crate::fs::FaultKind;

    fn shown(op: &'static str, file: &str, result: Result<u64, io::ErrorKind>) -> String {
        let call = Call {
            op,
            file: file.into(),
            offset: 1024,
            len: 512,
            crc: 0,
        };
        CallShown {
            index: 16,
            call: &call,
            result: &result,
            fault: (op == "sync").then_some(FaultKind::LyingFsync),
        }
        .to_string()
    }

    #[test]
    fn calls_read_as_one_short_line() {
        // Proves each call shows its range only where it has one, its count only where the
        // count means something, and its error or injected fault.
        assert_eq!(
            shown("write", "log-0", Ok(0)),
            "fs #16 write log-0 [1024, +512) ok"
        );
        assert_eq!(
            shown("read", "data", Ok(87)),
            "fs #16 read data [1024, +512) -> 87"
        );
        assert_eq!(shown("list", "", Ok(2)), "fs #16 list -> 2");
        assert_eq!(
            shown("write", "data", Err(io::ErrorKind::Other)),
            "fs #16 write data [1024, +512) -> error Other"
        );
        assert_eq!(
            shown("sync", "data", Ok(0)),
            "fs #16 sync data ok (fault: lying-fsync)"
        );
    }
}
