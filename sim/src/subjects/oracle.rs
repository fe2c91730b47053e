//! The checks after a crash for any [`super::Subject`], by its [`Promise`]; they need nothing
//! from the subject but its five calls.
//!
//! A recovery passes when: the subject opens, or reports corruption or an I/O error that a
//! fault breaking its promise's assumptions explains (then the seed ends there, excused); the
//! state it reads back equals the model after some prefix of the commit order (each commit all
//! or nothing, in order); and that prefix holds every commit acknowledged durable. A lost
//! commit, or a state that matches no prefix, is excused only by such a fault; the excuse
//! names the faults. Faults outside the list (write errors, fsync errors, out of space, short
//! reads, torn and lost unsynced writes at the crash) excuse nothing: the subject must survive
//! them.
//!
//! The excuses are coarse next to the dedicated engine oracle ([`crate::oracle`]): any such
//! fault anywhere on the disk excuses, where the engine oracle asks that the damage lie where
//! the log ended. Knowing where a subject's commit lives would need its format.

use crate::fs::FaultRecord;
use crate::model::{first_difference, Model, State};
use crate::oracle::describe;
use crate::outcome::{Failure, FailureKind};

use super::{Promise, SubjectError, SubjectErrorKind};

/// What the oracle knows at one recovery besides the model.
pub struct RecoveryFacts<'a> {
    /// Which crash this follows; None for the reopen after the clean close.
    pub crash_index: Option<u32>,
    pub promise: &'static Promise,
    /// Faults so far that break the promise's assumptions: damage at rest of the whole seed,
    /// lying fsyncs of the phase that crashed, and what the recovery's own reads met.
    pub excuses: &'a [FaultRecord],
}

/// How a recovery that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Judged {
    /// The state equals the model after the first `prefix` commits.
    Passed { prefix: usize },
    /// The promise does not cover what happened; the seed ends here.
    Excused(String),
}

fn failure(kind: FailureKind, facts: &RecoveryFacts<'_>, message: String) -> Failure {
    Failure {
        kind,
        crash_index: facts.crash_index,
        message,
    }
}

/// An error while opening or reading back (`during`): detected damage or an I/O error is
/// excused by a fault that breaks the promise's assumptions; anything else fails.
pub fn judge_error(
    error: &SubjectError,
    facts: &RecoveryFacts<'_>,
    during: &str,
) -> Result<Judged, Failure> {
    let excusable = matches!(
        error.kind,
        SubjectErrorKind::Corruption | SubjectErrorKind::Io
    );
    if excusable && !facts.excuses.is_empty() {
        return Ok(Judged::Excused(format!(
            "{during}: {error}; excused by {}",
            describe(facts.excuses)
        )));
    }
    let kind = match error.kind {
        SubjectErrorKind::Corruption => FailureKind::UnexcusedCorruption,
        _ => FailureKind::RecoveryError,
    };
    Err(failure(kind, facts, format!("{during}: {error}")))
}

/// The state read back after a recovery, against the model: some prefix of the commit order,
/// holding every acknowledged durable commit.
pub fn judge_state(
    model: &Model,
    found: &State,
    facts: &RecoveryFacts<'_>,
) -> Result<Judged, Failure> {
    let Some(prefix) = model.matching_prefix(found) else {
        let expected = model.state_after(model.commits.len());
        let difference = first_difference(&expected, found).unwrap_or_default();
        let message = format!(
            "the recovered state matches no prefix of the {} commits; against all of them: \
             {difference}",
            model.commits.len()
        );
        if !facts.excuses.is_empty() {
            return Ok(Judged::Excused(format!(
                "{message}; excused by {}",
                describe(facts.excuses)
            )));
        }
        return Err(failure(FailureKind::Divergence, facts, message));
    };
    let lost = model.lost_durable(prefix);
    if let Some(first) = lost.first() {
        let message = format!(
            "{} commits acknowledged durable are missing: the state is the one after {prefix} \
             of {} commits, and commit {} was acknowledged durable",
            lost.len(),
            model.commits.len(),
            first.0 + 1
        );
        if facts.excuses.is_empty() {
            return Err(failure(
                FailureKind::UnexcusedLoss,
                facts,
                format!("{message}; promise: {}", facts.promise.statement),
            ));
        }
        tracing::info!(
            lost = lost.len(),
            faults = %describe(facts.excuses),
            "durable commits lost to faults the promise does not cover"
        );
    }
    Ok(Judged::Passed { prefix })
}

#[cfg(test)]
mod tests {
    use crashpoint::{Lsn, Write};

    use super::{judge_state, Judged, RecoveryFacts};
    use crate::fs::{FaultKind, FaultRecord};
    use crate::model::{Model, State};
    use crate::outcome::FailureKind;
    use crate::subjects::redb::PROMISE;

    fn model(commits: &[(&str, bool)]) -> Model {
        let mut model = Model::default();
        for (index, (key, durable)) in commits.iter().enumerate() {
            let lsn = Lsn(index as u64);
            model.record_commit(lsn, Lsn(lsn.0 + 1), &[Write::put(*key, "v")]);
            if *durable {
                model.acknowledged_durable.insert(lsn);
            }
        }
        model
    }

    fn state(keys: &[&str]) -> State {
        keys.iter()
            .map(|key| (key.as_bytes().to_vec(), b"v".to_vec()))
            .collect()
    }

    #[test]
    fn a_lost_durable_commit_fails_unless_a_broken_assumption_excuses_it() {
        // Proves the rule: a prefix that drops an acknowledged commit is a loss, excused only
        // by a fault in the promise's list, and a prefix past the last durable one passes.
        let model = model(&[("a", true), ("b", true), ("c", false)]);
        let facts = RecoveryFacts {
            crash_index: Some(0),
            promise: &PROMISE,
            excuses: &[],
        };
        let lost = judge_state(&model, &state(&["a"]), &facts).unwrap_err();
        assert_eq!(lost.kind, FailureKind::UnexcusedLoss);
        assert_eq!(
            judge_state(&model, &state(&["a", "b"]), &facts),
            Ok(Judged::Passed { prefix: 2 })
        );
        let wrong = judge_state(&model, &state(&["b"]), &facts).unwrap_err();
        assert_eq!(wrong.kind, FailureKind::Divergence);
        let lying = [FaultRecord {
            index: 1,
            kind: FaultKind::LyingFsync,
            file: "redb.db".into(),
            offset: 0,
            len: 0,
            detail: String::new(),
            damaged: Vec::new(),
        }];
        let excused = RecoveryFacts {
            excuses: &lying,
            ..facts
        };
        assert_eq!(
            judge_state(&model, &state(&["a"]), &excused),
            Ok(Judged::Passed { prefix: 1 })
        );
    }
}
