//! The `recover_image` target: a database directory (the data file and up to three log
//! segments) that recovery must open with `Ok` or a typed [`crashpoint::Error`], never a panic,
//! a hang or an unbounded allocation.
//!
//! An input is either a damaged template or raw bytes. The templates are small real databases,
//! built once per process on a [`MemVfs`] with a few commits and checkpoints; arbitrary flips,
//! truncations, zeroed ranges, appends, removals and renames then damage their files. Damage
//! reaches deep into recovery (every checksum in an undamaged region still verifies), while
//! raw bytes exercise the first checks. The oracle is the simulator's model
//! ([`crashpoint_sim::model`]): an undamaged template must recover to exactly the state its
//! commits built, and any image that recovers must survive a commit, a clean close and a
//! reopen with its recovered state plus that commit.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use crashpoint::log::{parse_segment_name, segment_name};
use crashpoint::{
    Engine, ManualClock, MemVfs, NoopObserver, Options, Strategy, Vfs, VfsFile, Write,
};
use crashpoint_sim::model::{self, State};
use futures::executor::block_on;

use crate::bounded::{Bounded, BoundedBytes, BoundedVec};

/// The engine's data file name (`crashpoint`'s `cachetable::DATA_FILE`, which is private).
pub const DATA_FILE: &str = "data";
/// The largest data file an input can produce.
pub const DATA_FILE_BYTES_MAX: u64 = 64 << 10;
/// The largest log segment an input can produce: twice `log_segment_bytes`, since a segment
/// may hold one record past its nominal size.
pub const SEGMENT_BYTES_MAX: u64 = 16 << 10;
/// The most log segments a raw image holds.
pub const SEGMENTS_MAX: u64 = 3;
/// The number of template database shapes; each is built under every strategy.
pub const SHAPES: usize = 4;
/// The number of template databases: every shape under every strategy, shape-major within a
/// strategy.
pub const TEMPLATES: usize = SHAPES * Strategy::ALL.len();

/// The small options every image of `strategy` is built and recovered with (values stay below
/// half a page, so the in-place strategies take them too).
pub fn options(strategy: Strategy) -> Options {
    Options {
        strategy,
        page_size_bytes: 512,
        key_size_max: 64,
        value_size_max: 128,
        cache_pages: 16,
        log_segment_bytes: 8192,
        log_sector_bytes: 512,
        ..Options::default()
    }
}

/// One fuzz input: which files the database directory holds.
#[derive(Arbitrary, Debug)]
pub enum Image {
    /// A template database with up to eight kinds of damage applied in order. An empty input
    /// is template 0, undamaged.
    Damaged {
        template: Bounded<0, { TEMPLATES as u64 - 1 }>,
        damage: BoundedVec<Damage, 8>,
    },
    /// A data file and log segments of arbitrary bytes, opened with a strategy (an index into
    /// `Strategy::ALL`).
    Raw {
        strategy: Bounded<0, 2>,
        data: BoundedBytes<DATA_FILE_BYTES_MAX>,
        segments: BoundedVec<RawSegment, SEGMENTS_MAX>,
    },
}

/// Damage to one file of a template, chosen by index modulo the files it has left.
#[derive(Arbitrary, Debug)]
pub struct Damage {
    pub file: Bounded<0, 7>,
    pub kind: DamageKind,
}

#[derive(Arbitrary, Debug)]
pub enum DamageKind {
    /// XOR one byte (offset modulo the file's length) with a nonzero mask: a flipped bit or a
    /// rotted byte.
    Flip {
        offset: Bounded<0, 65_535>,
        mask: Bounded<1, 255>,
    },
    /// Cut the file to `len` modulo its length plus one: a torn or lost tail.
    Truncate { len: Bounded<0, 65_535> },
    /// Zero a range: an unwritten or trimmed sector.
    Zero {
        offset: Bounded<0, 65_535>,
        len: Bounded<1, 4096>,
    },
    /// Append bytes: garbage after the written end.
    Append { bytes: BoundedBytes<512> },
    /// Remove the file: a lost create.
    Remove,
    /// Rename a log segment to another start LSN (the data file keeps its name).
    Rename { start: Bounded<0, 65_535> },
}

/// A log segment of arbitrary bytes named by its start LSN.
#[derive(Arbitrary, Debug)]
pub struct RawSegment {
    pub start: u64,
    pub bytes: BoundedBytes<SEGMENT_BYTES_MAX>,
}

/// A database directory: file names and their bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A template: its durable files and the state its commits built.
pub struct Template {
    pub strategy: Strategy,
    pub files: Files,
    pub state: State,
}

impl Image {
    /// The directory this input describes, the strategy it opens with and, if it is an
    /// undamaged template, the state it must recover to.
    pub fn files(&self) -> (Files, Strategy, Option<&'static State>) {
        match self {
            Image::Damaged { template, damage } => {
                let template = &templates()[template.get_usize()];
                let mut files = template.files.clone();
                for one in &damage.0 {
                    one.apply(&mut files);
                }
                let undamaged = files == template.files;
                (
                    files,
                    template.strategy,
                    undamaged.then_some(&template.state),
                )
            }
            Image::Raw {
                strategy,
                data,
                segments,
            } => {
                let mut files = Files::new();
                files.insert(DATA_FILE.to_string(), data.0.clone());
                for segment in &segments.0 {
                    files.insert(segment_name(segment.start), segment.bytes.0.clone());
                }
                (files, Strategy::ALL[strategy.get_usize()], None)
            }
        }
    }
}

impl Damage {
    fn apply(&self, files: &mut Files) {
        if files.is_empty() {
            return;
        }
        let name = files
            .keys()
            .nth(self.file.get_usize() % files.len())
            .expect("index is below the length")
            .clone();
        let bytes = files.get_mut(&name).expect("name was just listed");
        match &self.kind {
            DamageKind::Flip { offset, mask } => {
                if !bytes.is_empty() {
                    let at = offset.get_usize() % bytes.len();
                    bytes[at] ^= mask.get() as u8;
                }
            }
            DamageKind::Truncate { len } => {
                bytes.truncate(len.get_usize() % (bytes.len() + 1));
            }
            DamageKind::Zero { offset, len } => {
                let start = offset.get_usize() % (bytes.len() + 1);
                let end = (start + len.get_usize()).min(bytes.len());
                bytes[start..end].fill(0);
            }
            DamageKind::Append { bytes: extra } => {
                let limit = if name == DATA_FILE {
                    DATA_FILE_BYTES_MAX
                } else {
                    SEGMENT_BYTES_MAX
                } as usize;
                let room = limit.saturating_sub(bytes.len());
                bytes.extend_from_slice(&extra.0[..extra.0.len().min(room)]);
            }
            DamageKind::Remove => {
                files.remove(&name);
            }
            DamageKind::Rename { start } => {
                if parse_segment_name(&name).is_some() {
                    let bytes = files.remove(&name).expect("name was just listed");
                    files.insert(segment_name(start.get()), bytes);
                }
            }
        }
    }
}

/// Writes `files` into a fresh MemVfs, every byte and name durable.
pub fn materialize(files: &Files) -> MemVfs {
    let vfs = MemVfs::new();
    block_on(async {
        for (name, bytes) in files {
            let file = vfs.create(name).await.expect("MemVfs create");
            file.write_at(0, bytes).await.expect("MemVfs write");
            file.sync().await.expect("MemVfs sync");
        }
        vfs.sync_dir().await.expect("MemVfs sync_dir");
    });
    vfs
}

/// The durable files of a MemVfs.
fn durable_files(vfs: &MemVfs) -> Files {
    let image = vfs.crash_image();
    let names = block_on(image.list()).expect("MemVfs list");
    names
        .into_iter()
        .map(|name| {
            let bytes = image.contents(&name).expect("listed file exists");
            (name, bytes)
        })
        .collect()
}

fn open(vfs: MemVfs, strategy: Strategy) -> crashpoint::Result<Engine<MemVfs, Arc<ManualClock>>> {
    block_on(Engine::open(
        vfs,
        Arc::new(ManualClock::new()),
        options(strategy),
        Arc::new(NoopObserver),
    ))
}

fn to_state(entries: Vec<(Vec<u8>, Vec<u8>)>) -> State {
    entries.into_iter().collect()
}

/// The key written after recovery, outside the templates' key space.
const PROBE_KEY: &[u8] = b"fuzz-probe";
const PROBE_VALUE: &[u8] = b"after recovery";

/// Opens the image and checks it. Panics (a libFuzzer crash) if recovery panics, an undamaged
/// template does not recover to its state, or a recovered image does not survive a commit, a
/// clean close and a reopen.
pub fn check(image: &Image) {
    let (files, strategy, expected) = image.files();
    // A MemVfs clone shares its files, so this handle sees what the engine writes.
    let vfs = materialize(&files);
    let engine = match open(vfs.clone(), strategy) {
        Ok(engine) => engine,
        Err(error) => {
            assert!(
                expected.is_none(),
                "an undamaged template failed to recover: {error}"
            );
            return;
        }
    };
    let found = match block_on(engine.scan_all()) {
        Ok(entries) => to_state(entries),
        Err(error) => {
            assert!(
                expected.is_none(),
                "scan of an undamaged template failed: {error}"
            );
            return;
        }
    };
    if let Some(expected) = expected {
        if let Some(difference) = model::first_difference(expected, &found) {
            panic!("an undamaged template recovered to the wrong state: {difference}");
        }
    }
    // Every key the scan returned must read back the same through a point lookup.
    for (key, value) in found.iter().take(16) {
        match block_on(engine.get(key)) {
            Ok(read) => assert_eq!(
                read.as_ref(),
                Some(value),
                "get disagrees with scan_all for key {}",
                model::show(Some(key))
            ),
            // A page the scan already read cannot fail now, except through a typed error.
            Err(_) => return,
        }
    }
    // A recovered engine must take a commit and close cleanly, or refuse with a typed error.
    let committed = block_on(engine.commit(vec![Write::put(PROBE_KEY, PROBE_VALUE)]));
    if committed.is_err() || block_on(engine.close()).is_err() {
        return;
    }
    drop(engine);
    let image = durable_files(&vfs);
    let mut after = found;
    model::apply(&mut after, &[Write::put(PROBE_KEY, PROBE_VALUE)]);
    let reopened = match open(materialize(&image), strategy) {
        Ok(engine) => engine,
        Err(error) => panic!("a cleanly closed database failed to reopen: {error}"),
    };
    let entries = block_on(reopened.scan_all())
        .unwrap_or_else(|error| panic!("scan after a clean close and reopen failed: {error}"));
    if let Some(difference) = model::first_difference(&after, &to_state(entries)) {
        panic!("a cleanly closed database reopened to the wrong state: {difference}");
    }
}

/// The templates, built on first use.
pub fn templates() -> &'static [Template] {
    static TEMPLATES_BUILT: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES_BUILT.get_or_init(|| {
        let shapes: [&[Step]; SHAPES] = [
            // Commits, a checkpoint, then commits recovery must replay.
            &[Step::Commits(0..6), Step::Checkpoint, Step::Commits(6..10)],
            // Only the creation checkpoint: every commit is replayed from the log.
            &[Step::Commits(0..12)],
            // Enough data to split pages and fill several log segments, over three checkpoints.
            &[
                Step::Commits(0..40),
                Step::Checkpoint,
                Step::Commits(40..80),
                Step::Checkpoint,
                Step::Deletes(0..30),
                Step::Checkpoint,
                Step::Commits(80..100),
            ],
            // Deletes, then a clean close: the log holds nothing to replay.
            &[
                Step::Commits(0..20),
                Step::Checkpoint,
                Step::Deletes(5..15),
                Step::Close,
            ],
        ];
        Strategy::ALL
            .iter()
            .flat_map(|&strategy| shapes.iter().map(move |steps| build(strategy, steps)))
            .collect()
    })
}

enum Step {
    /// One commit per key index, each putting one or two keys.
    Commits(std::ops::Range<u32>),
    /// One commit per key index, deleting it.
    Deletes(std::ops::Range<u32>),
    Checkpoint,
    Close,
}

fn key(index: u32) -> Vec<u8> {
    format!("key-{index:04}").into_bytes()
}

fn value(index: u32) -> Vec<u8> {
    // Varied lengths so pages split at different points.
    let len = 8 + (index as usize * 37) % 120;
    (0..len)
        .map(|at| b'a' + ((index as usize + at) % 26) as u8)
        .collect()
}

/// Builds a template with instant commits, so every commit is durable, and keeps its durable
/// files (a power cut right after the last step).
fn build(strategy: Strategy, steps: &[Step]) -> Template {
    let vfs = MemVfs::new();
    let clock = Arc::new(ManualClock::new());
    let engine = block_on(Engine::open(
        vfs.clone(),
        clock.clone(),
        options(strategy),
        Arc::new(NoopObserver),
    ))
    .expect("template database opens");
    let mut state = State::new();
    for step in steps {
        let batches: Vec<Vec<Write>> = match step {
            Step::Commits(range) => range
                .clone()
                .map(|index| {
                    let mut writes = vec![Write::put(key(index), value(index))];
                    if index % 3 == 0 {
                        writes.push(Write::put(key(index + 1000), value(index + 7)));
                    }
                    writes
                })
                .collect(),
            Step::Deletes(range) => range
                .clone()
                .map(|index| vec![Write::delete(key(index))])
                .collect(),
            Step::Checkpoint => {
                let before = block_on(engine.checkpoint_count());
                clock.advance(options(strategy).checkpoint_interval + Duration::from_secs(1));
                block_on(engine.checkpoint_if_due()).expect("template checkpoint");
                assert!(
                    block_on(engine.checkpoint_count()) > before,
                    "template checkpoint ran"
                );
                Vec::new()
            }
            Step::Close => {
                block_on(engine.close()).expect("template closes");
                Vec::new()
            }
        };
        for writes in batches {
            let info = block_on(engine.commit(writes.clone())).expect("template commit");
            assert!(info.durable, "instant commits return durable");
            model::apply(&mut state, &writes);
        }
    }
    let files = durable_files(&vfs);
    for (name, bytes) in &files {
        let limit = if name == DATA_FILE {
            DATA_FILE_BYTES_MAX
        } else {
            SEGMENT_BYTES_MAX
        };
        assert!(
            bytes.len() as u64 <= limit,
            "template file {name} has {} bytes, above {limit}",
            bytes.len()
        );
    }
    assert!(files.contains_key(DATA_FILE), "template has a data file");
    Template {
        strategy,
        files,
        state,
    }
}
