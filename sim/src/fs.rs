//! The simulated disk: [`SimFs`], a deterministic [`Vfs`] with a stated fault model.
//!
//! # What is modelled
//!
//! - **A flat directory of inodes.** Each file is an inode with two byte images: the durable
//!   bytes (the platter) and the current bytes (the page cache, what reads see), plus the
//!   ordered list of its unsynced data operations (writes and `set_len`s). The directory has
//!   live names and durable names. `create` of an existing name truncates that inode, as
//!   `O_TRUNC` does; of a new name it makes a new inode. An unlinked file stays readable and
//!   writable through open handles.
//! - **Durability.** An honest `sync` of a file makes its unsynced operations durable (its
//!   durable bytes become its current bytes). Creates, removes and renames are durable only after
//!   `sync_dir`; syncing a file does not make its name durable, and syncing the directory does
//!   not make data durable (RocksDB's FaultInjectionFS: files created without a directory sync
//!   vanish).
//! - **Crashes** ([`SimFs::crash`], [`SimFs::arm_crash_after_ops`], [`CrashPoint`]). A crash
//!   freezes the disk: every later call fails with "simulated crash". What the disk then holds
//!   is chosen by [`CrashDecisions`]: each unsynced write survives, vanishes, or is torn at
//!   sector granularity (each sector of it old, new or garbage, sectors aligned to absolute
//!   file offsets, like SQLite's crash VFS and FoundationDB); each `set_len` survives or
//!   vanishes; surviving writes land in any order, not only issue order (ALICE); a file can
//!   end part-way through a write that lands whole or torn (its size update stopped at one of
//!   the write's sectors, as ext4's `i_size` moves page by page: [`SectorFate::Missing`]); each
//!   unsynced namespace operation is applied or undone, independently of the others.
//! - **Injected faults** ([`FaultConfig`], each a probability per eligible call, drawn from a
//!   seeded fault stream, never after a crash, and only inside the current [`FaultScope`]:
//!   every fault while a phase runs, read faults only while a recovery runs, from a stream of
//!   their own, none in the quiet phase):
//!   write errors and out-of-space errors (nothing written); misdirected writes (reported Ok, the
//!   bytes land at another sector-aligned offset of the same file that does not overlap the
//!   intended range, which stays as it was: TigerBeetle); lying fsyncs (reported Ok, nothing
//!   persisted; a later honest sync still persists the operations, a crash before it loses
//!   them); fsync errors (reported as an error, and each unsynced operation of the file is
//!   dropped with probability 1/2: it will never become durable although reads still see it,
//!   the PostgreSQL "fsyncgate" trap; the disk remembers what each failed fsync left
//!   undurable, [`SimFs::failed_syncs`]); short reads (at least one byte); misdirected reads
//!   (reported Ok, the bytes come from another sector-aligned offset of the same file, zeros
//!   past its end, once). Damage at rest, drawn on reads but landing on a durable sector of any
//!   durable file, the redo log included (so what only recovery reads can rot too): bit rot
//!   (one bit, or 2 to 8, of the sector flipped for good, visible to every later read wherever
//!   no unsynced write covers the byte: TigerBeetle's corruption that stays on retried reads);
//!   latent sector errors (the sector becomes unreadable: every read that needs a byte of it
//!   from the platter fails with an I/O error, after crashes too, until a write over it is
//!   durable). Damage at rest stays whatever the scope. Every fault record names the byte
//!   ranges it damaged ([`FaultRecord::damaged`]), which is all it can excuse.
//! - **Time.** Every call first sleeps a latency drawn uniformly from
//!   `[latency_min, latency_max]` of a seeded latency stream (none if `latency_max` is 0) and
//!   takes effect after the sleep, so concurrent tasks interleave at I/O. madsim rounds any
//!   non-zero sleep up to 1 ms. The [`blocking`] adapter, for engines with blocking I/O, makes
//!   the same calls without the latency: a blocking call cannot yield to the scheduler.
//! - **Determinism.** All randomness comes from ChaCha8 streams seeded by the caller; all maps
//!   are ordered. Every call is counted and folded into a 64-bit trace digest (call, file,
//!   offset, length, CRC-32 of written data, result, fault), so two runs of one seed can be
//!   compared ([`SimFs::trace_digest`]); with `record_trace` the calls are also kept
//!   ([`SimFs::take_trace`]).
//!
//! # What is not modelled
//!
//! - Directories other than the one flat directory, hard links, permissions, file locks. The
//!   one lock kept is the directory lock of [`Vfs::lock`], and only as an `flock` is: outside
//!   the disk (a disk booted from a crash image starts unlocked), and not as a call (taking it
//!   is not counted, traced or faulted).
//! - Partial failure inside one call: a call either takes effect entirely or not at all (the
//!   tearing of a write happens only at a crash).
//! - Faults on `create`, `open`, `remove`, `rename`, `list`, `sync_dir`, `len` and `set_len`;
//!   read errors other than latent sector errors (transient EIO); torn `set_len`; data
//!   written to one file, or read from one, landing in another.
//! - Page-cache eviction: reads always see the current bytes, never re-read the platter (so
//!   data dropped by an fsync error stays visible until a crash).
//! - Ordering between namespace operations at a crash (a journaling file system would apply a
//!   prefix; here each is applied or undone on its own), and any link between namespace and
//!   data durability beyond the inode a write belongs to.
//! - Disk capacity: out-of-space is only an injected fault.
//! - Damage at rest that grows with time rather than with reads; firmware bugs; whole-device
//!   loss.

pub mod blocking;
mod crash;
mod fault;
mod state;
#[cfg(test)]
mod tests;
mod trace;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crashpoint::vfs::{DirectoryLock, Vfs, VfsFile};

pub use crash::{
    missing_is_a_suffix, CrashConfig, CrashDecisions, CrashPoint, DataOp, DiskImage, InodeId,
    NamespaceOp, PendingOp, SectorFate, WriteFate,
};
pub use fault::{FailedSync, FaultConfig, FaultKind, FaultRecord};
pub use trace::TraceEvent;

use state::{Call, State};
pub use state::{FaultScope, Recorder, WriteWatch};

/// How a [`SimFs`] behaves: its faults, sector size and latency, and the seeds of its streams.
#[derive(Clone, Debug, PartialEq)]
pub struct FsConfig {
    pub faults: FaultConfig,
    /// Seeds the stream that decides injected faults.
    pub fault_seed: u64,
    /// Seeds the stream that draws latencies.
    pub latency_seed: u64,
    /// Keep every call as a [`TraceEvent`] (the digest is kept either way).
    pub record_trace: bool,
}

impl Default for FsConfig {
    /// No faults and no latency.
    fn default() -> Self {
        FsConfig {
            faults: FaultConfig::none(),
            fault_seed: 0,
            latency_seed: 0,
            record_trace: false,
        }
    }
}

impl FsConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.faults.validate()
    }

    /// The unit of torn writes, misdirected writes and bit rot.
    pub fn sector_size_bytes(&self) -> u64 {
        self.faults.sector_size_bytes
    }
}

/// The simulated disk. Clones share one disk.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
    /// An engine holds the directory ([`Vfs::lock`]).
    locked: Arc<AtomicBool>,
}

/// An open file of a [`SimFs`].
pub struct SimFile {
    state: Arc<Mutex<State>>,
    inode: InodeId,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits out one call's latency. The lock is taken only to draw it, never across the sleep.
async fn delay(state: &Mutex<State>) {
    let latency = lock(state).draw_latency();
    if !latency.is_zero() {
        madsim::time::sleep(latency).await;
    }
}

fn call(op: &'static str, file: String, offset: u64, len: u64) -> Call {
    Call {
        op,
        file,
        offset,
        len,
        crc: 0,
    }
}

fn nothing<T>(_: &T) -> u64 {
    0
}

impl SimFs {
    /// An empty disk.
    ///
    /// # Panics
    /// If `config` is invalid ([`FsConfig::validate`]).
    pub fn new(config: FsConfig) -> Self {
        if let Err(problem) = config.validate() {
            panic!("invalid fs config: {problem}");
        }
        SimFs {
            state: Arc::new(Mutex::new(State::new(config))),
            locked: Arc::default(),
        }
    }

    /// A disk holding `image`, every byte and name durable.
    ///
    /// # Panics
    /// If `config` is invalid ([`FsConfig::validate`]).
    pub fn from_image(image: DiskImage, config: FsConfig) -> Self {
        if let Err(problem) = config.validate() {
            panic!("invalid fs config: {problem}");
        }
        SimFs {
            state: Arc::new(Mutex::new(State::from_image(image, config))),
            locked: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Turns fault injection on or off (on at creation). While off, no fault is drawn.
    pub fn set_faults_enabled(&self, on: bool) {
        self.set_fault_scope(if on { FaultScope::All } else { FaultScope::Off });
    }

    /// Which faults the disk draws from now on.
    pub fn set_fault_scope(&self, scope: FaultScope) {
        self.lock().scope = scope;
    }

    pub fn faults_enabled(&self) -> bool {
        self.lock().scope != FaultScope::Off
    }

    /// Every fault injected so far (the first 2^20 of them).
    pub fn faults(&self) -> Vec<FaultRecord> {
        self.lock().faults.clone()
    }

    /// Every fsync that failed so far, with what it failed to make durable.
    pub fn failed_syncs(&self) -> Vec<FailedSync> {
        self.lock().failed_syncs.clone()
    }

    /// How many faults were injected, including any beyond the kept records.
    pub fn fault_count(&self) -> u64 {
        self.lock().fault_count
    }

    /// Calls made so far, failed ones included.
    pub fn io_count(&self) -> u64 {
        self.lock().io_count
    }

    /// Bytes the engine asked this disk to write, in every file.
    pub fn bytes_written(&self) -> u64 {
        self.lock().bytes_written
    }

    /// The running digest of every call and its result.
    pub fn trace_digest(&self) -> u64 {
        self.lock().digest()
    }

    /// The recorded calls since the last take (empty unless `record_trace`; the first 2^20).
    pub fn take_trace(&self) -> Vec<TraceEvent> {
        self.lock().take_trace()
    }

    /// Cuts the power: returns what was pending at this moment, and makes every later call on
    /// this disk and its files fail with "simulated crash". Crashing twice returns the first
    /// crash point.
    pub fn crash(&self) -> CrashPoint {
        self.lock().crash()
    }

    pub fn is_crashed(&self) -> bool {
        self.lock().crashed.is_some()
    }

    /// The crash point taken when the disk crashed, if it has.
    pub fn crashed_at(&self) -> Option<CrashPoint> {
        self.lock().crashed.clone()
    }

    /// Crashes the disk right after the `calls`-th call from now takes effect (at once if 0).
    /// Replaces any earlier arming.
    pub fn arm_crash_after_ops(&self, calls: u64) {
        let mut state = self.lock();
        if calls == 0 {
            state.crash();
        } else {
            state.crash_at_io = Some(state.io_count + calls);
        }
    }

    pub fn disarm_crash(&self) {
        self.lock().crash_at_io = None;
    }

    /// What a crash now would leave pending, without crashing. Cheap: byte images are shared.
    pub fn crash_point(&self) -> CrashPoint {
        self.lock().crash_point()
    }

    /// Installs (or removes) the callback that receives the crash point after every call made
    /// while recording is on.
    pub fn set_recorder(&self, recorder: Option<Recorder>) {
        self.lock().recorder = recorder;
    }

    /// Calls `watch` with every write that takes effect from now on.
    pub fn set_write_watch(&self, watch: Option<WriteWatch>) {
        self.lock().write_watch = watch;
    }

    /// Injects exactly the planned faults (call index -> kind) instead of drawing them at the
    /// configured rates; None goes back to the rates.
    pub fn set_fault_plan(&self, plan: Option<std::collections::BTreeMap<u64, FaultKind>>) {
        self.lock().fault_plan = plan;
    }

    /// Turns crash-point recording on or off (the driver records inside checkpoint windows).
    pub fn set_recording(&self, on: bool) {
        self.lock().recording = on;
    }

    /// The bytes that are durable now: what a crash losing everything unsynced leaves.
    pub fn durable_image(&self) -> DiskImage {
        self.lock().durable_image()
    }

    /// The bytes reads of `name` see now, for tests.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().file_bytes(name)
    }

    /// The names a `list` would return now, for the harness's checks: not a call on the disk
    /// (not counted, traced or faulted), so looking does not change the run.
    pub fn names(&self) -> Vec<String> {
        self.lock().list()
    }
}

/// Frees a [`SimFs`]'s directory when the engine's [`DirectoryLock`] drops.
struct SimLock(Arc<AtomicBool>);

impl Drop for SimLock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Vfs for SimFs {
    type File = SimFile;

    async fn lock(&self) -> io::Result<DirectoryLock> {
        if self.locked.swap(true, Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another engine holds the simulated disk",
            ));
        }
        Ok(DirectoryLock::new(SimLock(self.locked.clone())))
    }

    fn location(&self) -> String {
        "simulated disk".to_string()
    }

    async fn create(&self, name: &str) -> io::Result<SimFile> {
        delay(&self.state).await;
        self.create_now(name)
    }

    async fn open(&self, name: &str) -> io::Result<SimFile> {
        delay(&self.state).await;
        self.open_now(name)
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        delay(&self.state).await;
        self.remove_now(name)
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        delay(&self.state).await;
        self.rename_now(from, to)
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        delay(&self.state).await;
        self.list_now()
    }

    async fn sync_dir(&self) -> io::Result<()> {
        delay(&self.state).await;
        self.sync_dir_now()
    }
}

/// The calls themselves, taking effect at once: the async [`Vfs`] waits out a latency first,
/// the [`blocking`] adapter does not. Both share every fault, crash and trace through these.
impl SimFs {
    pub(crate) fn create_now(&self, name: &str) -> io::Result<SimFile> {
        let inode = self.lock().run(
            call("create", name.to_string(), 0, 0),
            |state, index, _| state.create(index, name),
            nothing,
        )?;
        Ok(SimFile {
            state: self.state.clone(),
            inode,
        })
    }

    pub(crate) fn open_now(&self, name: &str) -> io::Result<SimFile> {
        let inode = self.lock().run(
            call("open", name.to_string(), 0, 0),
            |state, _, _| state.open(name),
            nothing,
        )?;
        Ok(SimFile {
            state: self.state.clone(),
            inode,
        })
    }

    pub(crate) fn remove_now(&self, name: &str) -> io::Result<()> {
        self.lock().run(
            call("remove", name.to_string(), 0, 0),
            |state, index, _| state.remove(index, name),
            nothing,
        )
    }

    pub(crate) fn rename_now(&self, from: &str, to: &str) -> io::Result<()> {
        self.lock().run(
            call("rename", format!("{from} -> {to}"), 0, 0),
            |state, index, _| state.rename(index, from, to),
            nothing,
        )
    }

    pub(crate) fn list_now(&self) -> io::Result<Vec<String>> {
        self.lock().run(
            call("list", String::new(), 0, 0),
            |state, _, _| Ok(state.list()),
            |names| names.len() as u64,
        )
    }

    pub(crate) fn sync_dir_now(&self) -> io::Result<()> {
        self.lock().run(
            call("sync_dir", String::new(), 0, 0),
            |state, _, _| {
                state.sync_dir();
                Ok(())
            },
            nothing,
        )
    }
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn read_at_now(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let file = state.file_name(self.inode);
        state.run(
            call("read", file, offset, buf.len() as u64),
            |state, index, call| state.read(index, call, self.inode, offset, buf),
            |read| *read as u64,
        )
    }

    pub(crate) fn write_at_now(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.bytes_written += data.len() as u64;
        let file = state.file_name(self.inode);
        let call = Call {
            op: "write",
            file,
            offset,
            len: data.len() as u64,
            crc: crc32fast::hash(data),
        };
        state.run(
            call,
            |state, index, call| state.write(index, call, self.inode, offset, data),
            nothing,
        )
    }

    pub(crate) fn sync_now(&self) -> io::Result<()> {
        let mut state = self.lock();
        let file = state.file_name(self.inode);
        state.run(
            call("sync", file, 0, 0),
            |state, index, call| state.sync(index, call, self.inode),
            nothing,
        )
    }

    pub(crate) fn len_now(&self) -> io::Result<u64> {
        let mut state = self.lock();
        let file = state.file_name(self.inode);
        state.run(
            call("len", file, 0, 0),
            |state, _, _| Ok(state.len(self.inode)),
            |len| *len,
        )
    }

    pub(crate) fn set_len_now(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        let file = state.file_name(self.inode);
        state.run(
            call("set_len", file, len, 0),
            |state, index, _| {
                state.set_len(index, self.inode, len);
                Ok(())
            },
            nothing,
        )
    }
}

impl VfsFile for SimFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        delay(&self.state).await;
        self.read_at_now(offset, buf)
    }

    async fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        delay(&self.state).await;
        self.write_at_now(offset, data)
    }

    async fn sync(&self) -> io::Result<()> {
        delay(&self.state).await;
        self.sync_now()
    }

    async fn len(&self) -> io::Result<u64> {
        delay(&self.state).await;
        self.len_now()
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        delay(&self.state).await;
        self.set_len_now(len)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        self.lock().close(self.inode);
    }
}
