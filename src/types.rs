//! Small value types shared by every layer: log sequence numbers, page ids and logical writes.

use std::fmt;

/// A log sequence number: the byte position of a record's first byte in the redo log stream.
///
/// Positions only grow, so LSN order is log order; a record's LSN also names the segment file
/// that holds it (segments are named by the LSN of their first byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A logical page number in the B+tree; the block translation maps it to a block on disk.
pub type PageId = u64;

/// One logical write of a transaction: a put (`value` is `Some`) or a delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Write {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}
