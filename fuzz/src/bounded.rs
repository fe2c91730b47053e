//! Bounded `Arbitrary` types, after redb's `BoundedU64<N>`: every number, size and count a fuzz
//! input can express has a hard upper limit, so no input can ask for an unbounded run or
//! allocation, and every value drawn is valid, so no input is spent on a rejected
//! configuration.
//!
//! Each type reads only as many bytes as its range needs (one byte for a range of at most 256
//! values), so a mutation of one input byte changes one field. Like every `Arbitrary` integer,
//! a value read past the end of the input is zero, so a short input is the smallest plan.

use std::fmt;

use arbitrary::{Arbitrary, Result, Unstructured};

/// An integer in `MIN..=MAX`, drawn as an unsigned integer just wide enough for the range and
/// reduced modulo the range's size.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// `value`, which must lie in `MIN..=MAX`.
    pub fn new(value: u64) -> Self {
        assert!(
            (MIN..=MAX).contains(&value),
            "{value} is outside {MIN}..={MAX}"
        );
        Self(value)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn get_usize(self) -> usize {
        self.0 as usize
    }
}

impl<'a, const MIN: u64, const MAX: u64> Arbitrary<'a> for Bounded<MIN, MAX> {
    fn arbitrary(input: &mut Unstructured<'a>) -> Result<Self> {
        const { assert!(MIN <= MAX, "Bounded needs MIN <= MAX") };
        let span = MAX - MIN;
        let raw = if span <= u8::MAX as u64 {
            u8::arbitrary(input)? as u64
        } else if span <= u16::MAX as u64 {
            u16::arbitrary(input)? as u64
        } else if span <= u32::MAX as u64 {
            u32::arbitrary(input)? as u64
        } else {
            u64::arbitrary(input)?
        };
        let value = match span.checked_add(1) {
            Some(size) => MIN + raw % size,
            // The whole u64 range: every raw value is already in it.
            None => raw,
        };
        Ok(Self(value))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        let span = MAX - MIN;
        let bytes = if span <= u8::MAX as u64 {
            1
        } else if span <= u16::MAX as u64 {
            2
        } else if span <= u32::MAX as u64 {
            4
        } else {
            8
        };
        (bytes, Some(bytes))
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Debug for Bounded<MIN, MAX> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// At most `MAX` bytes: a length drawn as `Bounded<0, MAX>`, then that many bytes of input
/// (fewer if the input ends first).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedBytes<const MAX: u64>(pub Vec<u8>);

impl<'a, const MAX: u64> Arbitrary<'a> for BoundedBytes<MAX> {
    fn arbitrary(input: &mut Unstructured<'a>) -> Result<Self> {
        let len = Bounded::<0, MAX>::arbitrary(input)?.get_usize();
        let bytes = input.bytes(len.min(input.len()))?;
        Ok(Self(bytes.to_vec()))
    }
}

impl<const MAX: u64> fmt::Debug for BoundedBytes<MAX> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} bytes", self.0.len())?;
        if self.0.len() <= 32 {
            write!(formatter, " {:02x?}", self.0)?;
        }
        Ok(())
    }
}

/// At most `MAX` elements: a count drawn as `Bounded<0, MAX>`, then that many elements.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const MAX: u64>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const MAX: u64> Arbitrary<'a> for BoundedVec<T, MAX> {
    fn arbitrary(input: &mut Unstructured<'a>) -> Result<Self> {
        let count = Bounded::<0, MAX>::arbitrary(input)?.get_usize();
        let mut elements = Vec::with_capacity(count);
        for _ in 0..count {
            elements.push(T::arbitrary(input)?);
        }
        Ok(Self(elements))
    }
}

impl<T: fmt::Debug, const MAX: u64> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// `T` drawn from an input of any length. libfuzzer-sys skips inputs shorter than the input
/// type's minimum size hint; every type here reads zeros past the end of the input instead, so
/// this wrapper hints zero and a short input runs as the smallest value rather than nothing.
/// Without it a fuzzer started from an empty corpus never reaches its first valid input.
pub struct AnyLength<T>(pub T);

impl<'a, T: Arbitrary<'a>> Arbitrary<'a> for AnyLength<T> {
    fn arbitrary(input: &mut Unstructured<'a>) -> Result<Self> {
        T::arbitrary(input).map(Self)
    }

    fn arbitrary_take_rest(input: Unstructured<'a>) -> Result<Self> {
        T::arbitrary_take_rest(input).map(Self)
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl<T: fmt::Debug> fmt::Debug for AnyLength<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}
