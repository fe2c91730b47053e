//! The engine's checkpoint measures against what the harness saw of the same checkpoint.
//!
//! `compare`, `run --latency` and the bench report what the engine measures about its
//! checkpoints; a measure nobody checks could report anything. The harness sees each
//! checkpoint's steps (one `page-written` step per page, numbered from 0) and every byte the
//! disk was asked to write while its window was open, and holds the measures to them: as many
//! pages as page steps, numbered in order; page bytes no fewer than the pages (a page has
//! bytes) and no more than the disk was asked to write; and a latch held at least once
//! (every design blocks commits while it takes its redo point or sets its pending bits), for
//! no longer than the checkpoint took.

use crashpoint::{CheckpointMeasures, CheckpointStep};

/// What the harness saw of the checkpoint that started last.
#[derive(Clone, Debug, Default)]
pub struct CheckpointSeen {
    pub count: u64,
    pub page_steps: u64,
    /// The first page step whose number was not the count of page steps before it.
    pub misnumbered: Option<(u64, u32)>,
    /// Bytes of every write issued while the window was open.
    pub bytes_written: u64,
}

impl CheckpointSeen {
    /// A checkpoint step: a start begins a new record; a page step is counted.
    pub fn step(&mut self, count: u64, step: &CheckpointStep) {
        if step.is_start() {
            *self = CheckpointSeen {
                count,
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

    /// How checkpoint `count`'s measures disagree with what was seen, in words.
    pub fn disagreement(&self, count: u64, measures: &CheckpointMeasures) -> Option<String> {
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
    use crashpoint::{CheckpointMeasures, CheckpointStep};

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
        seen.step(3, &CheckpointStep::new(&STARTED));
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 7, 0));
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 1));
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
        seen.step(3, &CheckpointStep::page(&PAGE_WRITTEN, 9, 0));
        assert!(seen.disagreement(3, &measures(3, 2048)).is_some());
    }
}
