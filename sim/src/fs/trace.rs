//! The operation trace: a running digest of every file system call (for the determinism
//! self-check: two runs of one seed must end with the same digest) and, when asked for, the
//! list of calls itself.

use std::fmt;
use std::io;

use super::fault::FaultKind;

/// One file system call as it took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// The I/O counter after this call (1 for the first call).
    pub index: u64,
    /// Simulated nanoseconds since the file system was created, or the index when the call ran
    /// outside a madsim runtime.
    pub time_nanos: u64,
    /// `create`, `open`, `remove`, `rename`, `list`, `sync_dir`, `read`, `write`, `sync`,
    /// `len` or `set_len`.
    pub op: &'static str,
    /// The file name (for `rename`, `from -> to`; for a file whose name is gone, its inode).
    pub file: String,
    pub offset: u64,
    pub len: u64,
    /// Ok with the call's count (bytes read, file length, names listed; 0 otherwise), or the
    /// error's kind.
    pub result: Result<u64, io::ErrorKind>,
    pub fault: Option<FaultKind>,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} t={}ns {} {:?} [{}, +{}) -> ",
            self.index, self.time_nanos, self.op, self.file, self.offset, self.len
        )?;
        match &self.result {
            Ok(count) => write!(f, "ok {count}")?,
            Err(kind) => write!(f, "error {kind:?}")?,
        }
        if let Some(fault) = self.fault {
            write!(f, " fault {fault}")?;
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits: stable across platforms and releases, unlike `std`'s hashers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digest(pub(crate) u64);

impl Digest {
    pub(crate) const fn new() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// A length-prefixed string, so that ("ab", "c") and ("a", "bc") fold differently.
    pub(crate) fn str(&mut self, value: &str) {
        self.u64(value.len() as u64);
        self.bytes(value.as_bytes());
    }
}
