//! The checks after a crash: recover a fresh engine on the crash image and hold it against the
//! reference model.
//!
//! A recovery passes when: it succeeds, or reports detected corruption that an injected fault
//! explains (corruption in the data file needs damage to the data file; corruption in the log
//! may follow damage anywhere); it used a checkpoint at least as new as the newest one whose
//! anchor write (header slot, control file slot, reserved page) is intact in both the truly
//! durable bytes and the crash image, and no newer than the newest anchor ever written; its state
//! equals the model after the commits whose records start before the recovered log end; and
//! that prefix holds every commit acknowledged durable, unless an injected fault damaged the
//! log segment holding the first missing one or an earlier segment. Excuses always name the
//! faults.

use crashpoint::{Engine, Error, Lsn, Options, RecoveryReport};

use crate::fs::{DiskImage, FaultRecord};
use crate::hub::{AnchorWrite, Hub, SimClock};
use crate::model::{first_difference, State};
use crate::outcome::{Failure, FailureKind};
use crate::workload::SimEngine;

/// What the simulator knew at the crash, beyond the image.
pub struct CrashFacts<'a> {
    /// Which crash this follows; None for the reopen after the quiet phase's clean close.
    pub crash_index: Option<u32>,
    /// Faults injected so far in this seed that damage durable data (they persist on disk).
    pub damage: &'a [FaultRecord],
    /// The newest checkpoint whose anchor write is intact in the truly durable bytes and in
    /// the crash image ([`durable_checkpoint`]).
    pub durable_checkpoint: Option<u64>,
    /// The newest checkpoint whose anchor write was ever issued.
    pub anchor_written_max: u64,
}

/// How a recovery check ended when it did not fail.
pub enum Verdict {
    /// The engine recovered and matches the model.
    Recovered {
        engine: Box<SimEngine>,
        state: State,
        report: RecoveryReport,
    },
    /// Recovery found corruption that injected faults explain; the seed can't go on.
    ExcusedCorruption { message: String },
}

/// The newest checkpoint an image makes durable, decided from the disk alone: the highest
/// checkpoint whose anchor write's bytes stand unchanged, where the engine asked for them, in
/// every one of `images` (the truly durable bytes, so a write that merely survived the crash
/// by luck does not count, and the crash image, so later damage does not either). No engine
/// decoder is involved: a bug in the engine's own choice of anchor cannot hide here.
pub fn durable_checkpoint(anchor_writes: &[AnchorWrite], images: &[&DiskImage]) -> Option<u64> {
    anchor_writes
        .iter()
        .filter(|write| {
            images.iter().all(|image| {
                let start = write.offset as usize;
                image.files.get(&write.file).is_some_and(|bytes| {
                    bytes.get(start..start + write.bytes.len()) == Some(write.bytes.as_slice())
                })
            })
        })
        .map(|write| write.checkpoint)
        .max()
}

fn describe(faults: &[FaultRecord]) -> String {
    let shown: Vec<String> = faults.iter().take(3).map(ToString::to_string).collect();
    let more = if faults.len() > 3 {
        format!(" and {} more", faults.len() - 3)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join("; "))
}

fn is_log_file(name: &str) -> bool {
    crashpoint::log::is_log_file(name)
}

fn failure(kind: FailureKind, facts: &CrashFacts<'_>, message: String) -> Failure {
    Failure {
        kind,
        crash_index: facts.crash_index,
        message,
    }
}

/// The injected faults that can explain `error`. Corruption found in the data file needs damage
/// to the data file itself: log damage only ends the log early, which recovery must survive.
/// Corruption found in the log may follow damage anywhere (a rotted header sends recovery to an
/// older checkpoint whose log is gone).
fn excusing_damage(error: &Error, damage: &[FaultRecord]) -> Vec<FaultRecord> {
    match error {
        Error::Corruption { file, .. } if !is_log_file(file) => damage
            .iter()
            .filter(|fault| fault.file == *file)
            .cloned()
            .collect(),
        Error::Corruption { .. } => damage.to_vec(),
        _ => Vec::new(),
    }
}

/// The injected faults that can explain losing the commit at `lsn`: damage to the log segment
/// holding it or to an earlier one (recovery reads segments in order; damage to a later one
/// cannot reach back).
fn excusing_loss(lsn: Lsn, damage: &[FaultRecord]) -> Vec<FaultRecord> {
    damage
        .iter()
        .filter(|fault| {
            crashpoint::log::parse_segment_name(&fault.file).is_some_and(|start| start <= lsn.0)
        })
        .cloned()
        .collect()
}

/// Corruption is acceptable only when an injected fault damaged durable data it can explain.
fn judge_corruption(
    error: &Error,
    facts: &CrashFacts<'_>,
    during: &str,
) -> Result<Verdict, Failure> {
    let excuses = excusing_damage(error, facts.damage);
    if !excuses.is_empty() {
        return Ok(Verdict::ExcusedCorruption {
            message: format!("{during}: {error}; excused by {}", describe(&excuses)),
        });
    }
    let kind = if error.is_corruption() {
        FailureKind::UnexcusedCorruption
    } else {
        FailureKind::RecoveryError
    };
    let unrelated = if error.is_corruption() && !facts.damage.is_empty() {
        format!(
            "; the injected damage ({}) hit other files and does not explain it",
            describe(facts.damage)
        )
    } else {
        String::new()
    };
    Err(failure(
        kind,
        facts,
        format!("{during}: {error}{unrelated}"),
    ))
}

/// Opens a fresh engine on `fs` (built from the crash image) and checks it against `hub`'s
/// model. On success the model keeps the recovered prefix of its history.
pub async fn recover_and_check(
    fs: crate::fs::SimFs,
    options: Options,
    hub: &Hub,
    facts: &CrashFacts<'_>,
) -> Result<Verdict, Failure> {
    let engine = match Engine::open(fs, SimClock::new(), options, hub.observer()).await {
        Ok(engine) => engine,
        Err(error) => return judge_corruption(&error, facts, "recovery"),
    };
    // The engine logs its own recovery report.
    let report = engine.recovery_report().clone();

    if let Some(durable) = facts.durable_checkpoint {
        if report.checkpoint_count < durable {
            return Err(failure(
                FailureKind::StaleCheckpoint,
                facts,
                format!(
                    "recovery used checkpoint {} but checkpoint {durable}'s anchor was durable \
                     and intact",
                    report.checkpoint_count
                ),
            ));
        }
    }
    if report.checkpoint_count > facts.anchor_written_max {
        return Err(failure(
            FailureKind::StaleCheckpoint,
            facts,
            format!(
                "recovery used checkpoint {} but no anchor past {} was ever written",
                report.checkpoint_count, facts.anchor_written_max
            ),
        ));
    }

    let found: State = match engine.scan_all().await {
        Ok(entries) => entries.into_iter().collect(),
        Err(error) => return judge_corruption(&error, facts, "reading the recovered state"),
    };
    let mut hub_state = hub.lock();
    let model = &hub_state.model;
    let prefix = model.prefix_before(report.log_end);
    let expected = model.state_after(prefix);
    if let Some(difference) = first_difference(&expected, &found) {
        let matching = match model.matching_prefix(&found) {
            Some(other) => format!("; the state matches the first {other} commits instead"),
            None => "; the state matches no prefix of the commit history".to_string(),
        };
        return Err(failure(
            FailureKind::Divergence,
            facts,
            format!(
                "after recovery to log end {} ({} of {} commits): {difference}{matching}",
                report.log_end,
                prefix,
                model.commits.len()
            ),
        ));
    }
    let lost = model.lost_durable(prefix);
    if let Some(first) = lost.first() {
        let log_damage = excusing_loss(*first, facts.damage);
        if log_damage.is_empty() {
            return Err(failure(
                FailureKind::UnexcusedLoss,
                facts,
                format!(
                    "{} commits acknowledged durable are missing, the first at LSN {first}; the log ends at {} ({})",
                    lost.len(),
                    report.log_end,
                    report.log_stop_reason
                ),
            ));
        }
        tracing::info!(lost = lost.len(), faults = %describe(&log_damage), "durable commits lost to injected faults");
    }
    tracing::info!(
        crash = ?facts.crash_index,
        checkpoint = report.checkpoint_count,
        log_end = %report.log_end,
        commits = prefix,
        keys = found.len(),
        "check passed: recovered state equals the model"
    );
    hub_state.model.recovered(prefix, found.clone());
    drop(hub_state);
    Ok(Verdict::Recovered {
        engine: Box::new(engine),
        state: found,
        report,
    })
}

#[cfg(test)]
mod tests {
    use crashpoint::{Error, Lsn, Structure};

    use super::{excusing_damage, excusing_loss};
    use crate::fs::{FaultKind, FaultRecord};

    fn rot(file: &str) -> FaultRecord {
        FaultRecord {
            index: 1,
            kind: FaultKind::BitRot,
            file: file.into(),
            offset: 0,
            len: 1,
            detail: String::new(),
        }
    }

    fn corruption(file: &str) -> Error {
        Error::corruption(file, 9216, Structure::Page(0), "checksum mismatch")
    }

    #[test]
    fn data_corruption_needs_damage_to_the_data_file() {
        // Proves log damage no longer excuses a bad page, while any damage may explain a log
        // that recovery cannot use, and non-corruption errors are never excused.
        let segment = "log-00000000000000008192";
        let log_only = [rot(segment)];
        assert!(excusing_damage(&corruption("data"), &log_only).is_empty());
        let both = [rot(segment), rot("data")];
        assert_eq!(
            excusing_damage(&corruption("data"), &both),
            vec![rot("data")]
        );
        assert_eq!(
            excusing_damage(&corruption(segment), &[rot("data")]).len(),
            1
        );
        assert!(excusing_damage(
            &Error::Poisoned {
                cause: "sync failed".into()
            },
            &both
        )
        .is_empty());
    }

    #[test]
    fn a_checkpoint_is_durable_only_where_its_anchor_bytes_stand_in_every_image() {
        // Proves the durable checkpoint comes from the bytes alone: an anchor overwritten or
        // missing from either image does not count, and the newest intact one wins.
        use super::durable_checkpoint;
        use crate::fs::DiskImage;
        use crate::hub::AnchorWrite;
        use std::sync::Arc;
        let write = |checkpoint, offset, byte| AnchorWrite {
            checkpoint,
            file: "data".into(),
            offset,
            bytes: Arc::new(vec![byte; 4]),
        };
        let image = |bytes: Vec<u8>| DiskImage {
            files: [("data".to_string(), bytes)].into_iter().collect(),
        };
        let writes = [write(1, 0, 1), write(2, 8, 2), write(3, 0, 3)];
        let durable = image(vec![3, 3, 3, 3, 0, 0, 0, 0, 2, 2, 2, 2]);
        assert_eq!(durable_checkpoint(&writes, &[&durable]), Some(3));
        let rotted = image(vec![3, 3, 7, 3, 0, 0, 0, 0, 2, 2, 2, 2]);
        assert_eq!(durable_checkpoint(&writes, &[&durable, &rotted]), Some(2));
        let short = image(vec![3, 3, 3, 3, 0, 0, 0, 0, 2, 2]);
        assert_eq!(durable_checkpoint(&writes, &[&short]), Some(3));
        assert_eq!(durable_checkpoint(&writes[1..2], &[&short]), None);
    }

    #[test]
    fn lost_commits_need_damage_at_or_before_their_segment() {
        // Proves damage to a later segment, or to the data file, cannot excuse losing a commit.
        let damage = [
            rot("data"),
            rot("log-00000000000000008192"),
            rot("log-00000000000000016384"),
        ];
        assert!(excusing_loss(Lsn(4096), &damage).is_empty());
        assert_eq!(
            excusing_loss(Lsn(9000), &damage),
            vec![rot("log-00000000000000008192")]
        );
        assert_eq!(excusing_loss(Lsn(20000), &damage).len(), 2);
    }
}
