//! The engine's checkpoint measures against what the harness saw of the same checkpoint.
//!
//! `compare`, `run --latency` and the bench report what the engine measures about its
//! checkpoints; a measure nobody checks could report anything. The harness sees each
//! checkpoint's steps (one `page-written` step per page, numbered from 0) and every byte the
//! disk was asked to write while its window was open, and holds the measures to them: as many
//! pages as page steps, numbered in order; page bytes no fewer than the pages (a page has
//! bytes) and no more than the disk was asked to write; and a latch held at least once
//! (every design blocks commits while it takes its redo point or sets its pending bits), for
//! no longer than the checkpoint took. And a checkpoint whose trigger skips when idle (all but
//! a forced one and recovery's) must not run when no commit was logged since the last finished
//! checkpoint of the same engine started: nothing could be newer than its redo point.

use crashpoint::{CheckpointMeasures, CheckpointStep, Trigger};

/// What the harness saw of the checkpoint that started last.
#[derive(Clone, Debug, Default)]
pub struct CheckpointSeen {
    pub count: u64,
    pub page_steps: u64,
    /// The first page step whose number was not the count of page steps before it.
    pub misnumbered: Option<(u64, u32)>,
    /// Bytes of every write issued while the window was open.
    pub bytes_written: u64,
    /// Commits logged (by this engine) before the checkpoint started.
    pub commits_at_start: u64,
    /// The same for the last checkpoint of this engine that finished.
    pub last_finished_at: Option<u64>,
}

impl CheckpointSeen {
    /// A checkpoint step: a start begins a new record; a page step is counted.
    /// `commits` counts the commits this engine logged so far.
    pub fn step(&mut self, count: u64, step: &CheckpointStep, commits: u64) {
        if step.is_start() {
            *self = CheckpointSeen {
                count,
                commits_at_start: commits,
                last_finished_at: self.last_finished_at,
                ..CheckpointSeen::default()
            };
        }
        if let Some(page) = step.page {
            if u64::from(page.index) != self.page_steps && self.misnumbered.is_none() {
                self.misnumbered = Some((self.page_steps, page.index));
            }
            self.page_steps += 1;
        }
    }

    /// Checkpoint `count` finished: how its measures (or its running at all) disagree with
    /// what was seen, in words.
    pub fn finished(
        &mut self,
        count: u64,
        trigger: Trigger,
        measures: &CheckpointMeasures,
    ) -> Option<String> {
        let idle_since = self.last_finished_at;
        self.last_finished_at = Some(self.commits_at_start);
        if trigger.skips_when_idle() && idle_since == Some(self.commits_at_start) {
            return Some(format!(
                "checkpoint {count} ran for trigger {trigger} though no commit was logged since \
                 the last finished checkpoint started: an idle checkpoint is skipped"
            ));
        }
        self.disagreement(count, measures)
    }

    fn disagreement(&self, count: u64, measures: &CheckpointMeasures) -> Option<String> {
        if count != self.count {
            return Some(format!(
                "checkpoint {count} finished, but the last checkpoint that started was {}",
                self.count
            ));
        }
        if let Some((expected, found)) = self.misnumbered {
            return Some(format!(
                "checkpoint {count}'s page step {expected} was numbered {found}"
            ));
        }
        if measures.pages_written != self.page_steps {
            return Some(format!(
                "checkpoint {count} measured {} pages written but reported {} page-written steps",
                measures.pages_written, self.page_steps
            ));
        }
        if measures.page_bytes_written < measures.pages_written
            || measures.page_bytes_written > self.bytes_written
        {
            return Some(format!(
                "checkpoint {count} measured {} page bytes for {} pages, but the disk was asked \
                 to write {} bytes in its window",
                measures.page_bytes_written, measures.pages_written, self.bytes_written
            ));
        }
        if measures.blocking.is_empty() {
            return Some(format!(
                "checkpoint {count} measured no blocking phase: it reports no latch it held"
            ));
        }
        if measures.blocking_total() > measures.duration {
            return Some(format!(
                "checkpoint {count} measured {:?} blocking, longer than its {:?} duration",
                measures.blocking_total(),
                measures.duration
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crashpoint::strategy::steps::sharp::{PAGE_WRITTEN, STARTED};
    use crashpoint::{CheckpointMeasures, CheckpointStep, Trigger};

    use super::CheckpointSeen;

    fn measures(pages: u64, bytes: u64) -> CheckpointMeasures {
        let mut measures = CheckpointMeasures {
            duration: Duration::from_millis(5),
            pages_written: pages,
            page_bytes_written: bytes,
            ..CheckpointMeasures::default()
        };
        measures.blocking.insert("begin", Duration::from_millis(1));
        measures
    }

    #[test]
    fn measures_must_match_the_steps_and_the_disk() {
        // Proves each disagreement is named and agreeing measures pass.
        let mut seen = CheckpointSeen::default();
        seen.step(3, &CheckpointStep::new(&STARTED), 0);
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 7, 0), 0);
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 1), 0);
        seen.bytes_written = 3000;
        assert_eq!(seen.disagreement(3, &measures(2, 2048)), None);
        assert!(seen.disagreement(2, &measures(2, 2048)).is_some());
        assert!(seen.disagreement(3, &measures(0, 0)).is_some());
        assert!(seen.disagreement(3, &measures(2, 0)).is_some());
        assert!(seen.disagreement(3, &measures(2, 4096)).is_some());
        assert!(seen
            .disagreement(3, &CheckpointMeasures::default())
            .is_some());
        let mut long = measures(2, 2048);
        long.blocking.insert("end", Duration::from_millis(9));
        assert!(seen.disagreement(3, &long).is_some());
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 0), 0);
        assert!(seen.disagreement(3, &measures(3, 2048)).is_some());
    }

    #[test]
    fn an_idle_checkpoint_runs_only_when_forced() {
        // Proves a checkpoint with no commit since the last finished one started is a failure
        // for an interval trigger and not for a forced one, and commits in between clear it.
        let mut seen = CheckpointSeen::default();
        let checkpoint = |seen: &mut CheckpointSeen, count, commits, trigger| {
            seen.step(count, &CheckpointStep::new(&STARTED), commits);
            seen.finished(count, trigger, &measures(0, 0))
        };
        assert_eq!(checkpoint(&mut seen, 1, 4, Trigger::Interval), None);
        assert_eq!(checkpoint(&mut seen, 2, 4, Trigger::Forced), None);
        assert!(checkpoint(&mut seen, 3, 4, Trigger::Interval).is_some());
        assert_eq!(checkpoint(&mut seen, 4, 5, Trigger::Interval), None);
    }
}
