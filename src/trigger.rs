//! Why a checkpoint runs: the triggers of the seeds, named, and the measures a finished
//! checkpoint reports.
//!
//! - interval: time since the last checkpoint (PostgreSQL's `checkpoint_timeout`, Lealone's
//!   `checkpoint_period`);
//! - log volume: redo log written since the last checkpoint (PostgreSQL's `max_wal_size`);
//! - dirty bytes: dirty pages in the cache over a limit (Lealone's `dirty_page_cache_size`),
//!   polled on the embedder's loop interval;
//! - log space: a configured log capacity nearly full (GBase 8t; for the physical-log
//!   strategy also the physical log 75% full or its images plus the dirty pages over 90%).
//!   Writers that find the log space low wait for the checkpoint instead of failing;
//! - forced: [`crate::Engine::request_checkpoint`] (Lealone's `executeCheckpointAsync`); it
//!   resolves once its checkpoint is durable;
//! - shutdown: [`crate::Engine::close`] takes a final checkpoint, so the next open replays no
//!   commit;
//! - startup: the checkpoint recovery takes when it creates a database or after replay
//!   (PostgreSQL's end-of-recovery checkpoint).
//!
//! A checkpoint whose trigger allows it is skipped when no commit was logged since the last
//! one (PostgreSQL's rule); the observer hears of it as skipped.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a checkpoint ran (or was skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    Interval,
    LogVolume,
    DirtyBytes,
    LogSpace,
    Forced,
    Shutdown,
    Startup,
}

impl Trigger {
    pub const ALL: [Trigger; 7] = [
        Trigger::Interval,
        Trigger::LogVolume,
        Trigger::DirtyBytes,
        Trigger::LogSpace,
        Trigger::Forced,
        Trigger::Shutdown,
        Trigger::Startup,
    ];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Interval => "interval",
            Trigger::LogVolume => "log-volume",
            Trigger::DirtyBytes => "dirty-bytes",
            Trigger::LogSpace => "log-space",
            Trigger::Forced => "forced",
            Trigger::Shutdown => "shutdown",
            Trigger::Startup => "startup",
        }
    }

    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL
            .into_iter()
            .find(|trigger| trigger.name() == name)
    }

    /// Whether a checkpoint for this trigger is skipped when nothing was logged since the
    /// last one. A forced request and recovery's checkpoint always run (PostgreSQL's
    /// `CHECKPOINT_FORCE`); the rest have nothing to do then.
    pub fn skips_when_idle(self) -> bool {
        !matches!(self, Trigger::Forced | Trigger::Startup)
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a finished checkpoint measured, on the engine's [`crate::Clock`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointMeasures {
    /// From taking the checkpoint lock to the last step.
    pub duration: Duration,
    /// How long the checkpoint held the latch commits need, by blocking phase (`begin`,
    /// `critical-section`, ...): the windows in which commits were blocked.
    pub blocking: BTreeMap<&'static str, Duration>,
    /// Pages the checkpoint wrote, and their bytes.
    pub pages_written: u64,
    pub page_bytes_written: u64,
}

impl CheckpointMeasures {
    /// The sum of the blocking phases.
    pub fn blocking_total(&self) -> Duration {
        self.blocking.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_forced_and_startup_never_skip() {
        // Proves every trigger's name parses back to it, and which triggers may be skipped.
        for trigger in Trigger::ALL {
            assert_eq!(Trigger::from_name(trigger.name()), Some(trigger));
        }
        let never: Vec<Trigger> = Trigger::ALL
            .into_iter()
            .filter(|trigger| !trigger.skips_when_idle())
            .collect();
        assert_eq!(never, vec![Trigger::Forced, Trigger::Startup]);
    }
}
