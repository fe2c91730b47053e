//! Crash states: what a power cut at one moment may leave on the disk.
//!
//! A [`CrashPoint`] is a cheap snapshot of everything that was not yet durable at one moment:
//! the unsynced data operations of every file and the unsynced namespace operations. A
//! [`CrashDecisions`] says, for each of them, whether it reached the platter (and, for a torn
//! write, which sectors did). [`CrashPoint::materialize`] turns the two into a [`DiskImage`],
//! which [`super::SimFs::from_image`] boots. Decisions come from a seed
//! ([`CrashPoint::random_decisions`]) or from an explorer that builds them by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fault::{FaultKind, FaultRecord};
use super::trace::Digest;

/// Identity of a file independent of its names, so that a write to a file that is later renamed
/// lands in the right place whichever namespace operations survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InodeId(pub u64);

/// An unsynced change to a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataOp {
    Write { offset: u64, data: Arc<Vec<u8>> },
    SetLen { len: u64 },
}

impl DataOp {
    /// The bytes it changes: a write's range, or for a `SetLen` everything from the new
    /// length on (what it cuts off, or the zeros it adds).
    pub fn range(&self) -> (u64, u64) {
        match self {
            DataOp::Write { offset, data } => (*offset, offset + data.len() as u64),
            DataOp::SetLen { len } => (*len, u64::MAX),
        }
    }

    /// The absolute sector numbers a write touches (empty for `SetLen`). A torn write carries
    /// one [`SectorFate`] per sector of this range, in order.
    pub fn sectors_touched(&self, sector_size_bytes: u64) -> Range<u64> {
        match self {
            DataOp::Write { offset, data } if !data.is_empty() => {
                let end = offset + data.len() as u64;
                offset / sector_size_bytes..end.div_ceil(sector_size_bytes)
            }
            _ => 0..0,
        }
    }
}

/// An unsynced data operation, as listed in a [`CrashPoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    /// The I/O counter of the call that issued it; orders all operations of all files.
    pub seq: u64,
    /// The name it lands in if the namespace operations around it survive (the live name, else
    /// the durable name, else the name of the create that made the file).
    pub file: String,
    pub inode: InodeId,
    pub op: DataOp,
    /// A lying fsync told the engine this operation was durable. Losing it is the disk's fault.
    pub acknowledged: bool,
}

/// An unsynced change to the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceOp {
    /// A new, empty file (its inode's synced bytes, if it was synced before `sync_dir`).
    Create {
        seq: u64,
        name: String,
        inode: InodeId,
    },
    Remove {
        seq: u64,
        name: String,
    },
    Rename {
        seq: u64,
        from: String,
        to: String,
    },
}

impl NamespaceOp {
    pub fn seq(&self) -> u64 {
        match self {
            NamespaceOp::Create { seq, .. }
            | NamespaceOp::Remove { seq, .. }
            | NamespaceOp::Rename { seq, .. } => *seq,
        }
    }

    /// The name it concerns (for a rename, the target), for fault records.
    fn describe(&self) -> (String, String) {
        match self {
            NamespaceOp::Create { name, .. } => (name.clone(), format!("create {name:?} undone")),
            NamespaceOp::Remove { name, .. } => (name.clone(), format!("remove {name:?} undone")),
            NamespaceOp::Rename { from, to, .. } => {
                (to.clone(), format!("rename {from:?} -> {to:?} undone"))
            }
        }
    }
}

/// What a crash did to one sector of a torn write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectorFate {
    /// The sector kept its bytes from before the write.
    Old,
    /// The sector has the written bytes.
    New,
    /// The whole sector (up to the end of the file) holds bytes from a ChaCha8 stream with
    /// this seed.
    Garbage(u64),
    /// The sector did not land, and the file's size update stopped before it: the file ends
    /// at this sector's start (or at the write's offset, if later) unless it was already
    /// longer, where the sector keeps its old bytes. Missing sectors are always the last ones
    /// of a torn write: a file can end part-way through an appended write.
    Missing,
}

/// What a crash did to one unsynced operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFate {
    Survives,
    Vanishes,
    /// One fate per sector of [`DataOp::sectors_touched`]; only for non-empty writes. The file
    /// is extended to the end of the write whatever the old, new or garbage sectors' fates (its
    /// size reached the disk; its data partly did), or only up to its first missing sector
    /// (its data partly reached the disk; its size did not).
    Torn(Vec<SectorFate>),
}

/// One way a crash can resolve a [`CrashPoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashDecisions {
    /// One per [`CrashPoint::pending`] operation.
    pub fates: Vec<WriteFate>,
    /// One per [`CrashPoint::namespace`] operation.
    pub namespace_applied: Vec<bool>,
    /// A permutation of the pending operations' indices: the order in which the surviving and
    /// torn ones reach the disk. Unsynced writes need not land in issue order.
    pub order: Vec<usize>,
}

/// Odds of each fate of an unsynced write in [`CrashPoint::random_decisions`]. The defaults are
/// SQLite's crash VFS: 3/8 written, 3/8 dropped, 1/4 trashed. The three weights are relative.
/// The `[crash]` section of a scenario file embeds this type.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrashConfig {
    pub survive: f64,
    pub vanish: f64,
    pub torn: f64,
    /// Apply surviving writes in a seeded random order rather than issue order.
    pub reorder: bool,
    /// Of the writes that land whole or torn, the fraction whose file ends inside them: its
    /// size update stopped at one of their sectors ([`CrashPoint::random_cuts`]).
    pub cut: f64,
    /// A torn write's sectors may hold garbage, as on a disk whose sector writes are not atomic
    /// (a third of them do). Off, each torn sector is old or new: the disk redb and SQLite assume,
    /// where a byte is written completely or not at all.
    pub garbage: bool,
}

impl Default for CrashConfig {
    fn default() -> Self {
        CrashConfig {
            survive: 0.375,
            vanish: 0.375,
            torn: 0.25,
            reorder: true,
            cut: 0.125,
            garbage: true,
        }
    }
}

impl CrashConfig {
    pub fn validate(&self) -> Result<(), String> {
        let weights = [
            ("survive", self.survive),
            ("vanish", self.vanish),
            ("torn", self.torn),
        ];
        for (name, weight) in weights {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(format!(
                    "crash weight {name} = {weight} is not a finite number >= 0"
                ));
            }
        }
        if self.survive + self.vanish <= 0.0 {
            return Err("crash weights survive and vanish are both 0".to_string());
        }
        if !(0.0..=1.0).contains(&self.cut) {
            return Err(format!("crash cut = {} is not in [0, 1]", self.cut));
        }
        Ok(())
    }
}

/// Everything not yet durable at one moment. Cheap to take: byte images are shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    /// Durable names and their durable bytes: what a crash that loses everything unsynced
    /// leaves.
    pub files: BTreeMap<String, Arc<Vec<u8>>>,
    /// Unsynced data operations of every file a crash image can contain, in issue order.
    pub pending: Vec<PendingOp>,
    /// Unsynced creates, removes and renames, in issue order.
    pub namespace: Vec<NamespaceOp>,
    pub sector_size_bytes: u64,
    /// The inode behind each durable name.
    pub durable_names: BTreeMap<String, InodeId>,
    /// Durable bytes of every inode a crash image can contain (those of `durable_names` and of
    /// unsynced creates).
    pub inodes: BTreeMap<InodeId, Arc<Vec<u8>>>,
    /// The unreadable sectors (latent sector errors) of those inodes that have any.
    pub unreadable: BTreeMap<InodeId, BTreeSet<u64>>,
}

impl CrashPoint {
    /// True when a crash here has exactly one outcome.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.namespace.is_empty()
    }

    /// Every unsynced operation lands, in issue order.
    pub fn all_survive(&self) -> CrashDecisions {
        CrashDecisions {
            fates: vec![WriteFate::Survives; self.pending.len()],
            namespace_applied: vec![true; self.namespace.len()],
            order: (0..self.pending.len()).collect(),
        }
    }

    /// Every unsynced operation is lost: the image is [`CrashPoint::files`].
    pub fn all_vanish(&self) -> CrashDecisions {
        CrashDecisions {
            fates: vec![WriteFate::Vanishes; self.pending.len()],
            namespace_applied: vec![false; self.namespace.len()],
            order: (0..self.pending.len()).collect(),
        }
    }

    /// Draws one crash outcome. With probability 1/16 everything lands in order (FoundationDB
    /// sometimes lets all pending writes land); otherwise each write survives, vanishes or tears
    /// by `config`'s weights (a torn write's sectors are each old, new or garbage with equal
    /// odds), a `SetLen` survives or vanishes by the same survive/vanish odds, each namespace
    /// operation is applied with probability 1/2, and with `config.reorder` the order is a
    /// shuffle.
    ///
    /// # Panics
    /// If `config` is invalid ([`CrashConfig::validate`]).
    pub fn random_decisions(&self, rng: &mut ChaCha8Rng, config: &CrashConfig) -> CrashDecisions {
        if let Err(problem) = config.validate() {
            panic!("invalid crash config: {problem}");
        }
        if rng.gen_ratio(1, 16) {
            return self.all_survive();
        }
        let fates = self
            .pending
            .iter()
            .map(|pending| {
                let sectors = pending.op.sectors_touched(self.sector_size_bytes);
                let torn = if sectors.is_empty() { 0.0 } else { config.torn };
                let pick = rng.gen::<f64>() * (config.survive + config.vanish + torn);
                if pick < config.survive {
                    WriteFate::Survives
                } else if pick < config.survive + config.vanish || torn == 0.0 {
                    WriteFate::Vanishes
                } else {
                    let sector_fates = sectors
                        .map(
                            |_| match rng.gen_range(0..if config.garbage { 3 } else { 2 }) {
                                0 => SectorFate::Old,
                                1 => SectorFate::New,
                                _ => SectorFate::Garbage(rng.gen()),
                            },
                        )
                        .collect();
                    WriteFate::Torn(sector_fates)
                }
            })
            .collect();
        let namespace_applied = self.namespace.iter().map(|_| rng.gen_bool(0.5)).collect();
        let mut order: Vec<usize> = (0..self.pending.len()).collect();
        if config.reorder {
            order.shuffle(rng);
        }
        CrashDecisions {
            fates,
            namespace_applied,
            order,
        }
    }

    /// Lets files end inside writes: each write that lands whole or torn is, with probability
    /// `config.cut`, cut at one of its sectors (drawn uniformly): that sector and the later
    /// ones become [`SectorFate::Missing`], the earlier ones keep their fates (a whole write's
    /// are new). Drawn from its own stream, so the other crash draws do not move.
    pub fn random_cuts(
        &self,
        decisions: &mut CrashDecisions,
        rng: &mut ChaCha8Rng,
        config: &CrashConfig,
    ) {
        if config.cut <= 0.0 {
            return;
        }
        for (pending, fate) in self.pending.iter().zip(decisions.fates.iter_mut()) {
            let sectors = pending.op.sectors_touched(self.sector_size_bytes);
            let count = (sectors.end - sectors.start) as usize;
            if count == 0 || *fate == WriteFate::Vanishes || !rng.gen_bool(config.cut) {
                continue;
            }
            let at = rng.gen_range(0..count);
            let mut fates = match fate {
                WriteFate::Torn(fates) => fates.clone(),
                _ => vec![SectorFate::New; count],
            };
            for sector in &mut fates[at..] {
                *sector = SectorFate::Missing;
            }
            *fate = WriteFate::Torn(fates);
        }
    }

    /// Builds the disk a crash with `decisions` leaves, and the crash faults it took: one
    /// `undone-namespace-op` per namespace operation not applied, one `lost-write` per vanished
    /// operation, one `torn-write` per torn write (`cut-write` when its file may end inside
    /// it), and one `reordered-write` per file whose surviving writes landed out of issue
    /// order.
    ///
    /// Namespace operations are applied first, in issue order (a rename or remove of a name the
    /// image lacks does nothing); then data operations in `decisions.order`, each to its inode if
    /// some name of the image reaches it, extending the file with zeros as needed.
    ///
    /// # Panics
    /// If `decisions` does not fit this crash point (lengths, sector counts, or an order that is
    /// not a permutation).
    pub fn materialize(&self, decisions: &CrashDecisions) -> (DiskImage, Vec<FaultRecord>) {
        self.check_fits(decisions);
        let mut faults = Vec::new();

        let mut names = self.durable_names.clone();
        for (op, &applied) in self.namespace.iter().zip(&decisions.namespace_applied) {
            if !applied {
                let (file, detail) = op.describe();
                faults.push(FaultRecord {
                    index: op.seq(),
                    kind: FaultKind::UndoneNamespaceOp,
                    file,
                    offset: 0,
                    len: 0,
                    detail,
                    damaged: Vec::new(),
                });
                continue;
            }
            match op {
                NamespaceOp::Create { name, inode, .. } => {
                    names.insert(name.clone(), *inode);
                }
                NamespaceOp::Remove { name, .. } => {
                    names.remove(name);
                }
                NamespaceOp::Rename { from, to, .. } => {
                    if let Some(inode) = names.remove(from) {
                        names.insert(to.clone(), inode);
                    }
                }
            }
        }

        for (pending, fate) in self.pending.iter().zip(&decisions.fates) {
            let (offset, len) = match &pending.op {
                DataOp::Write { offset, data } => (*offset, data.len() as u64),
                DataOp::SetLen { len } => (*len, 0),
            };
            let (kind, detail) = match fate {
                WriteFate::Survives => continue,
                WriteFate::Vanishes => (FaultKind::LostWrite, lost_detail(pending)),
                WriteFate::Torn(sectors) if sectors.contains(&SectorFate::Missing) => {
                    (FaultKind::CutWrite, torn_detail(sectors))
                }
                WriteFate::Torn(sectors) => (FaultKind::TornWrite, torn_detail(sectors)),
            };
            faults.push(FaultRecord {
                index: pending.seq,
                kind,
                file: pending.file.clone(),
                offset,
                len,
                detail,
                damaged: Vec::new(),
            });
        }

        let mut contents: BTreeMap<InodeId, Vec<u8>> = names
            .values()
            .map(|inode| {
                let bytes = self
                    .inodes
                    .get(inode)
                    .expect("crash point lacks an inode it names");
                (*inode, bytes.as_ref().clone())
            })
            .collect();
        let mut unreadable: BTreeMap<InodeId, BTreeSet<u64>> = names
            .values()
            .filter_map(|inode| Some((*inode, self.unreadable.get(inode)?.clone())))
            .collect();
        // Per inode, the sequence numbers in the order they landed, to report reordering.
        let mut landed: BTreeMap<InodeId, Vec<u64>> = BTreeMap::new();
        for &index in &decisions.order {
            let pending = &self.pending[index];
            let fate = &decisions.fates[index];
            if *fate == WriteFate::Vanishes {
                continue;
            }
            let Some(bytes) = contents.get_mut(&pending.inode) else {
                continue;
            };
            landed.entry(pending.inode).or_default().push(pending.seq);
            if let Some(sectors) = unreadable.get_mut(&pending.inode) {
                match fate {
                    WriteFate::Torn(fates) => {
                        let touched = pending.op.sectors_touched(self.sector_size_bytes);
                        for (sector, fate) in touched.zip(fates) {
                            if matches!(fate, SectorFate::New | SectorFate::Garbage(_)) {
                                sectors.remove(&sector);
                            }
                        }
                    }
                    _ => rewrite_sectors(sectors, &pending.op, self.sector_size_bytes),
                }
            }
            match (&pending.op, fate) {
                (DataOp::SetLen { len }, _) => bytes.resize(*len as usize, 0),
                (DataOp::Write { offset, data }, WriteFate::Torn(sectors)) => {
                    apply_torn_write(bytes, *offset, data, sectors, self.sector_size_bytes)
                }
                (DataOp::Write { offset, data }, _) => apply_write(bytes, *offset, data),
            }
        }
        for (inode, seqs) in &landed {
            if seqs.windows(2).all(|pair| pair[0] < pair[1]) {
                continue;
            }
            let file = names
                .iter()
                .find(|(_, named)| *named == inode)
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            let shown: Vec<String> = seqs.iter().take(16).map(u64::to_string).collect();
            let more = if seqs.len() > 16 { ", ..." } else { "" };
            faults.push(FaultRecord {
                index: seqs.iter().copied().min().unwrap_or(0),
                kind: FaultKind::ReorderedWrite,
                file,
                offset: 0,
                len: 0,
                detail: format!("writes landed in order [{}{more}]", shown.join(", ")),
                damaged: Vec::new(),
            });
        }
        faults.sort_by_key(|fault| fault.index);

        let unreadable = names
            .iter()
            .filter_map(|(name, inode)| {
                let sectors = unreadable
                    .get(inode)
                    .filter(|sectors| !sectors.is_empty())?;
                Some((name.clone(), sectors.clone()))
            })
            .collect();
        let files = names
            .into_iter()
            .map(|(name, inode)| (name, contents[&inode].clone()))
            .collect();
        (DiskImage { files, unreadable }, faults)
    }

    fn check_fits(&self, decisions: &CrashDecisions) {
        assert_eq!(
            decisions.fates.len(),
            self.pending.len(),
            "one fate per pending operation"
        );
        assert_eq!(
            decisions.namespace_applied.len(),
            self.namespace.len(),
            "one decision per namespace operation"
        );
        assert_eq!(
            decisions.order.len(),
            self.pending.len(),
            "order must list every operation"
        );
        let distinct: BTreeSet<usize> = decisions.order.iter().copied().collect();
        assert!(
            distinct.len() == self.pending.len()
                && distinct.iter().all(|&index| index < self.pending.len()),
            "order must be a permutation of the pending operations"
        );
        for (pending, fate) in self.pending.iter().zip(&decisions.fates) {
            if let WriteFate::Torn(sectors) = fate {
                let touched = pending.op.sectors_touched(self.sector_size_bytes);
                assert_eq!(
                    sectors.len() as u64,
                    touched.end - touched.start,
                    "a torn write needs one fate per sector it touches (op #{})",
                    pending.seq
                );
                assert!(
                    missing_is_a_suffix(sectors),
                    "only the last sectors of a torn write can be missing (op #{})",
                    pending.seq
                );
            }
        }
    }
}

fn lost_detail(pending: &PendingOp) -> String {
    let what = match &pending.op {
        DataOp::Write { .. } => "unsynced write lost",
        DataOp::SetLen { .. } => "unsynced set_len lost",
    };
    if pending.acknowledged {
        format!("{what} (a lying fsync had acknowledged it)")
    } else {
        what.to_string()
    }
}

fn torn_detail(sectors: &[SectorFate]) -> String {
    let shown: Vec<&str> = sectors
        .iter()
        .take(32)
        .map(|fate| match fate {
            SectorFate::Old => "old",
            SectorFate::New => "new",
            SectorFate::Garbage(_) => "garbage",
            SectorFate::Missing => "missing",
        })
        .collect();
    let more = if sectors.len() > 32 { ", ..." } else { "" };
    format!("sectors [{}{more}]", shown.join(", "))
}

/// Forgets the latent errors of the sectors `op` rewrites: every sector a write touches (the
/// drive rewrites, and remaps, a sector whole), every sector a `SetLen` cuts off.
pub(crate) fn rewrite_sectors(unreadable: &mut BTreeSet<u64>, op: &DataOp, sector_size_bytes: u64) {
    match op {
        DataOp::Write { .. } => {
            for sector in op.sectors_touched(sector_size_bytes) {
                unreadable.remove(&sector);
            }
        }
        DataOp::SetLen { len } => {
            unreadable.retain(|&sector| sector * sector_size_bytes < *len);
        }
    }
}

pub(crate) fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

fn apply_torn_write(
    bytes: &mut Vec<u8>,
    offset: u64,
    data: &[u8],
    sectors: &[SectorFate],
    sector_size_bytes: u64,
) {
    let first = offset / sector_size_bytes;
    let end = offset + data.len() as u64;
    // The size update reaches the first missing sector, or the write's end.
    let size = match sectors.iter().position(|fate| *fate == SectorFate::Missing) {
        Some(missing) => ((first + missing as u64) * sector_size_bytes).clamp(offset, end),
        None => end,
    };
    if (bytes.len() as u64) < size {
        bytes.resize(size as usize, 0);
    }
    for (number, fate) in (first..).zip(sectors) {
        let sector_start = number * sector_size_bytes;
        let sector_end = sector_start + sector_size_bytes;
        match fate {
            SectorFate::Old | SectorFate::Missing => {}
            SectorFate::New => {
                let low = sector_start.max(offset);
                let high = sector_end.min(end);
                bytes[low as usize..high as usize]
                    .copy_from_slice(&data[(low - offset) as usize..(high - offset) as usize]);
            }
            SectorFate::Garbage(seed) => {
                let high = sector_end.min(bytes.len() as u64);
                ChaCha8Rng::seed_from_u64(*seed)
                    .fill_bytes(&mut bytes[sector_start as usize..high as usize]);
            }
        }
    }
}

/// Whether no sector after a missing one landed: the size of a file stops at one place.
pub fn missing_is_a_suffix(sectors: &[SectorFate]) -> bool {
    let missing = sectors
        .iter()
        .position(|fate| *fate == SectorFate::Missing)
        .unwrap_or(sectors.len());
    sectors[missing..]
        .iter()
        .all(|fate| *fate == SectorFate::Missing)
}

/// The files a crash left (or a test built): names and bytes, nothing pending, and the sectors
/// latent errors made unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskImage {
    pub files: BTreeMap<String, Vec<u8>>,
    /// Per file name, the unreadable sectors (numbers in the disk's sector size); files
    /// without any are left out.
    pub unreadable: BTreeMap<String, BTreeSet<u64>>,
}

impl DiskImage {
    /// A stable 64-bit digest of names, bytes and unreadable sectors, for comparing images
    /// across runs (an image without unreadable sectors digests as it did before they
    /// existed).
    pub fn digest(&self) -> u64 {
        let mut digest = Digest::new();
        digest.u64(self.files.len() as u64);
        for (name, bytes) in &self.files {
            digest.str(name);
            digest.u64(bytes.len() as u64);
            digest.bytes(bytes);
        }
        for (name, sectors) in &self.unreadable {
            digest.str(name);
            for &sector in sectors {
                digest.u64(sector);
            }
        }
        digest.0
    }
}
