//! Every strategy's checkpoint steps, as data.
//!
//! A step knows its name (what scenario files and reports spell), the part of the checkpoint it
//! belongs to (what the Chrome trace groups spans by) and a short label (the span's title). The
//! simulator's step crashes, the trace and the fuzz plan read these lists instead of naming
//! steps by hand, so a new strategy brings its steps with it. Every list starts with `started`
//! (the checkpoint window opens) and ends with `finished` (it closes); page writes share the
//! one name `page-written`.

/// One step of a checkpoint design.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Step {
    /// Stable name for scenario files and reports.
    pub name: &'static str,
    /// The part of the checkpoint the step completes.
    pub part: &'static str,
    /// A short title for the span that ends with this step.
    pub label: &'static str,
    /// Position in its strategy's list: steps of one checkpoint come in this order.
    pub position: u8,
}

impl Step {
    /// The list this step belongs to.
    fn list(&'static self) -> &'static [&'static Step] {
        [sharp::STEPS, fuzzy::STEPS, physical_log::STEPS]
            .into_iter()
            .find(|list| {
                list.get(self.position as usize)
                    .is_some_and(|step| std::ptr::eq(*step, self))
            })
            .expect("every step is in a list")
    }

    /// The part a checkpoint is in after this step: the next step's part, None after the last.
    pub fn part_after(&'static self) -> Option<&'static str> {
        self.list()
            .get(self.position as usize + 1)
            .map(|next| next.part)
    }
}

/// The name of every strategy's first step: the checkpoint window opens.
pub const STARTED: &str = "started";
/// The name of every strategy's last step: the checkpoint window closes.
pub const FINISHED: &str = "finished";
/// The name every strategy gives its page writes.
pub const PAGE_WRITTEN: &str = "page-written";

macro_rules! steps {
    ($list:ident: $($constant:ident = ($position:expr, $name:expr, $part:expr, $label:expr);)+) => {
        $(pub static $constant: Step = Step {
            name: $name,
            part: $part,
            label: $label,
            position: $position,
        };)+
        pub static $list: &[&Step] = &[$(&$constant),+];
    };
}

/// TokuDB's sharp checkpoint (seeds 000 and 003).
pub mod sharp {
    use super::Step;

    steps! { STEPS:
        STARTED = (0, "started", "begin", "start");
        BEGIN_RECORD_LOGGED = (1, "begin-record-logged", "begin", "begin record");
        PENDING_BITS_SET = (2, "pending-bits-set", "begin", "pending bits");
        PAGE_WRITTEN = (3, "page-written", "pages", "page write");
        DATA_SYNCED = (4, "data-synced", "pages", "data fsync");
        TRANSLATION_WRITTEN = (5, "translation-written", "translation", "translation write");
        TRANSLATION_SYNCED = (6, "translation-synced", "translation", "translation fsync");
        HEADER_WRITTEN = (7, "header-written", "header", "header write");
        HEADER_SYNCED = (8, "header-synced", "header", "header fsync");
        END_RECORD_LOGGED = (9, "end-record-logged", "end", "end record");
        BLOCKS_FREED = (10, "blocks-freed", "end", "free blocks");
        LOG_TRIMMED = (11, "log-trimmed", "end", "trim log");
        FINISHED = (12, "finished", "end", "finish");
    }
}

/// PostgreSQL's fuzzy checkpoint (seed 002).
pub mod fuzzy {
    use super::Step;

    steps! { STEPS:
        STARTED = (0, "started", "begin", "start");
        REDO_POINT_TAKEN = (1, "redo-point-taken", "begin", "redo point");
        PAGE_WRITTEN = (2, "page-written", "pages", "page write");
        DATA_SYNCED = (3, "data-synced", "pages", "data fsync");
        CHECKPOINT_RECORD_LOGGED = (4, "checkpoint-record-logged", "record", "checkpoint record");
        CONTROL_FILE_WRITTEN = (5, "control-file-written", "control", "control file write");
        CONTROL_FILE_SYNCED = (6, "control-file-synced", "control", "control file fsync");
        LOG_TRIMMED = (7, "log-trimmed", "end", "trim log");
        FINISHED = (8, "finished", "end", "finish");
    }
}

/// GBase 8t's non-blocking checkpoint with a physical log (seed 004).
pub mod physical_log {
    use super::Step;

    steps! { STEPS:
        STARTED = (0, "started", "blocking", "start");
        CRITICAL_SECTION_BLOCKED =
            (1, "critical-section-blocked", "blocking", "block critical section");
        LOG_BUFFERS_FLUSHED = (2, "log-buffers-flushed", "blocking", "flush log buffers");
        CHECKPOINT_RECORD_LOGGED =
            (3, "checkpoint-record-logged", "blocking", "checkpoint record");
        CHECKPOINT_NUMBER_ADVANCED =
            (4, "checkpoint-number-advanced", "blocking", "advance checkpoint number");
        CRITICAL_SECTION_RELEASED =
            (5, "critical-section-released", "blocking", "release critical section");
        PAGE_WRITTEN = (6, "page-written", "buffer pool", "page write");
        BUFFER_POOL_FLUSHED = (7, "buffer-pool-flushed", "buffer pool", "data fsync");
        RESERVED_PAGE_WRITTEN = (8, "reserved-page-written", "reserved", "reserved page write");
        RESERVED_PAGE_SYNCED = (9, "reserved-page-synced", "reserved", "reserved page fsync");
        PHYSICAL_LOG_TRIMMED = (10, "physical-log-trimmed", "end", "trim physical log");
        LOG_TRIMMED = (11, "log-trimmed", "end", "trim log");
        FINISHED = (12, "finished", "end", "finish");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_is_ordered_and_framed_by_started_and_finished() {
        // Proves each step's position is its index, names are unique within a list, and every
        // list opens with `started`, closes with `finished` and names its page writes alike.
        for list in [sharp::STEPS, fuzzy::STEPS, physical_log::STEPS] {
            for (index, step) in list.iter().enumerate() {
                assert_eq!(step.position as usize, index, "{}", step.name);
                assert_eq!(
                    list.iter().filter(|other| other.name == step.name).count(),
                    1,
                    "{} is named twice",
                    step.name
                );
            }
            assert_eq!(list.first().map(|step| step.name), Some(STARTED));
            assert_eq!(list.last().map(|step| step.name), Some(FINISHED));
            assert!(list.iter().any(|step| step.name == PAGE_WRITTEN));
            assert_eq!(list.last().and_then(|step| step.part_after()), None);
            assert_eq!(list[0].part_after(), Some(list[1].part));
        }
    }
}
