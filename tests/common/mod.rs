//! Helpers shared by the integration tests: small options, keys and values, the `BTreeMap`
//! reference model with a first-difference report, a yield future and a Vfs wrapper that
//! yields on file I/O and counts syncs.
//!
//! Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

pub mod failing_vfs;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crashpoint::vfs::mem::MemFile;
use crashpoint::vfs::DirectoryLock;
use crashpoint::{
    Engine, Error, ManualClock, MemVfs, NoopObserver, Observer, Options, Result, Structure,
    SyncMode, Vfs, VfsFile, Write,
};

/// The reference model: what the engine must hold.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Small pages, a small cache and small log segments, so that splits, evictions and segment
/// rolls happen within a few hundred commits.
pub fn small_options(sync_mode: SyncMode) -> Options {
    Options {
        page_size_bytes: 512,
        cache_pages: 8,
        log_segment_bytes: 4096,
        key_size_max: 64,
        value_size_max: 256,
        sync_mode,
        ..Options::default()
    }
}

pub fn key(index: u32) -> Vec<u8> {
    format!("key{index:04}").into_bytes()
}

/// A value of exactly `len` bytes (possibly empty) whose content depends on `seed`.
pub fn value(seed: u64, len: usize) -> Vec<u8> {
    let text = format!("v{seed}-");
    text.bytes().cycle().take(len).collect()
}

/// Applies one commit's writes to the model, in order (a later write to a key wins).
pub fn apply(model: &mut Model, writes: &[Write]) {
    for write in writes {
        match &write.value {
            Some(value) => {
                model.insert(write.key.clone(), value.clone());
            }
            None => {
                model.remove(&write.key);
            }
        }
    }
}

/// The model's entries in `[start, end)`, at most `limit`, as `Engine::scan` returns them.
pub fn model_scan(
    model: &Model,
    start: &[u8],
    end: Bound<&[u8]>,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter(|(key, _)| key.as_slice() >= start)
        .take_while(|(key, _)| match end {
            Bound::Excluded(end) => key.as_slice() < end,
            Bound::Included(end) => key.as_slice() <= end,
            Bound::Unbounded => true,
        })
        .take(limit)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 24 {
        format!("{:?}..({} bytes)", &text[..24], bytes.len())
    } else {
        format!("{text:?}")
    }
}

/// The first difference between what the engine returned and the model, as
/// "key K: expected E, found F"; None when they agree.
pub fn first_difference(
    found: &[(Vec<u8>, Vec<u8>)],
    expected: &[(Vec<u8>, Vec<u8>)],
) -> Option<String> {
    let found_map: BTreeMap<&[u8], &[u8]> = found
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect();
    let expected_map: BTreeMap<&[u8], &[u8]> = expected
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect();
    if found_map.len() != found.len() {
        return Some(format!(
            "the engine returned duplicate keys ({} entries, {} distinct)",
            found.len(),
            found_map.len()
        ));
    }
    let keys: std::collections::BTreeSet<&[u8]> = found_map
        .keys()
        .chain(expected_map.keys())
        .copied()
        .collect();
    for key in keys {
        let (expected, found) = (expected_map.get(key), found_map.get(key));
        if expected != found {
            return Some(format!(
                "key {}: expected {}, found {}",
                show(key),
                expected.map_or("nothing".to_string(), |value| show(value)),
                found.map_or("nothing".to_string(), |value| show(value)),
            ));
        }
    }
    let found_keys: Vec<&Vec<u8>> = found.iter().map(|(key, _)| key).collect();
    let expected_keys: Vec<&Vec<u8>> = expected.iter().map(|(key, _)| key).collect();
    if found_keys != expected_keys {
        return Some("the engine returned the right entries in the wrong order".to_string());
    }
    None
}

/// Panics with the first difference between the engine's full contents and the model.
pub fn assert_same(found: &[(Vec<u8>, Vec<u8>)], model: &Model, context: &str) {
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(difference) = first_difference(found, &expected) {
        panic!("{context}: {difference}");
    }
}

/// Opens (or creates) a database on `vfs` with a fresh manual clock and no observer.
pub async fn open_on<V: Vfs>(vfs: V, options: &Options) -> Result<Engine<V, ManualClock>> {
    open_observed(vfs, options, Arc::new(NoopObserver)).await
}

/// The file, offset and detail of `error`, which must be corruption of `structure`; a panic
/// names the error that came instead.
pub fn corruption_of(error: &Error, structure: Structure) -> (&str, u64, &str) {
    match error {
        Error::Corruption {
            file,
            offset,
            structure: found,
            detail,
        } if *found == structure => (file, *offset, detail),
        _ => panic!("expected corruption of {structure}, got {error}"),
    }
}

/// Opens with an observer.
pub async fn open_observed<V: Vfs>(
    vfs: V,
    options: &Options,
    observer: Arc<dyn Observer>,
) -> Result<Engine<V, ManualClock>> {
    Engine::open(vfs, ManualClock::new(), options.clone(), observer).await
}

/// A future that returns Pending once (waking itself), so a single-threaded executor runs the
/// other futures of a join before this one goes on.
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// A MemVfs wrapper that counts file syncs (by file kind) and, if `yield_io` is set, yields
/// once before every file read, write and sync, so concurrent engine calls interleave at I/O
/// points under a single-threaded executor as they would on a real disk.
#[derive(Clone, Debug)]
pub struct YieldingVfs {
    pub inner: MemVfs,
    pub yield_io: bool,
    pub log_syncs: Arc<AtomicU64>,
    pub data_syncs: Arc<AtomicU64>,
}

impl YieldingVfs {
    pub fn new(inner: MemVfs, yield_io: bool) -> Self {
        Self {
            inner,
            yield_io,
            log_syncs: Arc::new(AtomicU64::new(0)),
            data_syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    fn wrap(&self, name: &str, inner: MemFile) -> YieldingFile {
        let syncs = if name.starts_with("log-") {
            self.log_syncs.clone()
        } else {
            self.data_syncs.clone()
        };
        YieldingFile {
            inner,
            yield_io: self.yield_io,
            syncs,
        }
    }
}

#[derive(Debug)]
pub struct YieldingFile {
    inner: MemFile,
    yield_io: bool,
    syncs: Arc<AtomicU64>,
}

impl YieldingFile {
    async fn maybe_yield(&self) {
        if self.yield_io {
            yield_now().await;
        }
    }
}

impl Vfs for YieldingVfs {
    type File = YieldingFile;

    async fn lock(&self) -> io::Result<DirectoryLock> {
        self.inner.lock().await
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    async fn create(&self, name: &str) -> io::Result<YieldingFile> {
        let file = self.inner.create(name).await?;
        Ok(self.wrap(name, file))
    }

    async fn open(&self, name: &str) -> io::Result<YieldingFile> {
        let file = self.inner.open(name).await?;
        Ok(self.wrap(name, file))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name).await
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to).await
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list().await
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir().await
    }
}

impl VfsFile for YieldingFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.maybe_yield().await;
        self.inner.read_at(offset, buf).await
    }

    async fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.maybe_yield().await;
        self.inner.write_at(offset, data).await
    }

    async fn sync(&self) -> io::Result<()> {
        self.maybe_yield().await;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync().await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
    }
}

/// Names of the log segment files in `vfs`, ascending by start LSN, with their starts.
pub async fn log_segments(vfs: &MemVfs) -> Vec<(u64, String)> {
    let mut segments: Vec<(u64, String)> = vfs
        .list()
        .await
        .expect("MemVfs lists")
        .into_iter()
        .filter_map(|name| crashpoint::log::parse_segment_name(&name).map(|start| (start, name)))
        .collect();
    segments.sort();
    segments
}

/// A new MemVfs holding durable copies of every file in `vfs`, with `edit` applied to each
/// file's bytes (it may shorten them, which `MemVfs::poke` cannot).
pub async fn copy_vfs(vfs: &MemVfs, edit: impl Fn(&str, &mut Vec<u8>)) -> MemVfs {
    let copy = MemVfs::new();
    for name in vfs.list().await.expect("MemVfs lists") {
        let mut bytes = vfs.contents(&name).expect("listed file exists");
        edit(&name, &mut bytes);
        let file = copy.create(&name).await.expect("MemVfs creates");
        file.write_at(0, &bytes).await.expect("MemVfs writes");
        file.sync().await.expect("MemVfs syncs");
    }
    copy.sync_dir().await.expect("MemVfs syncs the directory");
    copy
}

/// Every file in `vfs` with its bytes, to show that an open changed nothing on disk.
pub async fn snapshot<V: Vfs>(vfs: &V) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for name in vfs.list().await.expect("the directory lists") {
        let file = vfs.open(&name).await.expect("a listed file opens");
        let bytes = crashpoint::vfs::read_all(&file)
            .await
            .expect("a listed file reads");
        files.insert(name, bytes);
    }
    files
}

/// Commits `count` single-key transactions of about 200 bytes each, synced, from `first` on;
/// returns them applied to `model`.
pub async fn commit_many<V: Vfs, C: crashpoint::Clock>(
    engine: &Engine<V, C>,
    first: u32,
    count: u32,
    model: &mut Model,
) {
    for index in first..first + count {
        let writes = vec![Write::put(key(index % 500), value(u64::from(index), 200))];
        engine.commit(writes.clone()).await.expect("commit");
        apply(model, &writes);
    }
}

/// Tears the writes that turned `old` into `data`, as a crash would: each run of 512-byte
/// sectors that differs (and that `keep` does not protect) lands only its first `landed(run)`
/// sectors; the rest read as before (zeros past the old end). Returns the runs' lengths.
pub fn tear_changed_runs(
    old: &[u8],
    data: &mut [u8],
    keep: impl Fn(u64) -> bool,
    landed: impl Fn(usize) -> usize,
) -> Vec<usize> {
    const SECTOR: usize = 512;
    let len = data.len();
    let sectors = len.div_ceil(SECTOR);
    let range = move |sector: usize| sector * SECTOR..((sector + 1) * SECTOR).min(len);
    let changed = |sector: usize| {
        !keep((sector * SECTOR) as u64) && old.get(range(sector)) != Some(&data[range(sector)])
    };
    let mut runs = Vec::new();
    let mut sector = 0;
    while sector < sectors {
        let start = sector;
        while sector < sectors && changed(sector) {
            sector += 1;
        }
        if sector > start {
            runs.push(start..sector);
        } else {
            sector += 1;
        }
    }
    for run in &runs {
        for sector in run.start + landed(run.len()).min(run.len())..run.end {
            let range = range(sector);
            match old.get(range.clone()) {
                Some(bytes) => data[range].copy_from_slice(bytes),
                None => data[range].fill(0),
            }
        }
    }
    runs.iter().map(|run| run.len()).collect()
}

/// Options for tests that crash and tear in-place pages under `strategy`: pages that hold the
/// tests' 150-byte values, a cache of 8 pages (so commits evict and write pages before a
/// checkpoint) and one log segment for the whole test.
pub fn in_place_options(strategy: crashpoint::Strategy) -> Options {
    Options {
        strategy,
        cache_pages: 8,
        page_size_bytes: 1024,
        log_segment_bytes: 1 << 20,
        ..small_options(SyncMode::Instant)
    }
}

/// Commits each of `keys` alone, with a 150-byte value of `round`, into `engine` and `model`;
/// returns the commits' LSNs (each durable).
pub async fn commit_keys<V: Vfs, C: crashpoint::Clock>(
    engine: &Engine<V, C>,
    model: &mut Model,
    round: u64,
    keys: impl Iterator<Item = u32>,
) -> Vec<crashpoint::Lsn> {
    let mut lsns = Vec::new();
    for index in keys {
        let writes = vec![Write::put(
            key(index),
            value(round * 1000 + u64::from(index), 150),
        )];
        let info = engine.commit(writes.clone()).await.expect("commit");
        assert!(info.durable, "a commit under SyncMode::Instant is durable");
        apply(model, &writes);
        lsns.push(info.lsn);
    }
    lsns
}

/// An observer that records every finished checkpoint's trigger.
#[derive(Default)]
pub struct TriggerLog(std::sync::Mutex<Vec<crashpoint::Trigger>>);

impl TriggerLog {
    pub fn triggers(&self) -> Vec<crashpoint::Trigger> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl Observer for TriggerLog {
    fn checkpoint_finished(
        &self,
        _count: u64,
        trigger: crashpoint::Trigger,
        _measures: &crashpoint::CheckpointMeasures,
    ) {
        self.0.lock().expect("not poisoned").push(trigger);
    }
}
