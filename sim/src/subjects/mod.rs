//! The systems under test: a small trait, [`Subject`], that any transactional key-value store
//! can implement to be simulated, crashed, recovered and checked against the reference model.
//!
//! A subject opens on a simulated directory (recovering whatever a crash left there), commits
//! batches of writes (each returns once acknowledged, saying whether it is durable), reads
//! everything back, checkpoints or flushes if it has such a thing, and closes. It declares its
//! documented durability promise as a [`Promise`]: which faults of the simulated disk break
//! what it assumes of its storage, and so excuse a loss.
//!
//! Two adapters reach the simulated disk: the async [`crashpoint::vfs::Vfs`] ([`SimFs`]), for
//! engines that await their I/O, and [`crate::fs::blocking`], for engines with a blocking
//! storage trait. Every fault, crash mode and crash state applies through both.
//!
//! Subjects here: [`engine`] (crashpoint itself) and [`redb`] (the redb crate, through its
//! public `StorageBackend` trait). [`driver`] runs one seed of a scenario against any subject,
//! and [`oracle`] judges each recovery by the subject's promise. Our own engine also keeps its
//! dedicated driver ([`crate::driver`]), which adds the checks only an engine that reports its
//! internals can have: checkpoint steps as crash targets, anchors and stale checkpoints,
//! crash-state exploration inside checkpoint windows.

pub mod driver;
pub mod engine;
pub mod explore;
pub mod oracle;
pub mod redb;

use std::fmt;

use crashpoint::Write;
use serde::{Deserialize, Serialize};

use crate::fs::{FaultKind, SimFs};
use crate::model::State;
use crate::scenario::Scenario;

/// Which system a scenario tests (`subject = "..."` in the scenario file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectName {
    /// crashpoint, through its dedicated driver with every engine-internal check.
    #[default]
    Crashpoint,
    /// crashpoint through the generic subject seam, as any third-party engine is run: proves the
    /// seam's checks against an engine the dedicated driver also checks.
    CrashpointSeam,
    /// redb, through its `StorageBackend` on the blocking adapter.
    Redb,
}

impl SubjectName {
    pub const ALL: [SubjectName; 3] = [
        SubjectName::Crashpoint,
        SubjectName::CrashpointSeam,
        SubjectName::Redb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SubjectName::Crashpoint => "crashpoint",
            SubjectName::CrashpointSeam => "crashpoint-seam",
            SubjectName::Redb => "redb",
        }
    }

    /// Runs through the dedicated engine driver, not the generic seam.
    pub fn is_dedicated(self) -> bool {
        self == SubjectName::Crashpoint
    }

    /// The subject's promise, for the scenario checks and the report.
    pub fn promise(self) -> &'static Promise {
        match self {
            SubjectName::Crashpoint | SubjectName::CrashpointSeam => &engine::PROMISE,
            SubjectName::Redb => &redb::PROMISE,
        }
    }
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a subject documents about surviving crashes, as the oracle checks it: an acknowledged
/// durable commit survives any crash the promise covers; the recovered state is the state after
/// some prefix of the commit order (all or nothing per commit, in order); a read of the live
/// database sees every commit made so far.
#[derive(Debug)]
pub struct Promise {
    /// The subject's own words, with where they are written.
    pub statement: &'static str,
    /// Faults that break what the subject assumes of its storage. When one happened, a lost
    /// commit, a state that matches no prefix, or detected corruption is excused (and named in
    /// the log): the promise does not cover that disk.
    pub assumptions_broken_by: &'static [FaultKind],
    /// Crash modes that need engine internals the subject does not report (checkpoint steps).
    pub has_checkpoint_steps: bool,
}

/// How a subject call failed, sorted the way the oracle needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectErrorKind {
    /// The subject detected damage (a checksum, a structure that cannot be).
    Corruption,
    /// The storage failed a call (the simulated crash included).
    Io,
    /// Anything else: the subject refused, was closed, or failed in a way the oracle does not
    /// excuse.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SubjectError {
    pub kind: SubjectErrorKind,
    pub message: String,
}

impl SubjectError {
    pub fn new(kind: SubjectErrorKind, message: impl Into<String>) -> Self {
        SubjectError {
            kind,
            message: message.into(),
        }
    }
}

/// A commit the subject acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged {
    /// The subject promises this commit survives a crash from now on.
    pub durable: bool,
}

/// What a subject is opened with.
pub struct Setup<'a> {
    pub scenario: &'a Scenario,
    /// A planted bug, by name (the `canary` feature): a subject that knows none refuses it.
    pub canary: Option<&'a str>,
}

/// A transactional key-value store under test. The driver calls it from madsim tasks on one
/// thread, one call at a time (a commit, a read, a checkpoint never overlap), so the order of
/// commits is the order of the calls.
#[allow(async_fn_in_trait)]
pub trait Subject: Sized + 'static {
    /// Opens the database on `fs`, recovering what is there; creates it on an empty disk.
    async fn open(fs: SimFs, setup: &Setup<'_>) -> Result<Self, SubjectError>;

    /// Applies `writes` (a `None` value deletes) as one atomic transaction; returns once the
    /// subject acknowledges it.
    async fn commit(&self, writes: &[Write]) -> Result<Acknowledged, SubjectError>;

    /// Every key and value, read from the open database.
    async fn read_all(&self) -> Result<State, SubjectError>;

    /// A checkpoint, flush or log sync, if the subject has one; called now and then while
    /// clients run, and once before the clean close.
    async fn checkpoint(&self) -> Result<(), SubjectError> {
        Ok(())
    }

    /// A clean close: afterwards nothing may be left unsynced on the disk.
    async fn close(self) -> Result<(), SubjectError>;
}
