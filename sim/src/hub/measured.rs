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
//! checkpoint of the same engine started: nothing could be newer than its redo point. A
//! checkpoint that wrote pages under a pacing promise ([`paced_at_least`]) lasts at least that.
//!
//! A finished checkpoint must also have trimmed its redo log: every segment but the newest at
//! its start lies wholly before the log's end then, and so before the point any design's
//! replay starts from (the begin record, the redo point or the checkpoint record, each taken
//! after the start). Such a segment still on disk at the finish is space the log never gives
//! back. The harness reads segment names by their prefix and decimal start, not through the
//! engine's parser.

use std::time::Duration;

use crate::log_names::redo_segments;
use crashpoint::{CheckpointMeasures, CheckpointStep, Options, Strategy, Trigger};

/// How long a checkpoint that wrote pages lasts at least, by what the options promise: the
/// fuzzy strategy spreads its page writes over `checkpoint_completion_target` of the
/// checkpoint interval (PostgreSQL's pacing), the k-th of n pages not before that much times
/// k / n, unless a writer waiting for log space hurries it, which only an engine with a
/// `log_capacity_bytes` has. None when nothing is promised.
pub fn paced_at_least(options: &Options) -> Option<Duration> {
    let spread = options
        .checkpoint_interval
        .mul_f64(options.checkpoint_completion_target);
    (options.strategy == Strategy::Fuzzy
        && options.log_capacity_bytes.is_none()
        && !spread.is_zero())
    .then_some(spread)
}

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
    /// Redo log segments on disk when the checkpoint started, but the newest: its finish must
    /// have removed them.
    pub trimmable_at_start: Vec<String>,
}

impl CheckpointSeen {
    /// A checkpoint step: a start begins a new record; a page step is counted.
    /// `commits` counts the commits this engine logged so far; `names` are the files on disk
    /// now (read only at a start).
    pub fn step(
        &mut self,
        count: u64,
        step: &CheckpointStep,
        commits: u64,
        names: impl FnOnce() -> Vec<String>,
    ) {
        if step.is_start() {
            let mut segments = redo_segments(&names());
            segments.pop();
            *self = CheckpointSeen {
                count,
                commits_at_start: commits,
                last_finished_at: self.last_finished_at,
                trimmable_at_start: segments.into_iter().map(|(_, name)| name).collect(),
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

    /// Checkpoint `count` finished with `names` on disk: how its measures (or its running at
    /// all, or the log it left) disagree with what was seen, in words.
    pub fn finished(
        &mut self,
        count: u64,
        trigger: Trigger,
        measures: &CheckpointMeasures,
        paced_at_least: Option<Duration>,
        names: &[String],
    ) -> Option<String> {
        let idle_since = self.last_finished_at;
        self.last_finished_at = Some(self.commits_at_start);
        if trigger.skips_when_idle() && idle_since == Some(self.commits_at_start) {
            return Some(format!(
                "checkpoint {count} ran for trigger {trigger} though no commit was logged since \
                 the last finished checkpoint started: an idle checkpoint is skipped"
            ));
        }
        if let Some(spread) = paced_at_least.filter(|_| self.page_steps > 0) {
            if measures.duration < spread {
                return Some(format!(
                    "checkpoint {count} wrote {} pages in {:?}, but its page writes are paced \
                     over {spread:?} (checkpoint_completion_target of the interval) and no \
                     writer could hurry it",
                    self.page_steps, measures.duration
                ));
            }
        }
        if let Some(kept) = self
            .trimmable_at_start
            .iter()
            .find(|segment| names.contains(segment))
        {
            return Some(format!(
                "checkpoint {count} finished but left log segment {kept}, which lay wholly \
                 before the log's end when the checkpoint started: the log was not trimmed"
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

    use super::{paced_at_least, CheckpointSeen};
    use crashpoint::{Options, Strategy};

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
        seen.step(3, &CheckpointStep::new(&STARTED), 0, Vec::new);
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 7, 0), 0, Vec::new);
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 1), 0, Vec::new);
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
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 0), 0, Vec::new);
        assert!(seen.disagreement(3, &measures(3, 2048)).is_some());
    }

    #[test]
    fn an_idle_checkpoint_runs_only_when_forced() {
        // Proves a checkpoint with no commit since the last finished one started is a failure
        // for an interval trigger and not for a forced one, and commits in between clear it.
        let mut seen = CheckpointSeen::default();
        let checkpoint = |seen: &mut CheckpointSeen, count, commits, trigger| {
            seen.step(count, &CheckpointStep::new(&STARTED), commits, Vec::new);
            seen.finished(count, trigger, &measures(0, 0), None, &[])
        };
        assert_eq!(checkpoint(&mut seen, 1, 4, Trigger::Interval), None);
        assert_eq!(checkpoint(&mut seen, 2, 4, Trigger::Forced), None);
        assert!(checkpoint(&mut seen, 3, 4, Trigger::Interval).is_some());
        assert_eq!(checkpoint(&mut seen, 4, 5, Trigger::Interval), None);
    }

    #[test]
    fn a_paced_checkpoint_that_wrote_pages_lasts_its_spread() {
        // Proves a checkpoint that wrote a page in less than the promised spread fails, and one
        // that wrote none, or lasted long enough, or had no promise, passes.
        let spread = Some(Duration::from_millis(5));
        let mut seen = CheckpointSeen::default();
        seen.step(1, &CheckpointStep::new(&STARTED), 1, Vec::new);
        assert_eq!(
            seen.finished(1, Trigger::Interval, &measures(0, 0), spread, &[]),
            None
        );
        let mut quick = measures(1, 512);
        quick.duration = Duration::from_millis(4);
        let mut paced = quick.clone();
        paced.duration = Duration::from_millis(5);
        for (commits, checkpoint_measures, promise, fails) in [
            (2, &quick, spread, true),
            (3, &paced, spread, false),
            (4, &quick, None, false),
        ] {
            seen.step(commits, &CheckpointStep::new(&STARTED), commits, Vec::new);
            seen.step(
                commits,
                &CheckpointStep::page(&PAGE_WRITTEN, 7, 0),
                commits,
                Vec::new,
            );
            seen.bytes_written = 512;
            let verdict = seen.finished(
                commits,
                Trigger::Interval,
                checkpoint_measures,
                promise,
                &[],
            );
            assert_eq!(verdict.is_some(), fails, "{verdict:?}");
        }
    }

    #[test]
    fn a_finished_checkpoint_must_have_trimmed_the_segments_before_its_start() {
        // Proves a segment wholly before the log's end at the start and still on disk at the
        // finish is named, while the newest one at the start and later ones may stay, and
        // files that are not redo segments are not read as such.
        let names =
            |list: &[&str]| -> Vec<String> { list.iter().map(|name| name.to_string()).collect() };
        let at_start = names(&[
            "data",
            "plog-00000000000000000000",
            "log-00000000000000000000",
            "log-00000000000000004096",
            "log-00000000000000008192",
            "log-0000000000000000x192",
        ]);
        let mut seen = CheckpointSeen::default();
        seen.step(2, &CheckpointStep::new(&STARTED), 1, || at_start.clone());
        assert_eq!(
            seen.trimmable_at_start,
            names(&["log-00000000000000000000", "log-00000000000000004096"])
        );
        let left = names(&[
            "data",
            "log-00000000000000004096",
            "log-00000000000000008192",
        ]);
        let verdict = seen
            .clone()
            .finished(2, Trigger::Forced, &measures(0, 0), None, &left);
        assert!(
            verdict
                .as_deref()
                .is_some_and(|message| message.contains("log-00000000000000004096")),
            "{verdict:?}"
        );
        let trimmed = names(&[
            "data",
            "plog-00000000000000000000",
            "log-00000000000000008192",
            "log-00000000000000012288",
        ]);
        let verdict = seen.finished(2, Trigger::Forced, &measures(0, 0), None, &trimmed);
        assert_eq!(verdict, None);
    }

    #[test]
    fn only_an_unhurried_fuzzy_engine_promises_pacing() {
        // Proves the pacing promise is the fuzzy strategy's spread, and none where a writer
        // waiting for log space may hurry the checkpoint or another strategy writes at once.
        let fuzzy = Options {
            strategy: Strategy::Fuzzy,
            checkpoint_interval: Duration::from_millis(100),
            checkpoint_completion_target: 0.5,
            ..Options::default()
        };
        assert_eq!(paced_at_least(&fuzzy), Some(Duration::from_millis(50)));
        let hurried = Options {
            log_capacity_bytes: Some(1 << 20),
            ..fuzzy.clone()
        };
        assert_eq!(paced_at_least(&hurried), None);
        for strategy in [Strategy::Sharp, Strategy::PhysicalLog] {
            assert_eq!(
                paced_at_least(&Options {
                    strategy,
                    ..fuzzy.clone()
                }),
                None
            );
        }
    }
}
