//! Seed selection on the command line: a half-open range `A..B` (or a single seed `N`) and an
//! optional shard `K/N` that keeps only the seeds with `seed % N == K`.
//!
//! The selected seeds are computed arithmetically rather than collected, so a shard of a huge
//! range costs nothing until its seeds run.

use std::fmt;
use std::str::FromStr;

/// Seeds `start..end`, half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedRangeError {
    #[error("`{0}` is not a seed range: expected `A..B` (half-open) or a single seed `N`")]
    Syntax(String),
    #[error("seed range `{0}` is empty: the end must be greater than the start")]
    Empty(String),
}

impl FromStr for SeedRange {
    type Err = SeedRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || SeedRangeError::Syntax(text.to_string());
        let number = |part: &str| part.trim().parse::<u64>().map_err(|_| syntax());
        let range = match text.split_once("..") {
            Some((start, end)) => SeedRange {
                start: number(start)?,
                end: number(end)?,
            },
            None => {
                let seed = number(text)?;
                SeedRange {
                    start: seed,
                    end: seed.checked_add(1).ok_or_else(syntax)?,
                }
            }
        };
        if range.end <= range.start {
            return Err(SeedRangeError::Empty(text.to_string()));
        }
        Ok(range)
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..{}", self.start, self.end)
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

/// The seeds a range and an optional shard select, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedSelection {
    first: u64,
    stride: u64,
    count: u64,
}

impl SeedSelection {
    pub fn new(range: SeedRange, shard: Option<Shard>) -> Self {
        let Shard {
            index,
            count: stride,
        } = shard.unwrap_or(Shard { index: 0, count: 1 });
        // The smallest seed >= start with seed % stride == index, computed without overflow.
        let offset = (index + stride - range.start % stride) % stride;
        let count = match range.start.checked_add(offset) {
            Some(first) if first < range.end => (range.end - 1 - first) / stride + 1,
            _ => 0,
        };
        Self {
            first: range.start.wrapping_add(offset),
            stride,
            count,
        }
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
        self.first + position * self.stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ranges are half-open, a single number is a one-seed range, and empty or malformed ranges
    // are refused.
    #[test]
    fn seed_ranges_parse() {
        assert_eq!("0..100".parse(), Ok(SeedRange { start: 0, end: 100 }));
        assert_eq!("7".parse(), Ok(SeedRange { start: 7, end: 8 }));
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
                        let range = SeedRange { start, end };
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
        let whole = SeedSelection::new(SeedRange { start: 3, end: 9 }, None);
        assert_eq!(whole.len(), 6);
        assert_eq!(whole.seed(0), 3);
    }
}
