//! Seed selection on the command line: a range `A..B` (half-open), `A..=B` (inclusive) or a
//! single seed `N`, any u64 included, and an optional partition of it for one machine of many:
//! a shard `K/N` keeps the seeds with `seed % N == K`; cargo-nextest's `hash:K/N` (K from 1)
//! keeps the seeds whose [`seed_hash`] is `K - 1` modulo N. The shard index may come from the
//! environment a job engine sets (`JOB_COMPLETION_INDEX` of a Kubernetes Indexed Job).
//!
//! A shard's seeds are computed arithmetically rather than collected, so a shard of a huge
//! range costs nothing until its seeds run. A hash partition cannot be computed that way: it
//! hashes every seed of the range once, up front, and keeps a count per block of seeds, so it
//! is bounded to ranges of [`HASH_PARTITION_SEEDS_MAX`] seeds.

use std::fmt;
use std::str::FromStr;

/// Seeds `start..=last`. Kept inclusive so that the last u64 seed is expressible. Reports
/// write it as the command line spells it (`"0..100"`), so it can be pasted back into `--seeds`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct SeedRange {
    pub start: u64,
    pub last: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedRangeError {
    #[error(
        "`{0}` is not a seed range: expected `A..B` (half-open), `A..=B` (inclusive) or a \
         single seed `N`, each a number from 0 to 18446744073709551615"
    )]
    Syntax(String),
    #[error("seed range `{0}` is empty: the end must be greater than the start")]
    Empty(String),
    #[error("seed range `{0}` holds 2^64 seeds; run at most 2^64 - 1 at once")]
    TooLarge(String),
}

impl SeedRange {
    /// `count` seeds from `start`; None if that runs past the last u64 or `count` is 0.
    pub fn starting_at(start: u64, count: u64) -> Option<SeedRange> {
        let last = start.checked_add(count.checked_sub(1)?)?;
        Some(SeedRange { start, last })
    }

    /// How many seeds the range holds (never 0; at most u64::MAX, see `TooLarge`).
    pub fn count(&self) -> u64 {
        self.last - self.start + 1
    }
}

impl FromStr for SeedRange {
    type Err = SeedRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || SeedRangeError::Syntax(text.to_string());
        let empty = || SeedRangeError::Empty(text.to_string());
        let number = |part: &str| part.trim().parse::<u64>().map_err(|_| syntax());
        let range = if let Some((start, last)) = text.split_once("..=") {
            SeedRange {
                start: number(start)?,
                last: number(last)?,
            }
        } else if let Some((start, end)) = text.split_once("..") {
            let (start, end) = (number(start)?, number(end)?);
            SeedRange {
                start,
                last: end
                    .checked_sub(1)
                    .filter(|last| *last >= start)
                    .ok_or_else(empty)?,
            }
        } else {
            let seed = number(text)?;
            SeedRange {
                start: seed,
                last: seed,
            }
        };
        if range.last < range.start {
            return Err(empty());
        }
        if range.start == 0 && range.last == u64::MAX {
            return Err(SeedRangeError::TooLarge(text.to_string()));
        }
        Ok(range)
    }
}

impl From<SeedRange> for String {
    fn from(range: SeedRange) -> String {
        range.to_string()
    }
}

impl TryFrom<String> for SeedRange {
    type Error = SeedRangeError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last.checked_add(1) {
            _ if self.start == self.last => write!(formatter, "{}", self.start),
            Some(end) => write!(formatter, "{}..{end}", self.start),
            None => write!(formatter, "{}..={}", self.start, self.last),
        }
    }
}

/// Shard `index` of `count`: the seeds with `seed % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`{0}` is not a shard: expected `K/N` with K < N, for example `0/4`")]
    Syntax(String),
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let index: u64 = index.trim().parse().map_err(|_| syntax())?;
        let count: u64 = count.trim().parse().map_err(|_| syntax())?;
        if count == 0 || index >= count {
            return Err(syntax());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

/// `--partition hash:K/N`, named as cargo-nextest names it: K counts from 1 to N, and the
/// partition keeps the seeds with `seed_hash(seed) % N == K - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashPartition {
    /// K, from 1 to `count`.
    pub number: u64,
    pub count: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashPartitionError {
    #[error(
        "`{0}` is not a partition: expected `hash:K/N` with K from 1 to N, for example `hash:1/4`"
    )]
    Syntax(String),
    #[error(
        "`{text}`: nextest's `count:` deals a list out by position; for a seed range, \
         `--shard {index}/{count}` does that by seed (seed % N == K, K from 0)"
    )]
    Count {
        text: String,
        index: u64,
        count: u64,
    },
}

impl FromStr for HashPartition {
    type Err = HashPartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || HashPartitionError::Syntax(text.to_string());
        let (kind, fraction) = text.split_once(':').ok_or_else(syntax)?;
        let (number, count) = fraction.split_once('/').ok_or_else(syntax)?;
        let number: u64 = number.trim().parse().map_err(|_| syntax())?;
        let count: u64 = count.trim().parse().map_err(|_| syntax())?;
        if number == 0 || number > count {
            return Err(syntax());
        }
        match kind {
            "hash" => Ok(HashPartition { number, count }),
            "count" => Err(HashPartitionError::Count {
                text: text.to_string(),
                index: number - 1,
                count,
            }),
            _ => Err(syntax()),
        }
    }
}

/// The hash `--partition hash:K/N` partitions by: SplitMix64's output function of the seed
/// (add 0x9e3779b97f4a7c15, then `z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
/// z *= 0x94d049bb133111eb; z ^= z >> 31`, all wrapping). Part of the command line's contract:
/// changing it moves seeds between partitions.
pub fn seed_hash(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The part of a seed range one machine of many runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// `--shard K/N`, or `--shard-count N` with K from `JOB_COMPLETION_INDEX`.
    Shard(Shard),
    /// `--partition hash:K/N`.
    Hash(HashPartition),
}

impl Partition {
    /// Whether this partition runs `seed`.
    pub fn selects(&self, seed: u64) -> bool {
        match self {
            Partition::Shard(shard) => seed % shard.count == shard.index,
            Partition::Hash(hash) => seed_hash(seed) % hash.count == hash.number - 1,
        }
    }
}

/// `K/N` for a shard, `hash:K/N` for a hash partition: as the command line spells them.
impl fmt::Display for Partition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Shard(shard) => write!(formatter, "{shard}"),
            Partition::Hash(hash) => write!(formatter, "hash:{}/{}", hash.number, hash.count),
        }
    }
}

/// The environment variable a Kubernetes Indexed Job sets to each pod's index, 0 to N - 1.
pub const JOB_INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error(
        "--shard-count {count} takes the shard's index from {JOB_INDEX_VARIABLE}, which is not \
         set (a Kubernetes Indexed Job sets it; elsewhere use --shard K/{count})"
    )]
    NoJobIndex { count: u64 },
    #[error("{JOB_INDEX_VARIABLE}={text:?} is not a shard index below --shard-count {count}")]
    BadJobIndex { text: String, count: u64 },
    #[error(
        "--partition {partition} needs a range of at most {HASH_PARTITION_SEEDS_MAX} seeds, \
         since it hashes each one up front; {range} holds {seeds} (--shard K/N has no limit)"
    )]
    HashRangeTooLarge {
        partition: String,
        range: SeedRange,
        seeds: u64,
    },
}

/// The partition the command line asks for: `--shard K/N`, else `--shard-count N` with K from
/// `job_index` (the value of [`JOB_INDEX_VARIABLE`]), else `--partition hash:K/N`, else none.
/// The parser lets at most one of the three through.
pub fn choose_partition(
    shard: Option<Shard>,
    shard_count: Option<u64>,
    hash: Option<HashPartition>,
    job_index: Option<&str>,
) -> Result<Option<Partition>, PartitionError> {
    if let Some(shard) = shard {
        return Ok(Some(Partition::Shard(shard)));
    }
    if let Some(count) = shard_count {
        let text = job_index.ok_or(PartitionError::NoJobIndex { count })?;
        let index = text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|index| *index < count)
            .ok_or_else(|| PartitionError::BadJobIndex {
                text: text.to_string(),
                count,
            })?;
        return Ok(Some(Partition::Shard(Shard { index, count })));
    }
    Ok(hash.map(Partition::Hash))
}

/// The most seeds a range may hold under `--partition hash:K/N`: each is hashed once up front
/// (about 3 s per billion seeds), and a count is kept per [`HASH_BLOCK_SEEDS`] seeds.
pub const HASH_PARTITION_SEEDS_MAX: u64 = 1 << 32;

/// Seeds per block of a hash partition's index: `seed(position)` hashes at most this many.
const HASH_BLOCK_SEEDS: u64 = 4096;

/// The seeds a range and an optional partition select, in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSelection {
    range: SeedRange,
    partition: Option<Partition>,
    count: u64,
    index: Index,
}

/// How [`SeedSelection::seed`] finds a position's seed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Index {
    /// Every `stride`-th seed from `first`.
    Stride { first: u64, stride: u64 },
    /// For each block of [`HASH_BLOCK_SEEDS`] seeds of the range, the selected seeds before it.
    Blocks { selected_before: Vec<u64> },
}

impl SeedSelection {
    /// The seeds of `range` that `shard` selects, or all of them.
    pub fn new(range: SeedRange, shard: Option<Shard>) -> Self {
        let Shard {
            index,
            count: stride,
        } = shard.unwrap_or(Shard { index: 0, count: 1 });
        // The smallest seed >= start with seed % stride == index, computed without overflow.
        let offset = (index + stride - range.start % stride) % stride;
        let count = match range.start.checked_add(offset) {
            Some(first) if first <= range.last => (range.last - first) / stride + 1,
            _ => 0,
        };
        Self {
            range,
            partition: shard.map(Partition::Shard),
            count,
            index: Index::Stride {
                first: range.start.wrapping_add(offset),
                stride,
            },
        }
    }

    /// The seeds of `range` that `partition` selects, or all of them.
    pub fn partitioned(
        range: SeedRange,
        partition: Option<Partition>,
    ) -> Result<Self, PartitionError> {
        let hash = match partition {
            None => return Ok(Self::new(range, None)),
            Some(Partition::Shard(shard)) => return Ok(Self::new(range, Some(shard))),
            Some(Partition::Hash(hash)) => hash,
        };
        if range.count() > HASH_PARTITION_SEEDS_MAX {
            return Err(PartitionError::HashRangeTooLarge {
                partition: Partition::Hash(hash).to_string(),
                range,
                seeds: range.count(),
            });
        }
        let partition = Partition::Hash(hash);
        let blocks = range.count().div_ceil(HASH_BLOCK_SEEDS);
        let mut selected_before = Vec::with_capacity(blocks as usize);
        let mut count = 0u64;
        for block in 0..blocks {
            selected_before.push(count);
            count += block_seeds(range, block)
                .filter(|seed| partition.selects(*seed))
                .count() as u64;
        }
        Ok(Self {
            range,
            partition: Some(partition),
            count,
            index: Index::Blocks { selected_before },
        })
    }

    /// The range the seeds are selected from.
    pub fn range(&self) -> SeedRange {
        self.range
    }

    pub fn partition(&self) -> Option<Partition> {
        self.partition
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `position`-th selected seed; `position < len()`.
    pub fn seed(&self, position: u64) -> u64 {
        assert!(
            position < self.count,
            "seed position {position} out of {}",
            self.count
        );
        match &self.index {
            Index::Stride { first, stride } => first + position * stride,
            Index::Blocks { selected_before } => {
                let block = selected_before.partition_point(|before| *before <= position) - 1;
                let skip = position - selected_before[block];
                let partition = self
                    .partition
                    .expect("a block index belongs to a partition");
                block_seeds(self.range, block as u64)
                    .filter(|seed| partition.selects(*seed))
                    .nth(skip as usize)
                    .expect("the block holds the position's seed, as counted")
            }
        }
    }
}

/// The seeds of block `block` of `range`, [`HASH_BLOCK_SEEDS`] seeds a block.
fn block_seeds(range: SeedRange, block: u64) -> impl Iterator<Item = u64> {
    let first = range.start + block * HASH_BLOCK_SEEDS;
    let last = first.saturating_add(HASH_BLOCK_SEEDS - 1).min(range.last);
    first..=last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, last: u64) -> SeedRange {
        SeedRange { start, last }
    }

    // `A..B` is half-open, `A..=B` inclusive, a single number a one-seed range, and empty or
    // malformed ranges are refused.
    #[test]
    fn seed_ranges_parse() {
        assert_eq!("0..100".parse(), Ok(range(0, 99)));
        assert_eq!("0..=100".parse(), Ok(range(0, 100)));
        assert_eq!("7".parse(), Ok(range(7, 7)));
        assert!(matches!(
            "5..=4".parse::<SeedRange>(),
            Err(SeedRangeError::Empty(_))
        ));
        assert!(matches!(
            "3..0".parse::<SeedRange>(),
            Err(SeedRangeError::Empty(_))
        ));
        assert!(matches!(
            "5..5".parse::<SeedRange>(),
            Err(SeedRangeError::Empty(_))
        ));
        assert!(matches!(
            "a..b".parse::<SeedRange>(),
            Err(SeedRangeError::Syntax(_))
        ));
        assert!(matches!(
            "1..".parse::<SeedRange>(),
            Err(SeedRangeError::Syntax(_))
        ));
        assert!(matches!(
            "-3".parse::<SeedRange>(),
            Err(SeedRangeError::Syntax(_))
        ));
    }

    // Every u64 is a seed: the last one alone, in an inclusive range, and as a half-open end;
    // only a range of all 2^64 seeds is refused, since its size is no u64.
    #[test]
    fn the_largest_seeds_parse_and_print_back() {
        let max = u64::MAX;
        assert_eq!(max.to_string().parse(), Ok(range(max, max)));
        assert_eq!(
            format!("{}..={max}", max - 2).parse(),
            Ok(range(max - 2, max))
        );
        assert_eq!(
            format!("{}..{max}", max - 2).parse(),
            Ok(range(max - 2, max - 1))
        );
        for text in [
            max.to_string(),
            format!("{}..={max}", max - 2),
            "5..9".into(),
        ] {
            let parsed: SeedRange = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert!(matches!(
            format!("0..={max}").parse::<SeedRange>(),
            Err(SeedRangeError::TooLarge(_))
        ));
        assert_eq!(range(max, max).count(), 1);
        let selection = SeedSelection::new(range(max - 2, max), None);
        assert_eq!(selection.len(), 3);
        assert_eq!(selection.seed(2), max);
        assert_eq!(SeedRange::starting_at(max, 1), Some(range(max, max)));
        assert_eq!(SeedRange::starting_at(max, 2), None);
    }

    // A shard needs K < N.
    #[test]
    fn shards_parse() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
    }

    // The arithmetic selection matches filtering the range seed by seed.
    #[test]
    fn selection_matches_filtering() {
        for start in 0..12 {
            for end in start + 1..20 {
                for count in 1..5 {
                    for index in 0..count {
                        let range = SeedRange {
                            start,
                            last: end - 1,
                        };
                        let selection = SeedSelection::new(range, Some(Shard { index, count }));
                        let expected: Vec<u64> =
                            (start..end).filter(|seed| seed % count == index).collect();
                        let found: Vec<u64> = (0..selection.len())
                            .map(|position| selection.seed(position))
                            .collect();
                        assert_eq!(found, expected, "{range} shard {index}/{count}");
                    }
                }
            }
        }
        let whole = SeedSelection::new(range(3, 8), None);
        assert_eq!(whole.len(), 6);
        assert_eq!(whole.seed(0), 3);
    }

    // The hash partitions of a range cover it exactly once, each seed where its hash says, and
    // a position lands on the same seed as filtering the range would give, across block edges.
    #[test]
    fn hash_partitions_cover_a_range_once() {
        let whole = range(5, 3 * HASH_BLOCK_SEEDS + 17);
        let mut seen = Vec::new();
        for number in 1..=3 {
            let partition = Partition::Hash(HashPartition { number, count: 3 });
            let selection = SeedSelection::partitioned(whole, Some(partition)).unwrap();
            let expected: Vec<u64> = (whole.start..=whole.last)
                .filter(|seed| seed_hash(*seed) % 3 == number - 1)
                .collect();
            let found: Vec<u64> = (0..selection.len())
                .map(|position| selection.seed(position))
                .collect();
            assert_eq!(found, expected, "hash:{number}/3");
            // A uniform hash gives each part about a third; far from it means a broken hash.
            assert!(found.len() > 3000 && found.len() < 5300, "{}", found.len());
            seen.extend(found);
        }
        seen.sort_unstable();
        let all: Vec<u64> = (whole.start..=whole.last).collect();
        assert_eq!(seen, all);
    }

    // The documented hash is SplitMix64's: from state S its outputs are seed_hash(S),
    // seed_hash(S + 0x9e3779b97f4a7c15), ...; these are the reference implementation's first
    // outputs from state 1477776061723855037, so anyone can compute a seed's partition.
    #[test]
    fn seed_hash_is_splitmix64() {
        let state: u64 = 1_477_776_061_723_855_037;
        assert_eq!(seed_hash(state), 1_985_237_415_132_408_290);
        assert_eq!(
            seed_hash(state.wrapping_add(0x9e37_79b9_7f4a_7c15)),
            2_979_275_885_539_914_483
        );
    }

    // `hash:K/N` counts K from 1 as nextest does; `count:K/N` is refused with the --shard that
    // does the same; a hash partition of too large a range is refused rather than hashed.
    #[test]
    fn hash_partitions_parse_as_nextest_spells_them() {
        assert_eq!(
            "hash:1/4".parse(),
            Ok(HashPartition {
                number: 1,
                count: 4
            })
        );
        for bad in ["hash:0/4", "hash:5/4", "hash:1", "1/4", "modulo:1/4"] {
            assert!(
                matches!(
                    bad.parse::<HashPartition>(),
                    Err(HashPartitionError::Syntax(_))
                ),
                "{bad}"
            );
        }
        let count = "count:2/4".parse::<HashPartition>().unwrap_err();
        assert!(count.to_string().contains("--shard 1/4"), "{count}");
        let huge = SeedSelection::partitioned(
            range(0, HASH_PARTITION_SEEDS_MAX),
            Some(Partition::Hash(HashPartition {
                number: 1,
                count: 2,
            })),
        );
        assert!(matches!(
            huge,
            Err(PartitionError::HashRangeTooLarge { .. })
        ));
        assert_eq!(
            Partition::Hash(HashPartition {
                number: 2,
                count: 3
            })
            .to_string(),
            "hash:2/3"
        );
    }

    // `--shard-count N` takes K from JOB_COMPLETION_INDEX, which must be set and below N; an
    // explicit `--shard` wins over the environment.
    #[test]
    fn shard_count_takes_the_index_from_the_job() {
        let shard = |index, count| Some(Partition::Shard(Shard { index, count }));
        assert_eq!(
            choose_partition(None, Some(3), None, Some("2")),
            Ok(shard(2, 3))
        );
        assert_eq!(
            choose_partition(None, Some(3), None, None),
            Err(PartitionError::NoJobIndex { count: 3 })
        );
        for bad in ["3", "-1", "one", ""] {
            assert!(
                matches!(
                    choose_partition(None, Some(3), None, Some(bad)),
                    Err(PartitionError::BadJobIndex { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            choose_partition(Some(Shard { index: 1, count: 4 }), None, None, Some("3")),
            Ok(shard(1, 4))
        );
        assert_eq!(choose_partition(None, None, None, Some("3")), Ok(None));
    }

    // Reports write a range as the command line spells it, and read it back.
    #[test]
    fn seed_ranges_round_trip_through_json() {
        for text in ["0..60", "7", "5..=18446744073709551615"] {
            let parsed: SeedRange = text.parse().unwrap();
            let json = serde_json::to_string(&parsed).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<SeedRange>(&json).unwrap(), parsed);
        }
        assert!(serde_json::from_str::<SeedRange>("\"5..5\"").is_err());
    }
}
