//! `explore`: exhaustive crash-state exploration of one seed, as ALICE and CrashMonkey do for
//! real file systems, inside the simulator.
//!
//! The seed runs once with crash-point recording on: after every I/O call inside every
//! checkpoint window (from begin_checkpoint to the end of end_checkpoint, block freeing and log
//! trim included) of every crash phase, the disk hands over what a crash right then could
//! leave ([`crate::hub::RecordedPoint`]). For each such point, [`enumerate`] lists the crash
//! states the fault model allows in a fixed order, so each has a stable index `K` at its point;
//! [`check`] builds each state's image from the recorded point (the workload is not re-run),
//! recovers a fresh engine on it and holds it against the model with the same oracle as `run`.
//!
//! `--max-states` bounds the states checked, spread fairly: every point gets the same budget,
//! and what small points leave unused goes to the larger ones (each point gets at least its
//! two extremes, all lost and all landed, so a run with very many points may exceed the bound).
//! Identical images checked against the same model prefix are recovered once, and so are
//! images that agree in every byte an earlier recovery read (see `check`).
//!
//! Points recorded in a phase the workload itself failed in are skipped: there is no model
//! history for them.

mod check;
mod continuation;
mod enumerate;
mod report;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use rand::Rng;

use crate::driver::{engine_options, run_seed_full, stream_rng, SeedOptions, SeedRun};
use crate::hub::RecordedPoint;
use crate::outcome::{Failure, FailureKind, SeedOutcome};
use crate::scenario::Scenario;
use crate::subjects::explore::SubjectRecovery;

pub use check::StateVerdict;
pub use continuation::{Continued, CONTINUATION_COMMITS, SECOND_STATES_PER_POINT};
pub use enumerate::{NamespaceChoice, StateSpec, Tearing, EXHAUSTIVE_WRITES_MAX, SAMPLED_SUBSETS};
pub use report::{replay_command, ExplorationReport, SingleStateReport};

use check::{Checker, Outcome, PointFacts};
use enumerate::{Shape, GOLDEN};

/// States checked at most when `--max-states` is not given.
pub const MAX_STATES_DEFAULT: u64 = 200_000;
/// Recovered states that go on past their recovery when `--continue` is not given.
pub const CONTINUE_STATES_DEFAULT: u64 = 16;
/// The ChaCha stream that picks the continued states and draws what they do.
const CONTINUE_STREAM: u64 = (1 << 40) + 1;
/// Failing states kept with their details (the count goes on past it).
pub const FAILURES_KEPT: usize = 1000;
/// The ChaCha stream that seeds sampled subsets and garbage sectors; far from the driver's.
const EXPLORE_STREAM: u64 = 1 << 40;
/// Every point is checked in at least its two extremes.
const POINT_BUDGET_MIN: u64 = 2;

#[derive(Clone, Debug)]
pub struct ExploreOptions {
    pub max_states: u64,
    /// A planted bug to enable, by name (needs the `canary` feature).
    pub canary: Option<String>,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            max_states: MAX_STATES_DEFAULT,
            canary: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("{0}")]
    Configuration(String),
    #[error("point {point} does not exist: the seed recorded {points} explorable crash points")]
    NoSuchPoint { point: usize, points: usize },
    #[error("state {state} does not exist: point {point} has {states} crash states")]
    NoSuchState {
        point: usize,
        state: u64,
        states: u64,
    },
}

/// The seed's one run, with its crash points.
pub struct Recording {
    pub scenario: Scenario,
    pub seed: u64,
    pub canary: Option<String>,
    run: SeedRun,
    engine_options: crashpoint::Options,
    /// Indices into `run.points` of the points with a model history, in recorded order.
    explorable: Vec<usize>,
}

impl Recording {
    /// Runs the seed once, recording every crash point inside checkpoint windows.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        canary: Option<&str>,
    ) -> Result<Recording, ExploreError> {
        let concrete = scenario.for_seed(seed);
        // Another subject is opened by its own code; the engine options only matter (and a
        // canary only names an engine bug) for crashpoint.
        let engine_options = if concrete.subject.is_dedicated() {
            engine_options(&concrete, canary).map_err(ExploreError::Configuration)?
        } else {
            crashpoint::Options::default()
        };
        let options = SeedOptions {
            record_trace: false,
            canary: canary.map(str::to_string),
            record_crash_points: true,
            ..SeedOptions::default()
        };
        let run = run_seed_full(scenario, seed, &options);
        let explorable = (0..run.points.len())
            .filter(|&index| (run.points[index].phase as usize) < run.phase_models.len())
            .collect();
        Ok(Recording {
            scenario: concrete,
            seed,
            canary: canary.map(str::to_string),
            run,
            engine_options,
            explorable,
        })
    }

    /// The workload run's own outcome (a failure here is `run`'s finding, not explore's).
    pub fn workload(&self) -> &SeedOutcome {
        &self.run.outcome
    }

    pub fn points_recorded(&self) -> usize {
        self.run.points.len()
    }

    /// Points explore can check: `P` in `--point P` indexes this list.
    pub fn points(&self) -> usize {
        self.explorable.len()
    }

    fn point(&self, index: usize) -> &RecordedPoint {
        &self.run.points[self.explorable[index]]
    }

    fn shape(&self, index: usize) -> Shape {
        let seed = stream_rng(self.seed, EXPLORE_STREAM).gen::<u64>()
            ^ (index as u64 + 1).wrapping_mul(GOLDEN);
        Shape::of(
            &self.point(index).crash_point,
            seed,
            self.scenario.crash.fates.garbage,
        )
    }

    fn checker(&self) -> Checker {
        let mut checker = Checker::new(
            self.engine_options.clone(),
            self.scenario.faults.sector_size_bytes,
        );
        checker.garbage = self.scenario.crash.fates.garbage;
        if !self.scenario.subject.is_dedicated() {
            checker.subject = Some(SubjectRecovery {
                subject: self.scenario.subject,
                scenario: self.scenario.clone(),
                canary: self.canary.clone(),
            });
        }
        checker
    }

    fn describe_point(&self, index: usize) -> String {
        let point = self.point(index);
        if !self.scenario.subject.is_dedicated() {
            // A subject reports no checkpoint windows: its points are every disk call.
            return format!(
                "phase {}, I/O #{}: {} unsynced writes, {} unsynced namespace operations, {} \
                 commits made",
                point.phase,
                point.io_index,
                point.crash_point.pending.len(),
                point.crash_point.namespace.len(),
                point.commits,
            );
        }
        let step = point.step.map_or("none", |step| step.name());
        format!(
            "phase {}, checkpoint {} after step {step}, I/O #{}: {} unsynced writes, {} unsynced \
             namespace operations, {} commits logged",
            point.phase,
            point.checkpoint,
            point.io_index,
            point.crash_point.pending.len(),
            point.crash_point.namespace.len(),
            point.commits,
        )
    }
}

/// One failing state.
#[derive(Clone, Debug)]
pub struct StateFailure {
    pub point: usize,
    pub state: u64,
    pub point_description: String,
    pub state_description: String,
    pub failure: Failure,
}

/// What an exploration checked and found.
#[derive(Clone, Debug, Default)]
pub struct Exploration {
    pub points: usize,
    /// Points whose every state was checked (the rest hit their budget).
    pub points_complete: usize,
    /// The largest per-point budget handed out.
    pub budget_per_point: u64,
    pub states_checked: u64,
    /// Distinct (image, phase, commits, acknowledged count) keys among the states checked.
    pub distinct_states: u64,
    /// Recoveries run: states whose verdict was not already known.
    pub recoveries: u64,
    /// States whose recovery found corruption that injected damage explains.
    pub excused_states: u64,
    /// States that failed a check, cached verdicts included.
    pub failed_states: u64,
    /// Recovered states that went on: commits and a checkpoint, then a second crash.
    pub continued_states: u64,
    /// Second-crash states checked across them.
    pub second_states_checked: u64,
    /// The failures of the recoveries that failed (a failing image met again is counted in
    /// `failed_states` only), the first [`FAILURES_KEPT`].
    pub failures: Vec<StateFailure>,
}

/// Checks the crash states of every explorable point of `recording`, at most about
/// `max_states` of them, in one simulation runtime; then continues `continue_states` of them
/// past their recovery ([`continuation`]).
pub fn explore(recording: &Recording, max_states: u64, continue_states: u64) -> Exploration {
    let shapes: Vec<Shape> = (0..recording.points())
        .map(|index| recording.shape(index))
        .collect();
    let counts: Vec<u64> = shapes.iter().map(Shape::state_count).collect();
    let budgets = fair_budgets(&counts, max_states);
    let mut exploration = Exploration {
        points: shapes.len(),
        points_complete: budgets
            .iter()
            .zip(&counts)
            .filter(|(budget, count)| budget >= count)
            .count(),
        budget_per_point: budgets.iter().copied().max().unwrap_or(0),
        ..Exploration::default()
    };
    let mut checker = recording.checker();
    // Where the sweep stands, kept outside the runtime: if the runtime itself panics (a
    // recovery that blocks forever), the state being checked is a failure and a new runtime
    // resumes after it.
    let mut next = (0usize, 0u64);
    let mut outcomes = Outcomes::new();
    loop {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(
            recording.seed,
            madsim::Config::default(),
        );
        let swept = std::panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(sweep(
                recording,
                &shapes,
                &budgets,
                &mut checker,
                &mut exploration,
                &mut next,
                &mut outcomes,
            ))
        }));
        let Err(panic) = swept else { break };
        let (point, state) = next;
        let message = check::panic_message(panic.as_ref());
        let kind = if message.contains("block forever") || message.contains("time limit") {
            FailureKind::Hang
        } else {
            FailureKind::Panic
        };
        let failure = Failure {
            kind,
            crash_index: Some(recording.point(point).phase),
            message,
        };
        exploration.states_checked += 1;
        note_failure(
            recording,
            &shapes,
            &mut exploration,
            (point, state, failure),
            None,
        );
        next = (point, state + 1);
    }
    exploration.distinct_states = checker.distinct_states();
    exploration.recoveries = checker.recoveries;
    for (point, state) in continued_states(&outcomes, continue_states) {
        let continued = continue_one(recording, &shapes[point], &checker, point, state);
        exploration.continued_states += u64::from(continued.continued);
        exploration.second_states_checked += continued.states_checked;
        if let Some((then, failure)) = continued.failure {
            let failed = (point, state, failure);
            note_failure(recording, &shapes, &mut exploration, failed, Some(&then));
        }
    }
    exploration
}

/// How many passing recoveries came out each way, and the first state that did.
type Outcomes = BTreeMap<Outcome, (u64, (usize, u64))>;

/// Which states go on past their recovery: one state of each outcome, the rarest outcomes
/// first (a torn tail cut at an unusual place, a fallback to an older checkpoint), up to
/// `count`.
fn continued_states(outcomes: &Outcomes, count: u64) -> Vec<(usize, u64)> {
    let mut ranked: Vec<(u64, Outcome, (usize, u64))> = outcomes
        .iter()
        .map(|(outcome, &(seen, first))| (seen, *outcome, first))
        .collect();
    ranked.sort_unstable();
    ranked
        .into_iter()
        .take(count as usize)
        .map(|(_, _, first)| first)
        .collect()
}

/// Continues one state in a runtime of its own; a panic or hang is its failure.
fn continue_one(
    recording: &Recording,
    shape: &Shape,
    checker: &Checker,
    point: usize,
    state: u64,
) -> Continued {
    let recorded = recording.point(point);
    let Some(spec) = shape.states().nth(state as usize) else {
        return Continued::default();
    };
    let facts = PointFacts::of(&recording.run, recorded);
    let decisions = shape.decisions(&recorded.crash_point, &spec);
    let seed = stream_rng(recording.seed, CONTINUE_STREAM).gen::<u64>()
        ^ (point as u64 + 1).wrapping_mul(GOLDEN)
        ^ state.wrapping_mul(GOLDEN.rotate_left(17));
    let runtime =
        madsim::runtime::Runtime::with_seed_and_config(recording.seed, madsim::Config::default());
    let continued = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let (image, _) = recorded.crash_point.materialize(&decisions);
            let durable_checkpoint = facts.durable_checkpoint(&image);
            checker
                .continue_state(image, &facts, durable_checkpoint, seed)
                .await
        })
    }));
    continued.unwrap_or_else(|panic| {
        let message = check::panic_message(panic.as_ref());
        let kind = if message.contains("block forever") || message.contains("time limit") {
            FailureKind::Hang
        } else {
            FailureKind::Panic
        };
        Continued {
            continued: true,
            states_checked: 0,
            failure: Some((
                "while continuing after the recovery".to_string(),
                Failure {
                    kind,
                    crash_index: Some(recorded.phase + 1),
                    message,
                },
            )),
        }
    })
}

/// Checks every budgeted state from `next` on, advancing `next` before each check.
async fn sweep(
    recording: &Recording,
    shapes: &[Shape],
    budgets: &[u64],
    checker: &mut Checker,
    exploration: &mut Exploration,
    next: &mut (usize, u64),
    outcomes: &mut Outcomes,
) {
    let (first_point, first_state) = *next;
    for index in first_point..shapes.len() {
        let point = recording.point(index);
        let facts = PointFacts::of(&recording.run, point);
        let shape = &shapes[index];
        let skip = if index == first_point { first_state } else { 0 };
        let states = shape
            .states()
            .take(budgets[index] as usize)
            .enumerate()
            .skip(skip as usize);
        for (state, spec) in states {
            *next = (index, state as u64);
            let decisions = shape.decisions(&point.crash_point, &spec);
            let checked = checker.check(&point.crash_point, &facts, &decisions).await;
            exploration.states_checked += 1;
            if let Some(outcome) = checker.take_outcome() {
                let (seen, _) = outcomes
                    .entry(outcome)
                    .or_insert((0, (index, state as u64)));
                *seen += 1;
            }
            match checked.verdict {
                StateVerdict::Passed => {}
                StateVerdict::Excused(_) => exploration.excused_states += 1,
                StateVerdict::Failed(failure) if checked.recovered => note_failure(
                    recording,
                    shapes,
                    exploration,
                    (index, state as u64, failure),
                    None,
                ),
                StateVerdict::Failed(_) => exploration.failed_states += 1,
            }
        }
    }
    *next = (shapes.len(), 0);
}

fn note_failure(
    recording: &Recording,
    shapes: &[Shape],
    exploration: &mut Exploration,
    (point, state, failure): (usize, u64, Failure),
    then: Option<&str>,
) {
    exploration.failed_states += 1;
    if exploration.failures.len() >= FAILURES_KEPT {
        return;
    }
    let spec = shapes[point].states().nth(state as usize);
    let mut state_description = spec.map_or_else(String::new, |spec| spec.to_string());
    if let Some(then) = then {
        state_description = format!("{state_description}; then {then}");
    }
    exploration.failures.push(StateFailure {
        point,
        state,
        point_description: recording.describe_point(point),
        state_description,
        failure,
    });
}

/// Per-point budgets: the largest equal share `b` with `sum(min(count, b)) <= max_states`
/// (at least [`POINT_BUDGET_MIN`]), then what is left one state each to the first points still
/// short, so the total reaches `max_states` when the points have that many states.
fn fair_budgets(counts: &[u64], max_states: u64) -> Vec<u64> {
    let spent = |share: u64| -> u64 { counts.iter().map(|&count| count.min(share)).sum() };
    let largest = counts.iter().copied().max().unwrap_or(0);
    if largest <= POINT_BUDGET_MIN || spent(largest) <= max_states {
        return counts.to_vec();
    }
    // The answer lies in [low, high): spent(high) > max_states, and low is the floor.
    let (mut low, mut high) = (POINT_BUDGET_MIN, largest);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if spent(middle) <= max_states {
            low = middle;
        } else {
            high = middle;
        }
    }
    let mut budgets: Vec<u64> = counts.iter().map(|&count| count.min(low)).collect();
    let mut left = max_states.saturating_sub(budgets.iter().sum());
    for (budget, &count) in budgets.iter_mut().zip(counts) {
        if left == 0 {
            break;
        }
        if *budget < count {
            *budget += 1;
            left -= 1;
        }
    }
    budgets
}

/// One state re-checked, for `--point P --state K`.
pub struct SingleState {
    pub point_description: String,
    pub state_description: String,
    pub verdict: StateVerdict,
}

/// Re-checks exactly state `state` of point `point` (logging is the caller's to turn on);
/// with `continue_after`, a state that passes also goes on past its recovery as the sweep's
/// continued states do.
pub fn check_state(
    recording: &Recording,
    point: usize,
    state: u64,
    continue_after: bool,
) -> Result<SingleState, ExploreError> {
    if point >= recording.points() {
        return Err(ExploreError::NoSuchPoint {
            point,
            points: recording.points(),
        });
    }
    let shape = recording.shape(point);
    let Some(spec) = shape.states().nth(state as usize) else {
        return Err(ExploreError::NoSuchState {
            point,
            state,
            states: shape.state_count(),
        });
    };
    let recorded = recording.point(point);
    let facts = PointFacts::of(&recording.run, recorded);
    let decisions = shape.decisions(&recorded.crash_point, &spec);
    let checker = recording.checker();
    let runtime =
        madsim::runtime::Runtime::with_seed_and_config(recording.seed, madsim::Config::default());
    let verdict = match std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let (image, faults) = recorded.crash_point.materialize(&decisions);
            for fault in &faults {
                tracing::info!(%fault, "crash state");
            }
            tracing::info!(image = image.digest(), "crash image");
            let durable_checkpoint = facts.durable_checkpoint(&image);
            checker.recover(image, &facts, durable_checkpoint).await.0
        })
    })) {
        Ok(verdict) => verdict,
        Err(panic) => StateVerdict::Failed(Failure {
            kind: FailureKind::Hang,
            crash_index: Some(recorded.phase),
            message: check::panic_message(panic.as_ref()),
        }),
    };
    let mut state_description = spec.to_string();
    let verdict = match verdict {
        // Continuing needs an engine that reports its internals: crashpoint only.
        StateVerdict::Passed if continue_after && recording.scenario.subject.is_dedicated() => {
            tracing::info!("the state recovered; continuing past the recovery");
            let continued = continue_one(recording, &shape, &checker, point, state);
            match continued.failure {
                Some((then, failure)) => {
                    state_description = format!("{state_description}; then {then}");
                    StateVerdict::Failed(failure)
                }
                None => StateVerdict::Passed,
            }
        }
        verdict => verdict,
    };
    Ok(SingleState {
        point_description: recording.describe_point(point),
        state_description,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_share_fairly_and_hand_out_the_rest() {
        // Proves small points keep their full count, large ones share the rest equally, and
        // the total reaches the bound.
        assert_eq!(fair_budgets(&[3, 100, 100], 1000), vec![3, 100, 100]);
        assert_eq!(fair_budgets(&[3, 100, 100], 103), vec![3, 50, 50]);
        assert_eq!(fair_budgets(&[3, 100, 100], 104), vec![3, 51, 50]);
        assert_eq!(fair_budgets(&[5, 5, 5], 3), vec![2, 2, 2]);
        assert_eq!(fair_budgets(&[], 3), Vec::<u64>::new());
    }
}
