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

use crate::fs::{
    missing_is_a_suffix, CrashDecisions, CrashPoint, DataOp, FaultKind, SectorFate, WriteFate,
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
}

/// Bits flipped in one file of a crash image: (file offset, mask) pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedDamage {
    pub file: String,
    pub flips: Vec<(u64, u8)>,
}

impl PlannedDamage {
    /// The flips in words: `bits 0x10 of byte 9250 of data, ...`.
    pub fn describe(&self) -> String {
        let flips: Vec<String> = self
            .flips
            .iter()
            .map(|(offset, mask)| format!("bits {mask:#04x} of byte {offset}"))
            .collect();
        format!("{} of {}", flips.join(", "), self.file)
    }

    /// Applies the flips that fall inside the image's copy of the file.
    pub fn apply(&self, image: &mut crate::fs::DiskImage) {
        if let Some(bytes) = image.files.get_mut(&self.file) {
            for &(offset, mask) in &self.flips {
                if let Some(byte) = bytes.get_mut(offset as usize) {
                    *byte ^= mask;
                }
            }
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

/// What ends a crash phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum PlannedCrash {
    /// Right after the `skip + 1`-th occurrence of a named checkpoint step.
    Step { name: String, skip: u32 },
    /// After the `operations`-th I/O call inside a checkpoint window.
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
    /// Exactly these decisions; used only when they fit the crash point, else drawn.
    Explicit {
        writes: Vec<String>,
        namespace_applied: Vec<bool>,
        order: Vec<usize>,
    },
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
    pub fn explicit(decisions: &CrashDecisions) -> Fates {
        Fates::Explicit {
            writes: decisions.fates.iter().map(fate_text).collect(),
            namespace_applied: decisions.namespace_applied.clone(),
            order: decisions.order.clone(),
        }
    }

    /// The explicit decisions, if they parse and fit the crash point: one fate per unsynced
    /// operation, a torn fate only for a write with one sector fate per sector it touches, one
    /// flag per namespace operation, and an order that is a permutation.
    pub fn decisions(&self, point: &CrashPoint) -> Option<CrashDecisions> {
        let Fates::Explicit {
            writes,
            namespace_applied,
            order,
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
        fits.then(|| CrashDecisions {
            fates,
            namespace_applied: namespace_applied.clone(),
            order: order.clone(),
        })
    }
}

impl PhaseSchedule {
    /// The fault plan for this phase's disk, or an error naming an unknown kind.
    pub fn fault_plan(&self) -> Result<BTreeMap<u64, FaultKind>, String> {
        self.faults
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
            .map(|phase| phase.faults.len() + phase.damage.len())
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

    #[test]
    fn explicit_fates_round_trip_and_refuse_misfits() {
        // Proves crash decisions survive the text form and are used only where they fit,
        // down to the sector count of each torn write.
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
        let fates = Fates::explicit(&decisions);
        assert_eq!(
            fates.decisions(&point(&[10, 10, 1536, 1024], 1)),
            Some(decisions.clone())
        );
        assert_eq!(fates.decisions(&point(&[10, 1536, 1024], 1)), None);
        assert_eq!(fates.decisions(&point(&[10, 10, 1536, 1024], 0)), None);
        // Same counts, but the torn write now spans one sector, not three.
        assert_eq!(fates.decisions(&point(&[10, 10, 100, 1024], 1)), None);
        // A missing sector before a landed one is no place for a file to end.
        let mut landed_after_missing = decisions;
        landed_after_missing.fates[3] = WriteFate::Torn(vec![SectorFate::Missing, SectorFate::New]);
        assert_eq!(
            Fates::explicit(&landed_after_missing).decisions(&point(&[10, 10, 1536, 1024], 1)),
            None
        );
        let json = serde_json::to_string(&fates).unwrap();
        assert_eq!(serde_json::from_str::<Fates>(&json).unwrap(), fates);
    }

    #[test]
    fn planned_damage_flips_and_names_its_bits() {
        // Proves damage flips exactly its bits inside the file, ignores offsets past its end,
        // and says in words which bits of which bytes it flipped.
        let damage = PlannedDamage {
            file: "data".into(),
            flips: vec![(1, 0x10), (9, 0x01)],
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
                },
                fates: Fates::AllVanish,
                damage: vec![PlannedDamage {
                    file: "data".into(),
                    flips: vec![(9000, 0x10)],
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
