//! An explicit, replayable schedule of a run: every decision the workload, the disk and the
//! crashes made, so a failing seed can be shrunk by removing decisions and replayed exactly.
//!
//! A run with a schedule takes its client operations (with their think times), its injected
//! faults (by I/O call index on each phase's disk), its crash triggers and its crash fates from
//! the schedule instead of drawing them; madsim's task scheduling and the fault details still
//! come from the seed. Replaying an unshrunk schedule reproduces its run call for call.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crashpoint::format::record;
use crashpoint::Lsn;

use crate::fs::{
    missing_is_a_suffix, CrashDecisions, CrashPoint, DataOp, DiskImage, FaultKind, FaultRecord,
    SectorFate, WriteFate,
};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// One entry per crash phase, in order; the seed crashes once per entry.
    pub phases: Vec<PhaseSchedule>,
    /// The quiet phase that ends every seed (no faults, no crash).
    pub quiet: Vec<Vec<Operation>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSchedule {
    /// Each client's operations, in order.
    pub clients: Vec<Vec<Operation>>,
    /// Faults injected on this phase's disk, by call index.
    pub faults: Vec<PlannedFault>,
    pub crash: PlannedCrash,
    /// What the crash did to each unsynced write.
    pub fates: Fates,
    /// Bits flipped in the crash image before recovery reads it (rot pinned to a place on the
    /// disk rather than to a disk call; `shrink` turns bit-rot faults into this).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damage: Vec<PlannedDamage>,
    /// Faults the recovery after this phase's crash met, by call on its disk (which recovery
    /// reads with read faults on). A replay injects exactly these there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_faults: Vec<PlannedFault>,
}

/// Bits flipped in one file of a crash image: (offset, mask) pairs. The offsets are the file's,
/// unless the damage is pinned to a log record: then they count from the start of the commit
/// record that is `record` places before the last one in the image's log, in whichever
/// segment holds it, so that removing work keeps the damage on a record recovery replays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedDamage {
    pub file: String,
    pub flips: Vec<(u64, u8)>,
    /// Commit records counted back from the last one in the log (0 is the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<u32>,
}

/// Where one commit record lies in an image's log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RecordPlace {
    file: String,
    offset: u64,
    len: u64,
}

/// Every commit record of the image's log, in log order: each segment decoded from its start
/// until the first place that does not hold a whole, verified record.
fn commit_records(image: &DiskImage) -> Vec<RecordPlace> {
    let mut segments: Vec<(u64, &String)> = image
        .files
        .keys()
        .filter_map(|name| Some((crashpoint::log::parse_segment_name(name)?, name)))
        .collect();
    segments.sort();
    let mut places = Vec::new();
    for (start, name) in segments {
        let bytes = &image.files[name];
        let mut offset = 0usize;
        // Each pass consumes a whole record or stops.
        while offset < bytes.len() {
            match record::decode(&bytes[offset..], Lsn(start + offset as u64)) {
                record::Decoded::Record { record, len } => {
                    if matches!(record, record::Record::Commit { .. }) {
                        places.push(RecordPlace {
                            file: name.clone(),
                            offset: offset as u64,
                            len: len as u64,
                        });
                    }
                    offset += len;
                }
                record::Decoded::End | record::Decoded::Invalid { .. } => break,
            }
        }
    }
    places
}

impl PlannedDamage {
    /// The flips in words: `bits 0x10 of byte 9250 of data, ...`, or for damage pinned to a
    /// record, `... of the 2nd-last commit record`.
    pub fn describe(&self) -> String {
        let flips: Vec<String> = self
            .flips
            .iter()
            .map(|(offset, mask)| format!("bits {mask:#04x} of byte {offset}"))
            .collect();
        match self.record {
            Some(0) => format!("{} of the last commit record", flips.join(", ")),
            Some(back) => format!(
                "{} of the commit record {back} before the last",
                flips.join(", ")
            ),
            None => format!("{} of {}", flips.join(", "), self.file),
        }
    }

    /// Applies the flips to the image, and returns the file and file offsets they landed on
    /// (none for a file the image lacks, or a pinned record in a log with no commit). A flip
    /// past a file's end is dropped.
    pub fn apply(&self, image: &mut DiskImage) -> Option<(String, Vec<(u64, u8)>)> {
        let (file, flips) = match self.record {
            Some(back) => {
                let places = commit_records(image);
                let index = places.len().saturating_sub(1 + back as usize);
                let place = places.get(index)?;
                let flips = self
                    .flips
                    .iter()
                    .map(|&(offset, mask)| (place.offset + offset, mask))
                    .collect();
                (place.file.clone(), flips)
            }
            None => (self.file.clone(), self.flips.clone()),
        };
        let bytes = image.files.get_mut(&file)?;
        let landed: Vec<(u64, u8)> = flips
            .into_iter()
            .filter(|&(offset, _)| (offset as usize) < bytes.len())
            .collect();
        for &(offset, mask) in &landed {
            bytes[offset as usize] ^= mask;
        }
        Some((file, landed))
    }

    /// The same flips pinned to the commit record the first of them hit in `image` (the
    /// others keep their distance from it), when that is a commit record of a log segment;
    /// else unchanged. `holds_flips` says whether
    /// the image has them already (rot at rest before the crash) or not (rot recovery met).
    pub fn pinned_to_record(&self, image: &DiskImage, holds_flips: bool) -> PlannedDamage {
        if crashpoint::log::parse_segment_name(&self.file).is_none() {
            return self.clone();
        }
        // Find the records as they were before the flips.
        let mut before = image.clone();
        if let (Some(bytes), true) = (before.files.get_mut(&self.file), holds_flips) {
            for &(offset, mask) in &self.flips {
                if let Some(byte) = bytes.get_mut(offset as usize) {
                    *byte ^= mask;
                }
            }
        }
        let places = commit_records(&before);
        let first = self.flips.iter().map(|&(offset, _)| offset).min();
        let hit = places.iter().position(|place| {
            place.file == self.file
                && first
                    .is_some_and(|first| (place.offset..place.offset + place.len).contains(&first))
        });
        match hit {
            Some(index) => PlannedDamage {
                file: self.file.clone(),
                flips: self
                    .flips
                    .iter()
                    .map(|&(offset, mask)| (offset - places[index].offset, mask))
                    .collect(),
                record: Some((places.len() - 1 - index) as u32),
            },
            None => self.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Operation {
    Commit {
        think_us: u64,
        writes: Vec<ScheduledWrite>,
    },
    Get {
        think_us: u64,
        key: String,
    },
    Scan {
        think_us: u64,
        key: String,
    },
}

impl Operation {
    pub fn think_us(&self) -> u64 {
        match self {
            Operation::Commit { think_us, .. }
            | Operation::Get { think_us, .. }
            | Operation::Scan { think_us, .. } => *think_us,
        }
    }

    pub fn set_think_us(&mut self, value: u64) {
        match self {
            Operation::Commit { think_us, .. }
            | Operation::Get { think_us, .. }
            | Operation::Scan { think_us, .. } => *think_us = value,
        }
    }
}

/// A put (`value` set) or a delete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledWrite {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// The disk call (1-based, counting every call of the phase) the fault hits.
    pub call: u64,
    /// A fault kind name: write-error, no-space, misdirected-write, lying-fsync, fsync-error,
    /// short-read, bit-rot.
    pub kind: String,
    /// For bit rot as recorded: the file and the bits it flipped, so `shrink` can pin the
    /// same damage to the crash image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rot: Option<PlannedDamage>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// What ends a crash phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum PlannedCrash {
    /// After the `then`-th I/O call following the `skip + 1`-th occurrence of a named
    /// checkpoint step (0: right at it), or at the next step if that comes first.
    Step {
        name: String,
        skip: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        then: u32,
    },
    /// After the `operations`-th I/O call inside a checkpoint window; for a subject other than
    /// crashpoint (which reports no checkpoint windows), after the phase's `operations`-th
    /// disk call.
    Io { operations: u64 },
    /// At a simulated time into the phase.
    Time { after_us: u64 },
    /// When every client has finished.
    #[default]
    EndOfPhase,
}

/// The fates of the unsynced writes at a crash.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fates", rename_all = "kebab-case")]
pub enum Fates {
    /// Drawn from the seed's crash stream.
    #[default]
    Random,
    AllVanish,
    AllSurvive,
    /// These decisions: exactly, when they fit the crash point; else refitted, file by file
    /// from the end ([`Fates::decisions`]); else drawn.
    Explicit {
        writes: Vec<String>,
        namespace_applied: Vec<bool>,
        order: Vec<usize>,
        /// The file each write went to, for refitting (`log` for any log segment, whose names
        /// move with the LSNs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
    },
}

/// The file a refit matches writes by: a log segment's name moves when work is removed, so
/// every segment is `log`.
fn file_role(name: &str) -> String {
    match crashpoint::log::parse_segment_name(name) {
        Some(_) => "log".to_string(),
        None => name.to_string(),
    }
}

/// `fate` for a write of `sectors` sectors: a torn fate's sector fates stretched or squeezed
/// onto them (each new sector takes the fate of the old one at its relative place, so missing
/// sectors stay last); a write with no sectors to tear survives whole.
fn resized(fate: &WriteFate, sectors: usize) -> WriteFate {
    match fate {
        WriteFate::Torn(old) if sectors == 0 || old.is_empty() => WriteFate::Survives,
        WriteFate::Torn(old) => WriteFate::Torn(
            (0..sectors)
                .map(|sector| old[sector * old.len() / sectors])
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A compact text form of one write's fate: `s` survives, `v` vanishes, `t:` then one letter
/// per sector (`o` old, `n` new, `g<seed>` garbage, `m` missing, comma separated).
fn fate_text(fate: &WriteFate) -> String {
    match fate {
        WriteFate::Survives => "s".to_string(),
        WriteFate::Vanishes => "v".to_string(),
        WriteFate::Torn(sectors) => {
            let parts: Vec<String> = sectors
                .iter()
                .map(|sector| match sector {
                    SectorFate::Old => "o".to_string(),
                    SectorFate::New => "n".to_string(),
                    SectorFate::Garbage(seed) => format!("g{seed}"),
                    SectorFate::Missing => "m".to_string(),
                })
                .collect();
            format!("t:{}", parts.join(","))
        }
    }
}

fn parse_fate(text: &str) -> Option<WriteFate> {
    match text {
        "s" => Some(WriteFate::Survives),
        "v" => Some(WriteFate::Vanishes),
        _ => {
            let sectors = text.strip_prefix("t:")?;
            let fates: Option<Vec<SectorFate>> = sectors
                .split(',')
                .map(|sector| match sector {
                    "o" => Some(SectorFate::Old),
                    "n" => Some(SectorFate::New),
                    "m" => Some(SectorFate::Missing),
                    _ => sector
                        .strip_prefix('g')?
                        .parse()
                        .ok()
                        .map(SectorFate::Garbage),
                })
                .collect();
            Some(WriteFate::Torn(fates?))
        }
    }
}

impl Fates {
    /// `decisions` as taken at `point`.
    pub fn explicit(decisions: &CrashDecisions, point: &CrashPoint) -> Fates {
        Fates::Explicit {
            writes: decisions.fates.iter().map(fate_text).collect(),
            namespace_applied: decisions.namespace_applied.clone(),
            order: decisions.order.clone(),
            files: point
                .pending
                .iter()
                .map(|pending| file_role(&pending.file))
                .collect(),
        }
    }

    /// The explicit decisions for `point`. Exactly as recorded if they parse and fit: one fate
    /// per unsynced operation, a torn fate only for a write with one sector fate per sector it
    /// touches (missing ones last), one flag per namespace operation, and an order that is a
    /// permutation. Otherwise (work was removed, so the crash leaves other writes pending)
    /// refitted: each file's recorded fates go to that file's pending writes from the last one
    /// back (a torn or cut log tail stays the log's tail), torn fates resized to the sectors
    /// the write touches, writes before the recorded ones vanish, namespace operations are
    /// matched from the last one back (extra ones applied), and writes land in issue order.
    /// None if they do not parse or name no files.
    pub fn decisions(&self, point: &CrashPoint) -> Option<CrashDecisions> {
        let Fates::Explicit {
            writes,
            namespace_applied,
            order,
            files,
        } = self
        else {
            return None;
        };
        let fates: Option<Vec<WriteFate>> = writes.iter().map(|text| parse_fate(text)).collect();
        let fates = fates?;
        let pending = point.pending.len();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        let tears_fit =
            fates
                .iter()
                .zip(&point.pending)
                .all(|(fate, pending)| match (fate, &pending.op) {
                    (WriteFate::Torn(sectors), DataOp::Write { data, .. }) => {
                        !data.is_empty()
                            && missing_is_a_suffix(sectors)
                            && sectors.len()
                                == pending.op.sectors_touched(point.sector_size_bytes).count()
                    }
                    (WriteFate::Torn(_), DataOp::SetLen { .. }) => false,
                    _ => true,
                });
        let fits = fates.len() == pending
            && tears_fit
            && namespace_applied.len() == point.namespace.len()
            && sorted == (0..pending).collect::<Vec<_>>();
        if fits {
            return Some(CrashDecisions {
                fates,
                namespace_applied: namespace_applied.clone(),
                order: order.clone(),
            });
        }
        if files.len() != fates.len()
            || fates.iter().any(|fate| match fate {
                WriteFate::Torn(sectors) => !missing_is_a_suffix(sectors),
                _ => false,
            })
        {
            return None;
        }
        Some(refit(&fates, files, namespace_applied, point))
    }
}

/// Recorded fates (with the file each went to) fitted onto another crash point, as
/// [`Fates::decisions`] describes.
fn refit(
    fates: &[WriteFate],
    files: &[String],
    namespace_applied: &[bool],
    point: &CrashPoint,
) -> CrashDecisions {
    let mut recorded: BTreeMap<String, Vec<&WriteFate>> = BTreeMap::new();
    for (fate, file) in fates.iter().zip(files) {
        recorded.entry(file.clone()).or_default().push(fate);
    }
    let mut pending_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, pending) in point.pending.iter().enumerate() {
        pending_of
            .entry(file_role(&pending.file))
            .or_default()
            .push(index);
    }
    let mut fitted = vec![WriteFate::Vanishes; point.pending.len()];
    for (file, indices) in &pending_of {
        let Some(old) = recorded.get(file) else {
            continue;
        };
        // The last pending write takes the last recorded fate, and so on back.
        for (index, fate) in indices.iter().rev().zip(old.iter().rev()) {
            let sectors = point.pending[*index]
                .op
                .sectors_touched(point.sector_size_bytes)
                .count();
            fitted[*index] = resized(fate, sectors);
        }
    }
    let operations = point.namespace.len();
    let namespace = (0..operations)
        .map(|op| {
            let from_end = operations - op;
            namespace_applied
                .len()
                .checked_sub(from_end)
                .is_none_or(|recorded| namespace_applied[recorded])
        })
        .collect();
    CrashDecisions {
        fates: fitted,
        namespace_applied: namespace,
        order: (0..point.pending.len()).collect(),
    }
}

impl PhaseSchedule {
    /// The fault plan for this phase's disk, or an error naming an unknown kind.
    pub fn fault_plan(&self) -> Result<BTreeMap<u64, FaultKind>, String> {
        plan(&self.faults)
    }

    /// The fault plan for the disk the recovery after this phase's crash reads.
    pub fn recovery_fault_plan(&self) -> Result<BTreeMap<u64, FaultKind>, String> {
        plan(&self.recovery_faults)
    }
}

/// Call index -> fault kind, or an error naming an unknown kind.
fn plan(faults: &[PlannedFault]) -> Result<BTreeMap<u64, FaultKind>, String> {
    faults
        .iter()
        .map(|fault| {
            FaultKind::ALL
                .into_iter()
                .find(|kind| kind.name() == fault.kind)
                .map(|kind| (fault.call, kind))
                .ok_or_else(|| {
                    format!("unknown fault kind {:?} at call {}", fault.kind, fault.call)
                })
        })
        .collect()
}

/// The faults a disk injected, as a schedule plans them: rot with its flips, pinned to the
/// log record it hit in `image` (the crash image; `holds_flips` as for
/// [`PlannedDamage::pinned_to_record`]) when it hit one.
pub fn planned_faults(
    faults: &[FaultRecord],
    image: Option<&DiskImage>,
    holds_flips: bool,
) -> Vec<PlannedFault> {
    faults
        .iter()
        .map(|fault| {
            let flips = fault.bit_flips();
            PlannedFault {
                call: fault.index,
                kind: fault.kind.name().to_string(),
                rot: (!flips.is_empty()).then(|| {
                    let damage = PlannedDamage {
                        file: fault.file.clone(),
                        flips,
                        record: None,
                    };
                    match image {
                        Some(image) => damage.pinned_to_record(image, holds_flips),
                        None => damage,
                    }
                }),
            }
        })
        .collect()
}

/// Sizes for the before/after report of `shrink`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScheduleSize {
    pub phases: usize,
    pub transactions: usize,
    pub writes: usize,
    pub reads: usize,
    pub faults: usize,
}

impl Schedule {
    pub fn load(path: &Path) -> Result<Schedule, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    pub fn size(&self) -> ScheduleSize {
        let mut size = ScheduleSize {
            phases: self.phases.len(),
            ..ScheduleSize::default()
        };
        let operations = self
            .phases
            .iter()
            .flat_map(|phase| phase.clients.iter())
            .chain(self.quiet.iter())
            .flatten();
        for operation in operations {
            match operation {
                Operation::Commit { writes, .. } => {
                    size.transactions += 1;
                    size.writes += writes.len();
                }
                Operation::Get { .. } | Operation::Scan { .. } => size.reads += 1,
            }
        }
        size.faults = self
            .phases
            .iter()
            .map(|phase| phase.faults.len() + phase.damage.len() + phase.recovery_faults.len())
            .sum();
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(write_lens: &[usize], namespace: usize) -> CrashPoint {
        use crate::fs::{InodeId, NamespaceOp, PendingOp};
        use std::sync::Arc;
        CrashPoint {
            files: Default::default(),
            pending: write_lens
                .iter()
                .enumerate()
                .map(|(seq, &len)| PendingOp {
                    seq: seq as u64,
                    file: "data".into(),
                    inode: InodeId(1),
                    op: DataOp::Write {
                        offset: 0,
                        data: Arc::new(vec![7; len]),
                    },
                    acknowledged: false,
                })
                .collect(),
            namespace: (0..namespace)
                .map(|seq| NamespaceOp::Remove {
                    seq: seq as u64,
                    name: "gone".into(),
                })
                .collect(),
            sector_size_bytes: 512,
            durable_names: Default::default(),
            inodes: Default::default(),
            unreadable: Default::default(),
        }
    }

    /// A crash point with one unsynced write per (file, length), at offset 0 of its file.
    fn point_in(writes: &[(&str, usize)], namespace: usize) -> CrashPoint {
        let mut point = point(&[], namespace);
        point.pending = writes
            .iter()
            .enumerate()
            .map(|(seq, &(file, len))| crate::fs::PendingOp {
                seq: seq as u64,
                file: file.into(),
                inode: crate::fs::InodeId(seq as u64),
                op: DataOp::Write {
                    offset: 0,
                    data: std::sync::Arc::new(vec![7; len]),
                },
                acknowledged: false,
            })
            .collect();
        point
    }

    #[test]
    fn explicit_fates_round_trip_and_refuse_misplaced_missing_sectors() {
        // Proves crash decisions survive the text form and come back exactly where they fit,
        // and that a file cannot end before a sector that landed.
        let decisions = CrashDecisions {
            fates: vec![
                WriteFate::Survives,
                WriteFate::Vanishes,
                WriteFate::Torn(vec![
                    SectorFate::Old,
                    SectorFate::New,
                    SectorFate::Garbage(7),
                ]),
                WriteFate::Torn(vec![SectorFate::New, SectorFate::Missing]),
            ],
            namespace_applied: vec![true],
            order: vec![2, 0, 3, 1],
        };
        let recorded = point(&[10, 10, 1536, 1024], 1);
        let fates = Fates::explicit(&decisions, &recorded);
        assert_eq!(fates.decisions(&recorded), Some(decisions.clone()));
        let json = serde_json::to_string(&fates).unwrap();
        assert_eq!(serde_json::from_str::<Fates>(&json).unwrap(), fates);
        // A missing sector before a landed one is no place for a file to end.
        let mut landed_after_missing = decisions;
        landed_after_missing.fates[3] = WriteFate::Torn(vec![SectorFate::Missing, SectorFate::New]);
        assert_eq!(
            Fates::explicit(&landed_after_missing, &recorded).decisions(&recorded),
            None
        );
    }

    #[test]
    fn misfit_fates_follow_each_file_from_its_last_write() {
        // Proves that with work removed the log's last write keeps its cut and the data
        // file's keeps its fate, torn fates are resized to the sectors a write now touches,
        // earlier writes vanish, and namespace operations are matched from the last one.
        let recorded = point_in(&[("log-00000000000000000000", 600), ("data", 10)], 2);
        let decisions = CrashDecisions {
            fates: vec![
                WriteFate::Torn(vec![SectorFate::New, SectorFate::Missing]),
                WriteFate::Survives,
            ],
            namespace_applied: vec![true, false],
            order: vec![1, 0],
        };
        let fates = Fates::explicit(&decisions, &recorded);
        let shrunk = point_in(
            &[
                ("log-00000000000000000512", 100),
                ("data", 10),
                ("log-00000000000000000512", 1500),
            ],
            1,
        );
        let refitted = fates.decisions(&shrunk).unwrap();
        assert_eq!(
            refitted.fates,
            vec![
                WriteFate::Vanishes,
                WriteFate::Survives,
                WriteFate::Torn(vec![SectorFate::New, SectorFate::New, SectorFate::Missing]),
            ]
        );
        assert_eq!(refitted.namespace_applied, vec![false]);
        assert_eq!(refitted.order, vec![0, 1, 2]);
    }

    #[test]
    fn planned_damage_flips_and_names_its_bits() {
        // Proves damage flips exactly its bits inside the file, ignores offsets past its end,
        // and says in words which bits of which bytes it flipped.
        let damage = PlannedDamage {
            file: "data".into(),
            flips: vec![(1, 0x10), (9, 0x01)],
            record: None,
        };
        let mut image = crate::fs::DiskImage::default();
        image.files.insert("data".into(), vec![0x30; 4]);
        damage.apply(&mut image);
        assert_eq!(image.files["data"], vec![0x30, 0x20, 0x30, 0x30]);
        assert_eq!(
            damage.describe(),
            "bits 0x10 of byte 1, bits 0x01 of byte 9 of data"
        );
    }

    /// A log of one segment starting at `start`, holding commits of the given value lengths.
    fn log_image(start: u64, values: &[usize]) -> crate::fs::DiskImage {
        let mut bytes = Vec::new();
        for (index, &len) in values.iter().enumerate() {
            let commit = record::Record::Commit {
                txn_id: index as u64,
                writes: vec![crashpoint::Write::put("key", vec![b'v'; len])],
            };
            record::encode(Lsn(start + bytes.len() as u64), &commit, &mut bytes);
        }
        let mut image = crate::fs::DiskImage::default();
        image
            .files
            .insert(crashpoint::log::segment_name(start), bytes);
        image
    }

    #[test]
    fn log_damage_stays_on_its_record_when_the_log_moves() {
        // Proves rot in a commit record is pinned to that record counted from the log's end,
        // and lands on the same byte of the same record in a log that starts elsewhere and
        // holds other commits before it.
        let name = crashpoint::log::segment_name(0);
        let mut image = log_image(0, &[10, 20, 30]);
        let third = image.files[&name].len() as u64 - 17 - 12 - 5 - 3 - 4 - 30;
        let rot = PlannedDamage {
            file: name.clone(),
            flips: vec![(third + 40, 0x04)],
            record: None,
        };
        rot.apply(&mut image);
        let pinned = rot.pinned_to_record(&image, true);
        assert_eq!(pinned.record, Some(0));
        assert_eq!(pinned.flips, vec![(40, 0x04)]);
        assert_eq!(
            pinned.describe(),
            "bits 0x04 of byte 40 of the last commit record"
        );
        // The same rot met by recovery (the image does not hold it yet) pins the same way.
        assert_eq!(
            rot.pinned_to_record(&log_image(0, &[10, 20, 30]), false),
            pinned
        );

        let mut moved = log_image(4096, &[5, 30]);
        let segment = crashpoint::log::segment_name(4096);
        let last = moved.files[&segment].len() as u64 - 17 - 12 - 5 - 3 - 4 - 30;
        let (file, flips) = pinned.apply(&mut moved).unwrap();
        assert_eq!((file, flips), (segment, vec![(last + 40, 0x04)]));
        // Damage outside the log is left as it was.
        let page = PlannedDamage {
            file: "data".into(),
            flips: vec![(9, 1)],
            record: None,
        };
        assert_eq!(page.pinned_to_record(&image, true), page);
    }

    #[test]
    fn schedules_round_trip_through_json() {
        // Proves a schedule written by shrink reads back the same.
        let schedule = Schedule {
            phases: vec![PhaseSchedule {
                clients: vec![vec![
                    Operation::Commit {
                        think_us: 5,
                        writes: vec![
                            ScheduledWrite {
                                key: "key000001".into(),
                                value: Some("v".into()),
                            },
                            ScheduledWrite {
                                key: "key000002".into(),
                                value: None,
                            },
                        ],
                    },
                    Operation::Get {
                        think_us: 0,
                        key: "key000001".into(),
                    },
                ]],
                faults: vec![PlannedFault {
                    call: 12,
                    kind: "lying-fsync".into(),
                    rot: None,
                }],
                crash: PlannedCrash::Step {
                    name: "header-written".into(),
                    skip: 1,
                    then: 2,
                },
                fates: Fates::AllVanish,
                damage: vec![PlannedDamage {
                    file: "log-00000000000000004096".into(),
                    flips: vec![(30, 0x10)],
                    record: Some(2),
                }],
                recovery_faults: vec![PlannedFault {
                    call: 5,
                    kind: "misdirected-read".into(),
                    rot: None,
                }],
            }],
            quiet: vec![vec![]],
        };
        let json = serde_json::to_string_pretty(&schedule).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), schedule);
        assert_eq!(schedule.size().transactions, 1);
        assert_eq!(
            schedule.phases[0].fault_plan().unwrap().get(&12),
            Some(&FaultKind::LyingFsync)
        );
    }
}
