//! What `explore` prints: the totals, the first failures each with the one line that replays
//! exactly that crash point and state, and a single state's re-check. Pure formatting; the
//! caller measures wall-clock time and passes it in.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::{Exploration, Recording, SingleState, StateFailure, StateVerdict};
use crate::outcome::Failure;
use crate::report::failure_lines;

/// Failures printed in full; the rest are counted.
pub const FAILURES_SHOWN: usize = 20;

/// The command that re-checks one state of one point with logging. It names the package so it
/// works from anywhere in the workspace, and turns the `canary` feature on when a canary is set.
pub fn replay_command(
    scenario_path: &Path,
    strategy: Option<crashpoint::Strategy>,
    seed: u64,
    point: usize,
    state: u64,
    canary: Option<&str>,
) -> String {
    let mut command = String::from("cargo run --release -p crashpoint-sim");
    if canary.is_some() {
        command.push_str(" --features canary");
    }
    command.push_str(&format!(
        " -- explore --scenario {}",
        scenario_path.display()
    ));
    if let Some(strategy) = strategy {
        command.push_str(&format!(" --strategy {strategy}"));
    }
    command.push_str(&format!(" --seed {seed} --point {point} --state {state}"));
    if let Some(canary) = canary {
        command.push_str(&format!(" --canary {canary}"));
    }
    command
}

/// The report of a whole exploration.
pub struct ExplorationReport<'a> {
    pub recording: &'a Recording,
    pub exploration: &'a Exploration,
    pub workload_elapsed: Duration,
    pub explore_elapsed: Duration,
}

impl ExplorationReport<'_> {
    /// States per wall-clock second, the workload run included.
    pub fn states_per_second(&self) -> f64 {
        let seconds = (self.workload_elapsed + self.explore_elapsed).as_secs_f64();
        if seconds > 0.0 {
            self.exploration.states_checked as f64 / seconds
        } else {
            0.0
        }
    }
}

fn one_line(failure: &Failure) -> String {
    failure.message.lines().collect::<Vec<_>>().join(" | ")
}

fn place(failure: &Failure) -> String {
    match failure.crash_index {
        Some(index) => format!("after crash {index}"),
        None => "in the quiet phase".to_string(),
    }
}

impl fmt::Display for ExplorationReport<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recording = self.recording;
        let exploration = self.exploration;
        let workload = recording.workload();
        writeln!(
            formatter,
            "explore {} ({}) seed {}",
            recording.scenario.name,
            recording.scenario.strategy_label(),
            recording.seed
        )?;
        let dedicated = recording.scenario.subject.is_dedicated();
        let where_recorded = if dedicated {
            "in checkpoint windows"
        } else {
            "at disk calls that changed what a crash leaves"
        };
        writeln!(
            formatter,
            "  workload          ran once: {} crashes, {} transactions, {} I/O ops",
            workload.crashes, workload.transactions, workload.io_ops
        )?;
        writeln!(
            formatter,
            "  crash points      {} explored of {} recorded {where_recorded}; {} \
             enumerated completely, budget up to {} states a point",
            exploration.points,
            recording.points_recorded(),
            exploration.points_complete,
            exploration.budget_per_point
        )?;
        writeln!(
            formatter,
            "  states checked    {}",
            exploration.states_checked
        )?;
        writeln!(
            formatter,
            "  distinct states   {} ({} recoveries run)",
            exploration.distinct_states, exploration.recoveries
        )?;
        if dedicated {
            writeln!(
                formatter,
                "  continued         {} recovered states went on ({} durable commits and a \
                 checkpoint each), {} second-crash states checked",
                exploration.continued_states,
                super::CONTINUATION_COMMITS,
                exploration.second_states_checked
            )?;
        } else {
            writeln!(
                formatter,
                "  continued         none: going on past a recovery needs the engine's own \
                 recovery outcomes (crashpoint only)"
            )?;
        }
        writeln!(
            formatter,
            "  excused           {} (corruption that injected damage explains)",
            exploration.excused_states
        )?;
        writeln!(
            formatter,
            "  failures          {} states ({} failing recoveries)",
            exploration.failed_states,
            exploration.failures.len()
        )?;
        writeln!(
            formatter,
            "  elapsed           {:.2} s exploring + {:.2} s running the workload",
            self.explore_elapsed.as_secs_f64(),
            self.workload_elapsed.as_secs_f64()
        )?;
        writeln!(
            formatter,
            "  states per second {:.0}",
            self.states_per_second()
        )?;
        if let Some(failure) = &workload.failure {
            writeln!(formatter, "the workload run itself failed:")?;
            writeln!(
                formatter,
                "{}",
                failure_lines(
                    workload,
                    failure,
                    &recording.scenario.path,
                    recording.canary.as_deref()
                )
            )?;
        }
        for failure in exploration.failures.iter().take(FAILURES_SHOWN) {
            write_failure(formatter, recording, failure)?;
        }
        let hidden = exploration.failures.len().saturating_sub(FAILURES_SHOWN);
        if hidden > 0 {
            writeln!(formatter, "... and {hidden} more failing recoveries")?;
        }
        Ok(())
    }
}

fn write_failure(
    formatter: &mut fmt::Formatter<'_>,
    recording: &Recording,
    failure: &StateFailure,
) -> fmt::Result {
    writeln!(
        formatter,
        "FAIL {} ({}) seed {} point {} state {}: {} {}: {}",
        recording.scenario.name,
        recording.scenario.strategy_label(),
        recording.seed,
        failure.point,
        failure.state,
        failure.failure.kind.name(),
        place(&failure.failure),
        one_line(&failure.failure)
    )?;
    writeln!(formatter, "  point: {}", failure.point_description)?;
    writeln!(formatter, "  state: {}", failure.state_description)?;
    let replay = replay_command(
        &recording.scenario.path,
        recording.scenario.replay_strategy(),
        recording.seed,
        failure.point,
        failure.state,
        recording.canary.as_deref(),
    );
    writeln!(formatter, "  replay: {replay}")
}

/// The report of one re-checked state.
pub struct SingleStateReport<'a> {
    pub recording: &'a Recording,
    pub point: usize,
    pub state: u64,
    pub checked: &'a SingleState,
}

impl fmt::Display for SingleStateReport<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recording = self.recording;
        writeln!(
            formatter,
            "explore {} ({}) seed {} point {} state {}",
            recording.scenario.name,
            recording.scenario.strategy_label(),
            recording.seed,
            self.point,
            self.state
        )?;
        writeln!(formatter, "  point: {}", self.checked.point_description)?;
        writeln!(formatter, "  state: {}", self.checked.state_description)?;
        match &self.checked.verdict {
            StateVerdict::Passed => writeln!(formatter, "ok: recovered state equals the model"),
            StateVerdict::Excused(message) => writeln!(formatter, "ok (excused): {message}"),
            StateVerdict::Failed(failure) => writeln!(
                formatter,
                "FAIL {} {}: {}",
                failure.kind.name(),
                place(failure),
                one_line(failure)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_pins_point_and_state() {
        // Proves the replay line names the point, the state and, with a canary, the feature.
        let plain = replay_command(
            Path::new("scenarios/smoke.toml"),
            Some(crashpoint::Strategy::Fuzzy),
            4,
            17,
            5,
            None,
        );
        assert_eq!(
            plain,
            "cargo run --release -p crashpoint-sim -- explore --scenario scenarios/smoke.toml \
             --strategy fuzzy --seed 4 --point 17 --state 5"
        );
        let with_canary = replay_command(
            Path::new("scenarios/no-sync.toml"),
            Some(crashpoint::Strategy::Sharp),
            1,
            2,
            3,
            Some("ignore-pending-bit"),
        );
        assert!(with_canary.contains("--features canary"));
        assert!(with_canary.ends_with("--state 3 --canary ignore-pending-bit"));
    }
}
