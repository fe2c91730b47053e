//! crashpoint itself as a [`Subject`], through the async [`crashpoint::vfs::Vfs`] adapter: the
//! same engine the dedicated driver runs, seen only through the seam's five calls.
//!
//! Under the `periodic` sync mode a commit waits for a group-commit log sync, so the seam's
//! [`Subject::checkpoint`] also syncs the log; the driver calls it on the scenario's interval
//! whether or not a commit is in flight.

use crashpoint::{Engine, Error, NoopObserver, Write};

use super::{Acknowledged, Promise, Setup, Subject, SubjectError, SubjectErrorKind};
use crate::fs::{FaultKind, SimFs};
use crate::hub::SimClock;
use crate::model::State;

/// crashpoint's promise, as the README states it: a commit acknowledged durable survives any
/// crash; damage at rest and a lying disk may lose it, and recovery reports damage it detects.
pub static PROMISE: Promise = Promise {
    statement: "crashpoint (README, 'What it promises'): a commit acknowledged durable survives \
                any crash, recovery returns the state after a prefix of the commit order, and \
                corruption is detected, never returned as data; a disk that lies about fsync, \
                writes to the wrong place or rots may lose acknowledged commits",
    assumptions_broken_by: &[
        FaultKind::LyingFsync,
        FaultKind::MisdirectedWrite,
        FaultKind::BitRot,
        FaultKind::LatentSectorError,
        FaultKind::MisdirectedRead,
    ],
    has_checkpoint_steps: true,
};

pub struct EngineSubject {
    engine: Engine<SimFs, SimClock>,
}

fn sorted(error: Error) -> SubjectError {
    let kind = match &error {
        Error::Corruption { .. } => SubjectErrorKind::Corruption,
        Error::Io { .. } => SubjectErrorKind::Io,
        _ => SubjectErrorKind::Other,
    };
    SubjectError::new(kind, error.to_string())
}

impl Subject for EngineSubject {
    async fn open(fs: SimFs, setup: &Setup<'_>) -> Result<Self, SubjectError> {
        let options = crate::driver::engine_options(setup.scenario, setup.canary)
            .map_err(|message| SubjectError::new(SubjectErrorKind::Other, message))?;
        let engine = Engine::open(
            fs,
            SimClock::new(),
            options,
            std::sync::Arc::new(NoopObserver),
        )
        .await
        .map_err(sorted)?;
        Ok(EngineSubject { engine })
    }

    async fn commit(&self, writes: &[Write]) -> Result<Acknowledged, SubjectError> {
        let info = self.engine.commit(writes.to_vec()).await.map_err(sorted)?;
        Ok(Acknowledged {
            durable: info.durable,
        })
    }

    async fn read_all(&self) -> Result<State, SubjectError> {
        let entries = self.engine.scan_all().await.map_err(sorted)?;
        Ok(entries.into_iter().collect())
    }

    async fn checkpoint(&self) -> Result<(), SubjectError> {
        self.engine.sync_log().await.map_err(sorted)?;
        self.engine.checkpoint().await.map(|_| ()).map_err(sorted)
    }

    async fn close(self) -> Result<(), SubjectError> {
        self.engine.close().await.map_err(sorted)
    }
}
