//! What one seed's run produced: counters for the summary and, if a check failed, the failure.
//! Outcomes are written to JSON reports and read back by `merge`.

use std::collections::BTreeMap;

/// Why a seed failed. Each kind is a different broken promise.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The engine or the harness panicked.
    Panic,
    /// Simulated time ran past the limit, or every task blocked forever.
    Hang,
    /// The recovered state is not the model after any prefix of commits.
    Divergence,
    /// A commit acknowledged durable is missing and no injected fault excuses it.
    UnexcusedLoss,
    /// A commit was acknowledged durable after an fsync of the log failed, before any
    /// recovery, though its record was not durable when the fsync failed (PostgreSQL's rule).
    AcknowledgedAfterFsyncError,
    /// Recovery used an older checkpoint than the newest one whose header was truly durable.
    StaleCheckpoint,
    /// Recovery reported corruption though no injected fault damaged durable data.
    UnexcusedCorruption,
    /// Recovery failed with an error that is not detected corruption.
    RecoveryError,
    /// The quiet phase (no faults) did not finish: no checkpoint completed or a client failed.
    Liveness,
    /// The open after a clean close replayed commits, though the close's final checkpoint
    /// promises it replays none.
    ReplayAfterCleanClose,
    /// A checkpoint's measures (pages, page bytes, blocking) disagree with the steps it
    /// reported and the writes the disk saw.
    Measures,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Panic => "panic",
            FailureKind::Hang => "hang",
            FailureKind::Divergence => "divergence",
            FailureKind::UnexcusedLoss => "unexcused-loss",
            FailureKind::AcknowledgedAfterFsyncError => "acknowledged-after-fsync-error",
            FailureKind::StaleCheckpoint => "stale-checkpoint",
            FailureKind::UnexcusedCorruption => "unexcused-corruption",
            FailureKind::RecoveryError => "recovery-error",
            FailureKind::Liveness => "liveness",
            FailureKind::ReplayAfterCleanClose => "replay-after-clean-close",
            FailureKind::Measures => "measures",
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// Which crash of the seed (0-based) the failed check followed; None for the quiet phase.
    pub crash_index: Option<u32>,
    /// The first difference or the error, in words (key, expected, found).
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeedOutcome {
    pub scenario: String,
    /// The checkpoint strategy the seed ran with.
    pub strategy: String,
    pub seed: u64,
    pub crashes: u64,
    pub recoveries: u64,
    /// Crash states recovered and checked against the model.
    pub states_checked: u64,
    pub transactions: u64,
    pub io_ops: u64,
    /// Injected faults by kind name.
    pub faults: BTreeMap<String, u64>,
    pub failure: Option<Failure>,
    /// Digest of the full I/O trace of the run: equal for equal seeds.
    pub trace_digest: u64,
    /// Digest of the final engine state after the quiet phase.
    pub final_state_digest: u64,
    /// Checkpoints by trigger, blocking windows, commit latency, write amplification and
    /// redo at recovery, in simulated time.
    #[serde(default)]
    pub measures: crate::measures::Measures,
}
