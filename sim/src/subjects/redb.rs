//! redb (crates.io) as a [`Subject`], through its public `StorageBackend` trait on the blocking
//! adapter ([`crate::fs::blocking`]): redb's own code, unchanged, on the simulated disk.
//!
//! redb keeps one file. Creating it is the caller's job, and so is making its name durable:
//! the subject creates `redb.db` and syncs the directory before redb sees it, as a careful user
//! of `Builder::create_with_backend` must. Every commit asks for `Durability::Immediate`.
//!
//! A crash: the disk freezes, every later backend call fails, and the `Database` is dropped;
//! whatever redb's drop tries to write lands nowhere, so the crash image holds exactly what the
//! disk held at the crash.
//!
//! Determinism: redb spawns no threads and reads no clock; its hash maps take their seeds from
//! the process's random source, which madsim serves from the seed.

use std::io;

use ::redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, StorageBackend,
    TableDefinition, TableError,
};
use crashpoint::Write;

use super::{Acknowledged, Promise, Setup, Subject, SubjectError, SubjectErrorKind};
use crate::fs::blocking::{BlockingDisk, BlockingFile};
use crate::fs::{FaultKind, SimFs};
use crate::model::State;

/// redb's documented promise (README "crash-safe by default"; docs/design.md, "Commit
/// strategies" and "Assumptions about underlying media"), as checked here.
pub static PROMISE: Promise = Promise {
    statement: "redb (docs/design.md): a commit with Durability::Immediate is durable once \
                commit() returns; after a crash the database is consistent and holds the last \
                durable commit (1-phase commit with checksums: a partially written commit is \
                detected by its XXH3 checksums and rolled back). It assumes single-byte writes \
                are atomic, writes are durable after fsync, and a write changes no bytes outside \
                its range (powersafe overwrite); it makes no promise about media that lies about \
                fsync, misplaces writes or rots",
    assumptions_broken_by: &[
        FaultKind::LyingFsync,
        FaultKind::MisdirectedWrite,
        FaultKind::BitRot,
        FaultKind::LatentSectorError,
        FaultKind::MisdirectedRead,
    ],
    has_checkpoint_steps: false,
};

/// The one file the database lives in.
pub const FILE_NAME: &str = "redb.db";
/// redb's page cache: small, so recovery and reads go to the disk often.
const CACHE_SIZE_BYTES: usize = 256 * 1024;
/// The key-value table every commit writes.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// Planted bugs of this subject (the `canary` feature), which the harness must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedbCanary {
    /// `sync_data` returns Ok and syncs nothing: an acknowledged commit can be lost.
    SkipSync,
}

impl RedbCanary {
    pub const ALL: [RedbCanary; 1] = [RedbCanary::SkipSync];

    pub fn name(self) -> &'static str {
        match self {
            RedbCanary::SkipSync => "redb-skip-sync",
        }
    }

    pub fn from_name(name: &str) -> Option<RedbCanary> {
        RedbCanary::ALL
            .into_iter()
            .find(|canary| canary.name() == name)
    }
}

/// redb's `StorageBackend` on one file of the blocking adapter. Short reads are retried; a
/// read past the end is an error, as the trait asks.
pub struct SimBackend {
    file: BlockingFile,
    skip_sync: bool,
}

impl std::fmt::Debug for SimBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SimBackend")
            .field("skip_sync", &self.skip_sync)
            .finish()
    }
}

impl StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read_exact_at(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        if self.skip_sync {
            return Ok(());
        }
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.file.write_all_at(offset, data)
    }
}

pub struct RedbSubject {
    database: Database,
}

fn io_error(error: io::Error) -> SubjectError {
    SubjectError::new(SubjectErrorKind::Io, error.to_string())
}

/// Sorts any redb error by its text-independent kind: a storage error says whether it is
/// corruption or I/O; the rest are refusals.
fn sorted(error: impl Into<::redb::Error>) -> SubjectError {
    let error: ::redb::Error = error.into();
    let kind = match &error {
        ::redb::Error::Corrupted(_) => SubjectErrorKind::Corruption,
        ::redb::Error::Io(inner) if inner.kind() == io::ErrorKind::InvalidData => {
            SubjectErrorKind::Corruption
        }
        ::redb::Error::Io(_) | ::redb::Error::PreviousIo => SubjectErrorKind::Io,
        _ => SubjectErrorKind::Other,
    };
    SubjectError::new(kind, error.to_string())
}

fn canary(setup: &Setup<'_>) -> Result<Option<RedbCanary>, SubjectError> {
    let Some(name) = setup.canary else {
        return Ok(None);
    };
    let refuse = |message: String| Err(SubjectError::new(SubjectErrorKind::Other, message));
    match RedbCanary::from_name(name) {
        Some(canary) if cfg!(feature = "canary") => Ok(Some(canary)),
        Some(_) => refuse(format!(
            "canary {name:?} needs a build with the canary feature"
        )),
        None => refuse(format!(
            "unknown canary {name:?} for redb, expected one of: {}",
            RedbCanary::ALL.map(RedbCanary::name).join(", ")
        )),
    }
}

impl Subject for RedbSubject {
    async fn open(fs: SimFs, setup: &Setup<'_>) -> Result<Self, SubjectError> {
        let canary = canary(setup)?;
        let disk = BlockingDisk::new(fs);
        let file = match disk.open(FILE_NAME) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let file = disk.create(FILE_NAME).map_err(io_error)?;
                disk.sync_dir().map_err(io_error)?;
                file
            }
            Err(error) => return Err(io_error(error)),
        };
        let backend = SimBackend {
            file,
            skip_sync: canary == Some(RedbCanary::SkipSync),
        };
        let database = Builder::new()
            .set_cache_size(CACHE_SIZE_BYTES)
            .create_with_backend(backend)
            .map_err(sorted)?;
        Ok(RedbSubject { database })
    }

    async fn commit(&self, writes: &[Write]) -> Result<Acknowledged, SubjectError> {
        let mut transaction = self.database.begin_write().map_err(sorted)?;
        transaction
            .set_durability(Durability::Immediate)
            .map_err(sorted)?;
        {
            let mut table = transaction.open_table(TABLE).map_err(sorted)?;
            for write in writes {
                match &write.value {
                    Some(value) => {
                        table
                            .insert(write.key.as_slice(), value.as_slice())
                            .map_err(sorted)?;
                    }
                    None => {
                        table.remove(write.key.as_slice()).map_err(sorted)?;
                    }
                }
            }
        }
        transaction.commit().map_err(sorted)?;
        Ok(Acknowledged { durable: true })
    }

    async fn read_all(&self) -> Result<State, SubjectError> {
        let transaction = self.database.begin_read().map_err(sorted)?;
        let table = match transaction.open_table(TABLE) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(State::new()),
            Err(error) => return Err(sorted(error)),
        };
        let mut state = State::new();
        for entry in table.iter().map_err(sorted)? {
            let (key, value) = entry.map_err(sorted)?;
            state.insert(key.value().to_vec(), value.value().to_vec());
        }
        Ok(state)
    }

    async fn close(self) -> Result<(), SubjectError> {
        // redb writes its clean-shutdown state and syncs when the database drops.
        drop(self.database);
        Ok(())
    }
}
