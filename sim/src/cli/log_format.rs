//! The log line format of `replay -v`: simulated time, task, level, where, and the fields.
//!
//! tracing's default line carries the wall-clock date, madsim's node span and full module
//! paths, and runs to 250 columns. A reader following a shrunk case wants the simulated time
//! and the task, so a line reads like
//!
//! ```text
//!    24.015ms task 2 DEBUG engine: checkpoint step count=1 step="header-written"
//! ```

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::hub::now_nanos;

/// One line per event: simulated milliseconds, madsim task, level, short target, fields.
pub struct SimulatedLine;

impl<S, N> FormatEvent<S, N> for SimulatedLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let nanos = now_nanos();
        write!(
            writer,
            "{:>6}.{:03}ms ",
            nanos / 1_000_000,
            nanos / 1_000 % 1_000
        )?;
        let task = context.event_scope().and_then(|scope| {
            scope
                .from_root()
                .filter(|span| span.name() == "task")
                .last()
                .and_then(|span| {
                    span.extensions()
                        .get::<FormattedFields<N>>()
                        .map(|fields| task_id(fields.as_str()))
                })
        });
        match task {
            Some(task) => write!(writer, "task {task:<2} ")?,
            None => write!(writer, "        ")?,
        }
        let metadata = event.metadata();
        write!(
            writer,
            "{:<5} {}: ",
            metadata.level(),
            short_target(metadata.target())
        )?;
        context
            .field_format()
            .format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `id=3` (madsim's task span fields) as `3`; anything else as it is.
fn task_id(fields: &str) -> String {
    fields.strip_prefix("id=").unwrap_or(fields).to_string()
}

/// A module path without the crate prefix: `crashpoint::engine` is `engine`,
/// `crashpoint_sim::fs::state` is `sim::fs::state`.
fn short_target(target: &str) -> String {
    if let Some(rest) = target.strip_prefix("crashpoint_sim::") {
        format!("sim::{rest}")
    } else if let Some(rest) = target.strip_prefix("crashpoint::") {
        rest.to_string()
    } else {
        target.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{short_target, task_id};

    #[test]
    fn targets_and_task_ids_read_short() {
        // Proves the prefixes a reader does not need are dropped and others are kept whole.
        assert_eq!(short_target("crashpoint::engine"), "engine");
        assert_eq!(short_target("crashpoint_sim::fs::state"), "sim::fs::state");
        assert_eq!(short_target("madsim::sim::rand"), "madsim::sim::rand");
        assert_eq!(task_id("id=12"), "12");
        assert_eq!(task_id("name=x"), "name=x");
    }
}
