//! Checking one crash state: build its image from the recorded crash point (no workload is
//! re-run), boot a fresh disk on it, recover and hold the result against the model with the
//! same oracle as `run`. Verdicts are cached by what decides them: an identical image checked
//! against the same model prefix, or an image equal to an earlier one in every byte that
//! earlier recovery read ([`Footprint`]), costs no recovery.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use crashpoint::Options;

use crate::driver::SeedRun;
use crate::fs::{
    CrashDecisions, CrashPoint, DiskImage, FaultConfig, FaultRecord, FsConfig, SimFs, TraceEvent,
};
use crate::hub::{AnchorWrite, Hub, RecordedPoint};
use crate::model::Model;
use crate::oracle::{self, CrashFacts, Verdict};
use crate::outcome::{Failure, FailureKind};
use crate::subjects::explore::SubjectRecovery;

/// What the oracle needs about one crash point besides the image.
pub struct PointFacts {
    pub phase: u32,
    /// The model history when the point was recorded, and which commits were acknowledged.
    pub model: Model,
    /// Faults so far that damage durable data: those of earlier phases, and those of this
    /// phase up to the point's I/O call.
    pub damage: Vec<FaultRecord>,
    /// Every other fault of this phase up to the point's I/O call (a lying fsync): a subject's
    /// promise may name them as breaking its assumptions, as the subject driver's does.
    pub phase_faults: Vec<FaultRecord>,
    /// Every anchor write issued up to the point (the hub sees a write as it takes effect, so
    /// one in the point's unsynced writes is already here).
    pub anchor_writes: Vec<AnchorWrite>,
    /// The files anchors live in, as truly durable at the point: a state makes a checkpoint
    /// durable only if its anchor is intact here and in the state's own image.
    durable_anchors: DiskImage,
    pub anchor_written_max: u64,
    /// The chunk hashes of the point's durable files, which most of a state's bytes equal.
    base: BTreeMap<String, (Arc<Vec<u8>>, Vec<u128>)>,
}

impl PointFacts {
    pub fn of(run: &SeedRun, point: &RecordedPoint) -> PointFacts {
        let history = &run.phase_models[point.phase as usize];
        let model = history.truncated(point.commits, point.acknowledged_durable.clone());
        let damage = run
            .faults
            .iter()
            .filter(|(phase, fault)| {
                fault.explains_reads()
                    && (*phase < point.phase
                        || (*phase == point.phase && fault.index <= point.io_index))
            })
            .map(|(_, fault)| fault.clone())
            .collect();
        let mut facts = PointFacts::new(
            point.phase,
            model,
            damage,
            &point.crash_point,
            point.anchor_writes.clone(),
        );
        facts.phase_faults = run
            .faults
            .iter()
            .filter(|(phase, fault)| {
                *phase == point.phase && fault.index <= point.io_index && !fault.explains_reads()
            })
            .map(|(_, fault)| fault.clone())
            .collect();
        facts
    }

    /// The facts of a crash at `crash_point`, with the model history and damage as they stood
    /// then and every anchor write issued until then.
    pub fn new(
        phase: u32,
        model: Model,
        damage: Vec<FaultRecord>,
        crash_point: &CrashPoint,
        anchor_writes: Vec<AnchorWrite>,
    ) -> PointFacts {
        let anchor_files: BTreeSet<&str> = anchor_writes
            .iter()
            .map(|write| write.file.as_str())
            .collect();
        let durable_anchors = durable_files(crash_point, &anchor_files);
        let base = crash_point
            .files
            .iter()
            .map(|(name, bytes)| (name.clone(), (bytes.clone(), chunk_hashes(bytes, None))))
            .collect();
        PointFacts {
            phase,
            model,
            damage,
            phase_faults: Vec::new(),
            base,
            anchor_written_max: anchor_writes
                .iter()
                .map(|write| write.checkpoint)
                .max()
                .unwrap_or(0),
            anchor_writes,
            durable_anchors,
        }
    }

    /// What the oracle judges a recovery of this point with, given the checkpoint the state's
    /// image makes durable. Which forced checkpoint requests had resolved by a state is not
    /// recorded, so none is held against it.
    pub fn crash_facts(&self, durable_checkpoint: Option<u64>) -> CrashFacts<'_> {
        CrashFacts {
            crash_index: Some(self.phase),
            damage: &self.damage,
            durable_checkpoint,
            anchor_written_max: self.anchor_written_max,
            forced_durable: 0,
            anchor_faults: &[],
        }
    }

    /// The newest checkpoint `image` makes durable ([`oracle::durable_checkpoint`]).
    pub fn durable_checkpoint(&self, image: &DiskImage) -> Option<u64> {
        oracle::durable_checkpoint(&self.anchor_writes, &[&self.durable_anchors, image])
    }
}

/// The named files alone, as truly durable at `point`: enough to check anchors without copying
/// the log.
fn durable_files(point: &CrashPoint, names: &BTreeSet<&str>) -> DiskImage {
    let keep = |name: &String| names.contains(name.as_str());
    let durable = CrashPoint {
        files: point
            .files
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, bytes)| (name.clone(), bytes.clone()))
            .collect(),
        pending: Vec::new(),
        namespace: Vec::new(),
        sector_size_bytes: point.sector_size_bytes,
        durable_names: point
            .durable_names
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, inode)| (name.clone(), *inode))
            .collect(),
        inodes: point.inodes.clone(),
        unreadable: BTreeMap::new(),
    };
    let decisions = durable.all_survive();
    durable.materialize(&decisions).0
}

/// How one state's check ended.
#[derive(Clone, Debug)]
pub enum StateVerdict {
    /// Recovered, and the state equals the model.
    Passed,
    /// Recovery found corruption that injected damage explains.
    Excused(String),
    Failed(Failure),
}

/// Everything besides the image's bytes that a verdict depends on: the model prefix and the
/// facts that excuse or convict, and the image's names and file lengths (what `list`, `open`
/// and `len` return).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FactsKey {
    phase: u32,
    commits: usize,
    acknowledged: usize,
    damage: usize,
    phase_faults: usize,
    durable_checkpoint: Option<u64>,
    anchor_written_max: u64,
    layout: u128,
}

/// The bytes one recovery read, per file, and the verdicts of the images that agreed on them.
///
/// Recovery and the oracle are deterministic given what the disk returns (no latency, no
/// faults, no randomness, the same model), so an image that holds the same bytes in every
/// range an earlier recovery read, with the same names and lengths, takes the same path to the
/// same verdict. Unsynced page writes to blocks no durable translation references are the
/// common case: whether they landed, recovery never looks.
struct Footprint {
    /// Sorted by name; per file, sorted disjoint `[start, end)` ranges of [`CHUNK_BYTES`]
    /// chunks (whole chunks are compared: more than recovery read, never less).
    ranges: ReadChunks,
    verdicts: BTreeMap<u128, StateVerdict>,
}

/// Per file name (sorted), sorted disjoint `[start, end)` ranges of chunk indices.
type ReadChunks = Vec<(String, Vec<(u64, u64)>)>;

/// Footprints kept per facts key, most recently useful first; a scan past them recovers.
const FOOTPRINTS_PER_KEY_MAX: usize = 8;

/// Recovers states and remembers verdicts. One per exploration; used inside one runtime.
pub struct Checker {
    pub(super) options: Options,
    /// Recover this subject instead of the engine (a scenario's `subject`, not crashpoint).
    pub(super) subject: Option<SubjectRecovery>,
    /// Torn sectors may hold garbage (the scenario's `crash.garbage`).
    pub(super) garbage: bool,
    pub(super) fs_config: FsConfig,
    /// Exact images: (facts, image) -> verdict.
    verdicts: HashMap<(FactsKey, u128), StateVerdict>,
    footprints: HashMap<FactsKey, Vec<Footprint>>,
    /// Distinct (image, phase, commits, acknowledged count) keys.
    distinct: HashSet<(u128, u32, usize, usize)>,
    pub recoveries: u64,
    /// What the last recovery that passed ended with (see [`Outcome`]).
    last_outcome: Cell<Option<Outcome>>,
}

/// How a passing recovery came out, as far as choosing states to continue goes: the
/// checkpoint it used, where the log ended, and whether it cut a tail off. States that recover
/// to an outcome few others do are continued first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Outcome {
    pub checkpoint: u64,
    pub log_end: u64,
    pub cut_tail: bool,
}

/// One state's result.
pub struct Checked {
    pub verdict: StateVerdict,
    /// A recovery ran (the verdict was not known from an equivalent earlier state).
    pub recovered: bool,
}

impl Checker {
    /// `sector_size_bytes` is the scenario's; the disk a state boots on has no latency (no
    /// simulated time passes), no faults (the damage is already in the image) and keeps its
    /// trace (the footprint).
    pub fn new(options: Options, sector_size_bytes: u64) -> Checker {
        install_quiet_panic_hook();
        Checker {
            options,
            subject: None,
            garbage: true,
            fs_config: FsConfig {
                faults: FaultConfig {
                    sector_size_bytes,
                    ..FaultConfig::none()
                },
                record_trace: true,
                ..FsConfig::default()
            },
            verdicts: HashMap::new(),
            footprints: HashMap::new(),
            distinct: HashSet::new(),
            recoveries: 0,
            last_outcome: Cell::new(None),
        }
    }

    /// The outcome of the last recovery that passed since the last call.
    pub fn take_outcome(&self) -> Option<Outcome> {
        self.last_outcome.take()
    }

    pub fn distinct_states(&self) -> u64 {
        self.distinct.len() as u64
    }

    /// Builds the state `decisions` leave at `point`, and recovers it unless an equivalent
    /// state was: the same image, or the same bytes wherever an earlier recovery read.
    pub async fn check(
        &mut self,
        point: &CrashPoint,
        facts: &PointFacts,
        decisions: &CrashDecisions,
    ) -> Checked {
        let (image, _crash_faults) = point.materialize(decisions);
        let durable_checkpoint = facts.durable_checkpoint(&image);
        let hashes = ImageHashes::of(&image, &facts.base);
        let image_key = hashes.image_key();
        let commits = facts.model.commits.len();
        let acknowledged = facts.model.acknowledged_durable.len();
        self.distinct
            .insert((image_key, facts.phase, commits, acknowledged));
        let facts_key = FactsKey {
            phase: facts.phase,
            commits,
            acknowledged,
            damage: facts.damage.len(),
            phase_faults: facts.phase_faults.len(),
            durable_checkpoint,
            anchor_written_max: facts.anchor_written_max,
            layout: hashes.layout_key(),
        };
        let exact = (facts_key.clone(), image_key);
        if let Some(verdict) = self.verdicts.get(&exact) {
            return Checked {
                verdict: verdict.clone(),
                recovered: false,
            };
        }
        if let Some(verdict) = self.known_footprint(&facts_key, &hashes) {
            self.verdicts.insert(exact, verdict.clone());
            return Checked {
                verdict,
                recovered: false,
            };
        }
        let (verdict, read) = self.recover(image, facts, durable_checkpoint).await;
        self.recoveries += 1;
        self.verdicts.insert(exact, verdict.clone());
        if let Some(ranges) = read {
            self.remember_footprint(facts_key, ranges, &hashes, verdict.clone());
        }
        Checked {
            verdict,
            recovered: true,
        }
    }

    /// The verdict of an earlier recovery that read the same bytes `image` holds.
    fn known_footprint(
        &mut self,
        facts_key: &FactsKey,
        hashes: &ImageHashes,
    ) -> Option<StateVerdict> {
        let footprints = self.footprints.get_mut(facts_key)?;
        let position = footprints.iter().position(|footprint| {
            footprint
                .verdicts
                .contains_key(&hashes.ranges_key(&footprint.ranges))
        })?;
        let footprint = footprints.remove(position);
        let verdict = footprint.verdicts[&hashes.ranges_key(&footprint.ranges)].clone();
        footprints.insert(0, footprint);
        Some(verdict)
    }

    fn remember_footprint(
        &mut self,
        facts_key: FactsKey,
        ranges: ReadChunks,
        hashes: &ImageHashes,
        verdict: StateVerdict,
    ) {
        let key = hashes.ranges_key(&ranges);
        let footprints = self.footprints.entry(facts_key).or_default();
        let position = match footprints
            .iter()
            .position(|footprint| footprint.ranges == ranges)
        {
            Some(position) => position,
            None => {
                footprints.truncate(FOOTPRINTS_PER_KEY_MAX - 1);
                footprints.push(Footprint {
                    ranges,
                    verdicts: BTreeMap::new(),
                });
                footprints.len() - 1
            }
        };
        let mut footprint = footprints.remove(position);
        footprint.verdicts.insert(key, verdict);
        footprints.insert(0, footprint);
    }

    /// Recovers `image` with a fresh hub holding the point's model; a panic is a failure.
    /// Also returns the ranges of the image the recovery read, unless it read bytes this
    /// cannot attribute to the image's names (a rename, or a read through an unlinked file).
    pub async fn recover(
        &self,
        image: DiskImage,
        facts: &PointFacts,
        durable_checkpoint: Option<u64>,
    ) -> (StateVerdict, Option<ReadChunks>) {
        // Ordered collections inside the runtime: madsim makes std's hash seeds its own there.
        let names: BTreeSet<String> = image.files.keys().cloned().collect();
        let fs = SimFs::from_image(image, self.fs_config.clone());
        fs.set_faults_enabled(false);
        if let Some(subject) = &self.subject {
            let faults: Vec<FaultRecord> = facts
                .damage
                .iter()
                .chain(&facts.phase_faults)
                .cloned()
                .collect();
            let recovered = CatchUnwind(Box::pin(subject.recover(
                fs.clone(),
                facts.phase,
                &facts.model,
                &faults,
            )))
            .await;
            let verdict =
                recovered.unwrap_or_else(|message| subject.panicked(facts.phase, &faults, message));
            return (verdict, read_ranges(&fs.take_trace(), &names));
        }
        let hub = Hub::default();
        hub.lock().model = facts.model.clone();
        let crash_facts = facts.crash_facts(durable_checkpoint);
        let checked = CatchUnwind(Box::pin(oracle::recover_and_check(
            fs.clone(),
            self.options.clone(),
            &hub,
            &crash_facts,
        )))
        .await;
        let verdict = match checked {
            Ok(Ok(Verdict::Recovered { report, .. })) => {
                self.last_outcome.set(Some(Outcome {
                    checkpoint: report.checkpoint_count,
                    log_end: report.log_end.0,
                    cut_tail: report.discarded_log_bytes > 0,
                }));
                StateVerdict::Passed
            }
            Ok(Ok(Verdict::ExcusedCorruption { message })) => StateVerdict::Excused(message),
            Ok(Err(failure)) => StateVerdict::Failed(failure),
            Err(message) => StateVerdict::Failed(Failure {
                kind: FailureKind::Panic,
                crash_index: Some(facts.phase),
                message,
            }),
        };
        (verdict, read_ranges(&fs.take_trace(), &names))
    }
}

/// The chunks a trace read, per file, merged; None if a read or rename escapes the names.
fn read_ranges(trace: &[TraceEvent], names: &BTreeSet<String>) -> Option<ReadChunks> {
    let mut ranges: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for event in trace {
        match event.op {
            "rename" => return None,
            "read" if event.len > 0 => {
                if !names.contains(&event.file) {
                    return None;
                }
                let end = event.offset + event.len;
                ranges
                    .entry(event.file.clone())
                    .or_default()
                    .push((event.offset / CHUNK_BYTES, end.div_ceil(CHUNK_BYTES)));
            }
            _ => {}
        }
    }
    for file_ranges in ranges.values_mut() {
        file_ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(file_ranges.len());
        for &(start, end) in file_ranges.iter() {
            match merged.last_mut() {
                Some((_, last_end)) if start <= *last_end => *last_end = (*last_end).max(end),
                _ => merged.push((start, end)),
            }
        }
        *file_ranges = merged;
    }
    Some(ranges.into_iter().collect())
}

/// The unit in which images are hashed and footprints compared: the sector size of most
/// scenarios.
const CHUNK_BYTES: u64 = 512;

/// An image as names, lengths and one hash per [`CHUNK_BYTES`] chunk. A chunk equal to the
/// same chunk of the point's durable file of that name reuses its hash, so only the chunks the
/// crash state changed are hashed.
struct ImageHashes {
    /// In name order, as the image's map.
    files: Vec<(String, u64, Vec<u128>)>,
    /// The image's unreadable sectors, in name order.
    unreadable: Vec<(String, Vec<u64>)>,
}

impl ImageHashes {
    fn of(image: &DiskImage, base: &BTreeMap<String, (Arc<Vec<u8>>, Vec<u128>)>) -> Self {
        let files = image
            .files
            .iter()
            .map(|(name, bytes)| {
                let base = base
                    .get(name)
                    .map(|(bytes, hashes)| (bytes.as_slice(), hashes.as_slice()));
                (name.clone(), bytes.len() as u64, chunk_hashes(bytes, base))
            })
            .collect();
        let unreadable = image
            .unreadable
            .iter()
            .map(|(name, sectors)| (name.clone(), sectors.iter().copied().collect()))
            .collect();
        ImageHashes { files, unreadable }
    }

    /// Names and every byte.
    fn image_key(&self) -> u128 {
        let mut hasher = FastHasher::new();
        hasher.word(self.files.len() as u64);
        for (name, len, chunks) in &self.files {
            hasher.bytes(name.as_bytes());
            hasher.word(*len);
            for &chunk in chunks {
                hasher.wide(chunk);
            }
        }
        hasher.finish()
    }

    /// Names, file lengths and unreadable sectors (a read that fails reads no bytes, so the
    /// footprint of a recovery cannot see them).
    fn layout_key(&self) -> u128 {
        let mut hasher = FastHasher::new();
        for (name, len, _) in &self.files {
            hasher.bytes(name.as_bytes());
            hasher.word(*len);
        }
        for (name, sectors) in &self.unreadable {
            hasher.bytes(name.as_bytes());
            for &sector in sectors {
                hasher.word(sector);
            }
        }
        hasher.finish()
    }

    /// The chunks inside `ranges` (chunk indices per file; past a file's end there are none).
    fn ranges_key(&self, ranges: &ReadChunks) -> u128 {
        let mut hasher = FastHasher::new();
        for (name, file_ranges) in ranges {
            hasher.bytes(name.as_bytes());
            let Ok(found) = self
                .files
                .binary_search_by(|(file, _, _)| file.as_str().cmp(name))
            else {
                hasher.word(u64::MAX);
                continue;
            };
            let chunks = &self.files[found].2;
            for &(start, end) in file_ranges {
                let start = (start as usize).min(chunks.len());
                let end = (end as usize).min(chunks.len());
                hasher.word(start as u64);
                for &chunk in &chunks[start..end] {
                    hasher.wide(chunk);
                }
            }
        }
        hasher.finish()
    }
}

/// One hash per chunk of `bytes`; a chunk equal (in length and bytes) to the same chunk of
/// `base` takes its hash from `base`'s hashes.
fn chunk_hashes(bytes: &[u8], base: Option<(&[u8], &[u128])>) -> Vec<u128> {
    let size = CHUNK_BYTES as usize;
    bytes
        .chunks(size)
        .enumerate()
        .map(|(index, chunk)| {
            if let Some((base_bytes, base_hashes)) = base {
                let start = index * size;
                let base_chunk = base_bytes.get(start..(start + size).min(base_bytes.len()));
                if base_chunk == Some(chunk) {
                    return base_hashes[index];
                }
            }
            let mut hasher = FastHasher::new();
            hasher.bytes(chunk);
            hasher.finish()
        })
        .collect()
}

/// A two-lane multiply-rotate hash, eight bytes a step: many times faster than the stable
/// byte-at-a-time FNV of [`DiskImage::digest`], and good enough to tell apart the images of
/// one exploration (it is not stable across releases, and need not be).
struct FastHasher {
    lanes: [u64; 2],
}

impl FastHasher {
    fn new() -> Self {
        FastHasher {
            lanes: [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344],
        }
    }

    fn word(&mut self, word: u64) {
        let [first, second] = &mut self.lanes;
        *first = (*first ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
        *second = second
            .wrapping_add(word)
            .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            .rotate_left(31);
    }

    fn wide(&mut self, value: u128) {
        self.word(value as u64);
        self.word((value >> 64) as u64);
    }

    /// Length-prefixed, so that ("ab", "c") and ("a", "bc") hash apart.
    fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn finish(&self) -> u128 {
        let [first, second] = self.lanes;
        let mix = |value: u64| {
            let value = (value ^ (value >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            let value = (value ^ (value >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            value ^ (value >> 33)
        };
        (u128::from(mix(first ^ second.rotate_left(17))) << 64) | u128::from(mix(second))
    }
}

thread_local! {
    /// Set while a recovery runs under [`CatchUnwind`]: its panic is a reported failure, so
    /// the default hook's message on stderr would only repeat it.
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that stays silent on threads inside
/// [`CatchUnwind`] and defers to the previous hook everywhere else (test failures included).
fn install_quiet_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Polls a future, turning a panic into `Err(message)` so one bad state does not end the
/// exploration (the engine spawns nothing, so the panic cannot leave a task behind).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        QUIET_PANICS.with(|quiet| quiet.set(true));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(context)));
        QUIET_PANICS.with(|quiet| quiet.set(false));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    }
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_else(|| "panic with a non-text payload".to_string())
}
