//! Checkpoint strategies: the seeds' checkpoint designs behind one seam.
//!
//! A strategy decides where pages go (copy-on-write blocks or fixed slots written in place),
//! what anchors the last durable checkpoint (two header slots, a control file, or reserved
//! pages), what the redo log holds (logical commit records, or per-page redo with page LSNs and
//! full-page images) and the checkpoint's steps. The engine's commit path, checkpoint and
//! recovery ask the strategy at the points where they differ; everything else (the log, the
//! tree, the cachetable, group commit, the fsync rules) is shared.
//!
//! - [`Strategy::Sharp`]: TokuDB's sharp checkpoint (seeds 000, 003). Pending bits and clones,
//!   three translations, two header slots, logical redo from the begin_checkpoint record.
//! - [`Strategy::Fuzzy`]: PostgreSQL's fuzzy checkpoint (seed 002). A redo point, pages written
//!   in place while commits go on, a checkpoint record, a control file; per-page redo that is
//!   idempotent by page LSN, with a full-page image on a page's first change after the redo
//!   point so replay repairs torn pages.
//! - [`Strategy::PhysicalLog`]: GBase 8t's non-blocking checkpoint (seed 004). A short blocking
//!   part (drain the critical section, flush the log buffers, log the checkpoint, advance the
//!   checkpoint number), then the buffer pool is flushed while commits run; before a page is
//!   first modified after a checkpoint its before-image goes to a physical log, and recovery
//!   restores those images before rolling the logical log forward.

mod fuzzy;
mod physical_log;
mod sharp;
pub mod steps;

pub(crate) use physical_log::{
    read_physical_log, restore_slots, PAGES_START as PHYSICAL_LOG_PAGES_START,
};
pub(crate) use sharp::load_translation;

use crate::format::{control, header};
use steps::Step;

/// Which checkpoint design an engine instance uses. Chosen at open; a database is always opened
/// with the strategy that created it (the anchor records it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strategy {
    /// TokuDB's sharp copy-on-write checkpoint.
    #[default]
    Sharp,
    /// PostgreSQL's fuzzy checkpoint with full-page writes and a control file.
    Fuzzy,
    /// GBase 8t's non-blocking checkpoint with a physical log of before-images.
    PhysicalLog,
}

/// A byte range that holds a strategy's durable anchor (a header slot, a control file slot, a
/// reserved page). A checkpoint is durable exactly when the anchor write it issued is on disk
/// intact; a harness can tell that from its own record of writes without decoding anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorRegion {
    pub file: &'static str,
    /// The name `file` has while the database is being created, if it has another (the data
    /// file is built under a temporary name and renamed into place after checkpoint 1).
    pub staging_file: Option<&'static str>,
    pub offset: u64,
    pub len: u64,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Sharp, Strategy::Fuzzy, Strategy::PhysicalLog];

    /// The name scenario files and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Sharp => "sharp",
            Strategy::Fuzzy => "fuzzy",
            Strategy::PhysicalLog => "physical-log",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.name() == name)
    }

    /// The checkpoint's steps, in order.
    pub fn steps(self) -> &'static [&'static Step] {
        match self {
            Strategy::Sharp => steps::sharp::STEPS,
            Strategy::Fuzzy => steps::fuzzy::STEPS,
            Strategy::PhysicalLog => steps::physical_log::STEPS,
        }
    }

    /// The step called `name`, if this strategy has one.
    pub fn step(self, name: &str) -> Option<&'static Step> {
        self.steps().iter().copied().find(|step| step.name == name)
    }

    /// Every step name any strategy has, each once, in first-seen order.
    pub fn all_step_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for strategy in Strategy::ALL {
            for step in strategy.steps() {
                if !names.contains(&step.name) {
                    names.push(step.name);
                }
            }
        }
        names
    }

    /// Where this strategy's checkpoints make themselves durable: the regions the anchor
    /// writes of its checkpoints go to (each checkpoint writes exactly one of them).
    pub fn anchor_regions(self) -> Vec<AnchorRegion> {
        let (file, offsets, len) = match self {
            Strategy::Sharp => (
                crate::cachetable::DATA_FILE,
                header::HEADER_SLOT_OFFSETS,
                header::HEADER_BYTES,
            ),
            Strategy::Fuzzy => (
                control::CONTROL_FILE,
                control::CONTROL_SLOT_OFFSETS,
                control::CONTROL_BYTES,
            ),
            Strategy::PhysicalLog => (
                crate::cachetable::DATA_FILE,
                control::CONTROL_SLOT_OFFSETS,
                control::CONTROL_BYTES,
            ),
        };
        offsets
            .into_iter()
            .map(|offset| AnchorRegion {
                file,
                staging_file: (file == crate::cachetable::DATA_FILE)
                    .then_some(crate::recovery::CREATING_FILE),
                offset,
                len: len as u64,
            })
            .collect()
    }

    /// Whether pages are written in place (fixed slots) rather than copy-on-write.
    pub fn writes_in_place(self) -> bool {
        !matches!(self, Strategy::Sharp)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
