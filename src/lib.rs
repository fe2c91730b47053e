//! crashpoint: a transactional key-value storage engine with TokuDB-style sharp checkpoints.
//!
//! The engine keeps a B+tree of pages in a bounded cachetable, logs every commit to a redo log,
//! and takes sharp copy-on-write checkpoints (`begin_checkpoint` / `end_checkpoint`) into a data
//! file with two header slots and three block-translation tables (current, inprogress,
//! checkpointed). Recovery reads the newest valid header slot and replays committed transactions
//! from the checkpoint LSN.
//!
//! The engine is runtime-agnostic async code. It touches storage only through [`Vfs`] and time
//! only through [`Clock`]; it spawns nothing, so background work (the checkpointer and the
//! group-commit log sync) is driven by the embedder calling [`Engine::checkpoint_if_due`] and
//! [`Engine::sync_log`].

pub mod allocator;
mod cachetable;
mod checkpoint;
pub mod clock;
pub mod engine;
pub mod error;
pub mod format;
pub mod log;
pub mod observer;
pub mod options;
mod recovery;
pub mod strategy;
mod tree;
pub mod trigger;
pub mod types;
pub mod vfs;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{CommitInfo, Engine, RecoveryReport, Transaction};
pub use error::{Error, Result, Structure};
pub use observer::{CheckpointStep, CommitMeasures, NoopObserver, Observer};
pub use options::{Canary, Options, SyncMode};
pub use strategy::Strategy;
pub use trigger::{CheckpointMeasures, Trigger};
pub use types::{Lsn, PageId, Write};
pub use vfs::{mem::MemVfs, std::StdVfs, DirectoryLock, Vfs, VfsFile};
