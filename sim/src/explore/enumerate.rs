//! Which crash states `explore` checks at one crash point, in a fixed order, so that a state
//! has a stable index `K` at its point whatever the state budget is.
//!
//! A crash point has `n` unsynced data operations (issue order) and `m` unsynced namespace
//! operations. The states, in order (a budget takes a prefix of this list):
//!
//! 1. everything lost (the durable image) and everything landed;
//! 2. for each namespace operation: every write landed with that operation undone, and no write
//!    landed with only that operation applied; then no write landed with every namespace
//!    operation applied (states equal to an earlier one, as small points have, are left out);
//! 3. each write torn while every other write landed: prefix, suffix, garbage-sector and cut
//!    tearings;
//! 4. every proper prefix of the writes (an in-order crash);
//! 5. every proper prefix whose last write is torn (the torn tail);
//! 6. every write but one (write `i` lost, the later ones landed: reordering);
//! 7. with `n <= 12` every other subset of the writes; above that a seeded sample of subsets;
//! 8. with `n <= 12` every other (subset, surviving write, tearing) triple; above that a seeded
//!    sample of them.
//!
//! Namespace operations are all applied from step 3 on. Surviving writes land in issue order:
//! a reordering that matters leaves a subset, which some state lists. A tearing splits a write
//! at sector granularity: prefix (the first half of its sectors new, the rest old), suffix (the
//! first half old, the rest new), garbage sector (the first sector garbage, the rest new), cut
//! (the first half new, and the file ends there: its size update stopped inside the write, so
//! a write that appends leaves the file ending part-way through it). A write of one sector can
//! only be garbage (cutting it loses it whole, a state step 6 or 7 lists); a `SetLen` or empty
//! write cannot tear. On a disk that writes a byte whole or not at all (`crash.garbage = false`,
//! what redb and SQLite assume) there is no garbage-sector tearing, and a one-sector write
//! cannot tear.
//!
//! What is not enumerated: tearings other than those four, surviving writes landing out of
//! issue order over each other (overlapping writes in a different order), namespace subsets
//! beyond one operation undone or applied alone, and damage at rest (rot, latent sector errors:
//! a state holds what the run's disk had, and its recovery reads with faults off).

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fs::{CrashDecisions, CrashPoint, SectorFate, WriteFate};

/// Up to this many unsynced writes, every subset is enumerated (4,096 subsets).
pub const EXHAUSTIVE_WRITES_MAX: usize = 12;
/// Above [`EXHAUSTIVE_WRITES_MAX`], how many subsets (and, separately, torn subsets) are drawn.
pub const SAMPLED_SUBSETS: u64 = 4096;

/// How one write tears at the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tearing {
    /// The first half of its sectors new, the rest old.
    Prefix,
    /// The first half of its sectors old, the rest new.
    Suffix,
    /// The first sector garbage, the rest new.
    GarbageSector,
    /// The first half of its sectors new, and the file ends there.
    Cut,
}

impl Tearing {
    pub fn name(self) -> &'static str {
        match self {
            Tearing::Prefix => "prefix",
            Tearing::Suffix => "suffix",
            Tearing::GarbageSector => "garbage sector",
            Tearing::Cut => "cut",
        }
    }
}

const TEARINGS_MULTI_SECTOR: &[Tearing] = &[
    Tearing::Prefix,
    Tearing::Suffix,
    Tearing::GarbageSector,
    Tearing::Cut,
];
const TEARINGS_ONE_SECTOR: &[Tearing] = &[Tearing::GarbageSector];
/// On a disk that writes a byte whole or not at all (`crash.garbage = false`): no garbage, so
/// a one-sector write cannot tear.
const TEARINGS_MULTI_SECTOR_WHOLE: &[Tearing] = &[Tearing::Prefix, Tearing::Suffix, Tearing::Cut];

/// Which unsynced namespace operations a state applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceChoice {
    All,
    None,
    AllBut(usize),
    Only(usize),
}

/// One crash state of a point, in the explorer's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSpec {
    /// Per unsynced data operation (issue order): does it reach the disk.
    pub survivors: Vec<bool>,
    /// A surviving write that lands torn, and how.
    pub torn: Option<(usize, Tearing)>,
    pub namespace: NamespaceChoice,
}

/// What enumeration needs to know of a crash point.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Sectors each unsynced data operation touches (0 for a `SetLen`).
    sectors: Vec<u64>,
    namespace_operations: usize,
    /// Seeds the sampled subsets and the garbage sectors of this point.
    seed: u64,
    /// Torn sectors may hold garbage (the scenario's `crash.garbage`).
    garbage: bool,
}

impl Shape {
    /// The shape of `point`; with `garbage` off, no tearing leaves a garbage sector (the
    /// scenario's disk writes a byte whole or not at all).
    pub fn of(point: &CrashPoint, seed: u64, garbage: bool) -> Shape {
        let sectors = point
            .pending
            .iter()
            .map(|pending| {
                let range = pending.op.sectors_touched(point.sector_size_bytes);
                range.end - range.start
            })
            .collect();
        Shape {
            sectors,
            namespace_operations: point.namespace.len(),
            seed,
            garbage,
        }
    }

    pub fn writes(&self) -> usize {
        self.sectors.len()
    }

    fn tearings(&self, write: usize) -> &'static [Tearing] {
        match (self.sectors[write], self.garbage) {
            (0, _) | (1, false) => &[],
            (1, true) => TEARINGS_ONE_SECTOR,
            (_, true) => TEARINGS_MULTI_SECTOR,
            (_, false) => TEARINGS_MULTI_SECTOR_WHOLE,
        }
    }

    fn exhaustive(&self) -> bool {
        self.writes() <= EXHAUSTIVE_WRITES_MAX
    }

    /// How many states [`Shape::states`] yields: the same sum, stage by stage, in closed form.
    pub fn state_count(&self) -> u64 {
        let n = self.writes();
        let weights: Vec<u64> = (0..n)
            .map(|write| self.tearings(write).len() as u64)
            .collect();
        let weight_total: u64 = weights.iter().sum();
        let extremes = self.extremes().len() as u64;
        let single_tears = weight_total;
        let prefixes = n.saturating_sub(1) as u64;
        let torn_tails = weight_total - weights.last().copied().unwrap_or(0);
        let all_but_one = n.saturating_sub(1) as u64;
        let (subsets, torn_subsets) = if self.exhaustive() {
            let subsets = if n >= 2 {
                (1u64 << n) - 2 * n as u64
            } else {
                0
            };
            let torn_subsets = if n >= 1 {
                weight_total * (1u64 << (n - 1)) - weight_total - torn_tails
            } else {
                0
            };
            (subsets, torn_subsets)
        } else {
            let torn = if weight_total > 0 { SAMPLED_SUBSETS } else { 0 };
            (SAMPLED_SUBSETS, torn)
        };
        extremes + single_tears + prefixes + torn_tails + all_but_one + subsets + torn_subsets
    }

    /// Every state of the point, in index order (module docs). Lazy: a budget takes a prefix.
    pub fn states(&self) -> impl Iterator<Item = StateSpec> + '_ {
        let n = self.writes();
        let single_tears = (0..n).flat_map(move |write| {
            self.tearings(write)
                .iter()
                .map(move |&tearing| spec(vec![true; n], Some((write, tearing)), All))
        });
        let prefixes = (1..n).map(move |len| spec(prefix(n, len), None, All));
        let torn_tails = (1..n).flat_map(move |len| {
            self.tearings(len - 1)
                .iter()
                .map(move |&tearing| spec(prefix(n, len), Some((len - 1, tearing)), All))
        });
        let all_but_one = (0..n.saturating_sub(1)).map(move |lost| {
            let mut survivors = vec![true; n];
            survivors[lost] = false;
            spec(survivors, None, All)
        });
        self.extremes()
            .into_iter()
            .chain(single_tears)
            .chain(prefixes)
            .chain(torn_tails)
            .chain(all_but_one)
            .chain(self.other_subsets())
            .chain(self.torn_subsets())
    }

    /// Stages 1 and 2, and the empty prefix with every namespace operation applied, without
    /// the duplicates small points have (with no writes, landing all equals losing all).
    fn extremes(&self) -> Vec<StateSpec> {
        let n = self.writes();
        let m = self.namespace_operations;
        let mut candidates = vec![
            spec(vec![false; n], None, NamespaceChoice::None),
            spec(vec![true; n], None, All),
        ];
        for op in 0..m {
            candidates.push(spec(vec![true; n], None, NamespaceChoice::AllBut(op)));
            candidates.push(spec(vec![false; n], None, NamespaceChoice::Only(op)));
        }
        candidates.push(spec(vec![false; n], None, All));
        let mut seen: Vec<(bool, Vec<bool>)> = Vec::new();
        candidates.retain(|candidate| {
            let key = (
                n > 0 && candidate.survivors[0],
                namespace_applied(candidate.namespace, m),
            );
            let fresh = !seen.contains(&key);
            seen.push(key);
            fresh
        });
        candidates
    }

    /// Stage 7: the subsets not listed before it.
    fn other_subsets(&self) -> Box<dyn Iterator<Item = StateSpec> + '_> {
        let n = self.writes();
        if self.exhaustive() {
            let full = (1u64 << n) - 1;
            Box::new(
                (1..full)
                    .filter(move |&mask| !is_prefix_mask(mask) && !is_all_but_one(mask, n))
                    .map(move |mask| spec(mask_survivors(mask, n), None, All)),
            )
        } else {
            let mut rng = self.rng(1);
            Box::new((0..SAMPLED_SUBSETS).map(move |_| {
                let survivors = (0..n).map(|_| rng.gen_bool(0.5)).collect();
                spec(survivors, None, All)
            }))
        }
    }

    /// Stage 8: the torn subsets not listed before it.
    fn torn_subsets(&self) -> Box<dyn Iterator<Item = StateSpec> + '_> {
        let n = self.writes();
        if self.exhaustive() {
            let full = (1u64 << n) - 1;
            Box::new((1..full).flat_map(move |mask| {
                (0..n)
                    .filter(move |&write| mask & (1 << write) != 0)
                    .filter(move |&write| !(is_prefix_mask(mask) && mask == (2 << write) - 1))
                    .flat_map(move |write| {
                        self.tearings(write).iter().map(move |&tearing| {
                            spec(mask_survivors(mask, n), Some((write, tearing)), All)
                        })
                    })
            }))
        } else {
            let tearable: Vec<usize> = (0..n)
                .filter(|&write| !self.tearings(write).is_empty())
                .collect();
            if tearable.is_empty() {
                return Box::new(std::iter::empty());
            }
            let mut rng = self.rng(2);
            Box::new((0..SAMPLED_SUBSETS).map(move |_| {
                let write = tearable[rng.gen_range(0..tearable.len())];
                let tearings = self.tearings(write);
                let tearing = tearings[rng.gen_range(0..tearings.len())];
                let mut survivors: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
                survivors[write] = true;
                spec(survivors, Some((write, tearing)), All)
            }))
        }
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        rng
    }

    /// The decisions that make `spec`'s image from `point` (the point this shape was made of).
    pub fn decisions(&self, point: &CrashPoint, spec: &StateSpec) -> CrashDecisions {
        let n = self.writes();
        assert_eq!(point.pending.len(), n, "the shape belongs to another point");
        assert_eq!(
            spec.survivors.len(),
            n,
            "the state belongs to another point"
        );
        let mut fates: Vec<WriteFate> = spec
            .survivors
            .iter()
            .map(|&survives| {
                if survives {
                    WriteFate::Survives
                } else {
                    WriteFate::Vanishes
                }
            })
            .collect();
        if let Some((write, tearing)) = spec.torn {
            assert!(spec.survivors[write], "only a surviving write can tear");
            fates[write] = WriteFate::Torn(self.sector_fates(write, tearing));
        }
        CrashDecisions {
            fates,
            namespace_applied: namespace_applied(spec.namespace, self.namespace_operations),
            order: (0..n).collect(),
        }
    }

    fn sector_fates(&self, write: usize, tearing: Tearing) -> Vec<SectorFate> {
        let sectors = self.sectors[write] as usize;
        assert!(
            self.tearings(write).contains(&tearing),
            "write {write} of {sectors} sectors cannot tear as {}",
            tearing.name()
        );
        let half = sectors / 2;
        (0..sectors)
            .map(|sector| match tearing {
                Tearing::Prefix if sector < half => SectorFate::New,
                Tearing::Prefix => SectorFate::Old,
                Tearing::Suffix if sector < half => SectorFate::Old,
                Tearing::Suffix => SectorFate::New,
                Tearing::GarbageSector if sector == 0 => {
                    SectorFate::Garbage(self.seed ^ (write as u64 + 1).wrapping_mul(GOLDEN))
                }
                Tearing::GarbageSector => SectorFate::New,
                Tearing::Cut if sector < half => SectorFate::New,
                Tearing::Cut => SectorFate::Missing,
            })
            .collect()
    }
}

/// Spreads seeds of neighbouring points and writes apart (2^64 / the golden ratio).
pub const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

use NamespaceChoice::All;

fn spec(
    survivors: Vec<bool>,
    torn: Option<(usize, Tearing)>,
    namespace: NamespaceChoice,
) -> StateSpec {
    StateSpec {
        survivors,
        torn,
        namespace,
    }
}

fn namespace_applied(choice: NamespaceChoice, namespace_operations: usize) -> Vec<bool> {
    (0..namespace_operations)
        .map(|op| match choice {
            NamespaceChoice::All => true,
            NamespaceChoice::None => false,
            NamespaceChoice::AllBut(undone) => op != undone,
            NamespaceChoice::Only(applied) => op == applied,
        })
        .collect()
}

fn prefix(n: usize, len: usize) -> Vec<bool> {
    (0..n).map(|write| write < len).collect()
}

fn mask_survivors(mask: u64, n: usize) -> Vec<bool> {
    (0..n).map(|write| mask & (1 << write) != 0).collect()
}

fn is_prefix_mask(mask: u64) -> bool {
    mask & (mask + 1) == 0
}

fn is_all_but_one(mask: u64, n: usize) -> bool {
    let missing = !mask & ((1u64 << n) - 1);
    missing.count_ones() == 1
}

/// `0-3,5,7-8`: indices as ranges.
fn format_indices(indices: impl Iterator<Item = usize>) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for index in indices {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == index => *end = index,
            _ => ranges.push((index, index)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect();
    parts.join(",")
}

impl fmt::Display for StateSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.survivors.len();
        let landed = self.survivors.iter().filter(|&&survives| survives).count();
        if landed == n {
            write!(formatter, "all {n} unsynced writes land")?;
        } else if landed == 0 {
            write!(formatter, "none of {n} unsynced writes lands")?;
        } else {
            let indices = (0..n).filter(|&write| self.survivors[write]);
            write!(formatter, "writes {} of {n} land", format_indices(indices))?;
        }
        if let Some((write, tearing)) = self.torn {
            write!(formatter, ", write {write} torn ({})", tearing.name())?;
        }
        match self.namespace {
            NamespaceChoice::All => write!(formatter, ", namespace operations applied"),
            NamespaceChoice::None => write!(formatter, ", namespace operations undone"),
            NamespaceChoice::AllBut(op) => write!(formatter, ", namespace operation {op} undone"),
            NamespaceChoice::Only(op) => {
                write!(formatter, ", only namespace operation {op} applied")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sectors: &[u64], namespace_operations: usize) -> Shape {
        Shape {
            sectors: sectors.to_vec(),
            namespace_operations,
            seed: 7,
            garbage: true,
        }
    }

    #[test]
    fn counts_match_the_enumeration_and_states_are_distinct() {
        // Proves the closed-form count equals the lazy list, and no state is listed twice.
        let cases: Vec<(Vec<u64>, usize)> = vec![
            (vec![], 0),
            (vec![], 2),
            (vec![0], 0),
            (vec![1], 0),
            (vec![3], 1),
            (vec![2, 0], 0),
            (vec![1, 4, 0, 2, 3], 2),
            (vec![2; 12], 1),
            (vec![1; 13], 0),
            (vec![0; 20], 3),
        ];
        let garbage_either = cases
            .iter()
            .flat_map(|case| [(case.clone(), true), (case.clone(), false)]);
        for ((sectors, namespace_operations), garbage) in garbage_either {
            let shape = Shape {
                garbage,
                ..shape(&sectors, namespace_operations)
            };
            let states: Vec<StateSpec> = shape.states().collect();
            if !garbage {
                assert!(
                    states
                        .iter()
                        .all(|state| !matches!(state.torn, Some((_, Tearing::GarbageSector)))),
                    "a garbage sector on a disk without garbage for {sectors:?}"
                );
            }
            assert_eq!(
                states.len() as u64,
                shape.state_count(),
                "count for {sectors:?} with {namespace_operations} namespace operations"
            );
            if shape.exhaustive() {
                let effects: std::collections::HashSet<_> = states
                    .iter()
                    .map(|state| {
                        (
                            state.survivors.clone(),
                            state.torn,
                            namespace_applied(state.namespace, namespace_operations),
                        )
                    })
                    .collect();
                assert_eq!(
                    effects.len(),
                    states.len(),
                    "a state is listed twice for {sectors:?}"
                );
            }
        }
    }

    #[test]
    fn order_starts_with_the_extremes_and_is_stable() {
        // Proves K = 0 is the all-lost state, K = 1 the all-landed one, and a second pass
        // yields the same list (the sampled stages included).
        let shape = shape(&[2; 14], 1);
        let first: Vec<StateSpec> = shape.states().collect();
        assert_eq!(first[0].survivors, vec![false; 14]);
        assert_eq!(first[0].namespace, NamespaceChoice::None);
        assert_eq!(first[1].survivors, vec![true; 14]);
        assert_eq!(first[1].namespace, NamespaceChoice::All);
        assert_eq!(first, shape.states().collect::<Vec<_>>());
    }

    #[test]
    fn tearings_split_sectors_as_documented() {
        // Proves prefix, suffix, garbage and cut tearings give the sector fates the docs
        // promise.
        let shape = shape(&[4, 1], 0);
        assert_eq!(
            shape.sector_fates(0, Tearing::Prefix),
            [
                SectorFate::New,
                SectorFate::New,
                SectorFate::Old,
                SectorFate::Old
            ]
        );
        assert_eq!(
            shape.sector_fates(0, Tearing::Suffix),
            [
                SectorFate::Old,
                SectorFate::Old,
                SectorFate::New,
                SectorFate::New
            ]
        );
        let garbage = shape.sector_fates(0, Tearing::GarbageSector);
        assert!(matches!(garbage[0], SectorFate::Garbage(_)));
        assert_eq!(garbage[1..], [SectorFate::New; 3]);
        assert_eq!(
            shape.sector_fates(0, Tearing::Cut),
            [
                SectorFate::New,
                SectorFate::New,
                SectorFate::Missing,
                SectorFate::Missing
            ]
        );
        assert_eq!(shape.tearings(1), [Tearing::GarbageSector]);
    }

    #[test]
    fn indices_print_as_ranges() {
        // Proves the state description folds consecutive write indices into ranges.
        assert_eq!(format_indices([0, 1, 2, 5, 7, 8].into_iter()), "0-2,5,7-8");
        assert_eq!(format_indices(std::iter::empty()), "");
    }
}
