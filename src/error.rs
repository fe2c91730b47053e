//! Typed errors. Corruption names the file, the offset and the structure that failed to verify;
//! an I/O error names the operation and the file (a real directory's errors also carry the path).

use std::fmt;
use std::io;

pub type Result<T> = std::result::Result<T, Error>;

/// The on-disk structure in which corruption was detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Structure {
    /// A header slot of the data file (0 or 1).
    HeaderSlot(u8),
    /// Both header slots are unusable.
    Headers,
    /// The serialized block translation table.
    Translation,
    /// A B+tree page block.
    Page(u64),
    /// A redo log record.
    LogRecord,
    /// The log does not hold the checkpoint record (begin_checkpoint, or the fuzzy and
    /// physical-log strategies' checkpoint record) the anchor points at.
    CheckpointRecord,
    /// A slot of the fuzzy strategy's control file (0 or 1).
    ControlSlot(u8),
    /// Both control file slots are unusable.
    ControlFile,
    /// A reserved page of the physical-log strategy (0 or 1).
    ReservedPage(u8),
    /// Both reserved pages are unusable.
    ReservedPages,
    /// A physical log record (a before-image).
    PhysicalLogRecord,
    /// The database directory as a whole: files that do not make a database, or a database
    /// missing its data file (`file` is then the directory).
    Directory,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Structure::HeaderSlot(slot) => write!(f, "header slot {slot}"),
            Structure::Headers => write!(f, "both header slots"),
            Structure::Translation => write!(f, "block translation table"),
            Structure::Page(id) => write!(f, "page {id}"),
            Structure::LogRecord => write!(f, "log record"),
            Structure::CheckpointRecord => write!(f, "checkpoint record"),
            Structure::ControlSlot(slot) => write!(f, "control file slot {slot}"),
            Structure::ControlFile => write!(f, "both control file slots"),
            Structure::ReservedPage(slot) => write!(f, "reserved page {slot}"),
            Structure::ReservedPages => write!(f, "both reserved pages"),
            Structure::PhysicalLogRecord => write!(f, "physical log record"),
            Structure::Directory => write!(f, "database directory"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {op} {file}: {source}")]
    Io {
        op: &'static str,
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("corruption in {file} at offset {offset}: {structure}: {detail}")]
    Corruption {
        file: String,
        offset: u64,
        structure: Structure,
        detail: String,
    },
    /// A sync failed earlier. After a failed fsync the kernel may have dropped the dirty data,
    /// so nothing is retried: every later write fails until the engine is reopened and
    /// recovers from the log (PostgreSQL's rule after "fsyncgate").
    #[error("engine poisoned by a failed sync ({cause}); reopen it to recover from the log")]
    Poisoned { cause: String },
    #[error("engine is closed")]
    Closed,
    /// Another engine (in this process or another) has the directory open.
    #[error("database directory {directory} is locked: another engine has it open")]
    Locked { directory: String },
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
}

impl Error {
    pub fn io(op: &'static str, file: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op,
            file: file.into(),
            source,
        }
    }

    pub fn corruption(
        file: impl Into<String>,
        offset: u64,
        structure: Structure,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            structure,
            detail: detail.into(),
        }
    }

    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}
