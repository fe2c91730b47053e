//! Seed selection on the command line: a range `A..B` (half-open), `A..=B` (inclusive) or a
//! single seed `N`, any u64 included, and an optional shard `K/N` that keeps only the seeds
//! with `seed % N == K`.
//!
//! The selected seeds are computed arithmetically rather than collected, so a shard of a huge
//! range costs nothing until its seeds run.

use std::fmt;
use std::str::FromStr;

/// Seeds `start..=last`. Kept inclusive so that the last u64 seed is expressible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
            Some(first) if first <= range.last => (range.last - first) / stride + 1,
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
}
