//! The checks after a crash: recover a fresh engine on the crash image and hold it against the
//! reference model.
//!
//! A recovery passes when: no commit was acknowledged durable after a failed fsync of the log
//! whose record was not durable when it failed (PostgreSQL's rule, checked first, whatever the
//! image holds); recovery succeeds, or reports detected corruption that an injected fault
//! explains (corruption in the data file needs damage to the data file; corruption in the log
//! may follow damage anywhere); it used a checkpoint at least as new as the newest one whose
//! anchor write (header slot, control file slot, reserved page) is intact in both the truly
//! durable bytes and the crash image, at least as new as the newest checkpoint
//! `request_checkpoint` resolved Ok (unless a fault touched a file holding anchors), and no
//! newer than the newest anchor ever written; its state
//! equals the model after the commits whose records start before the recovered log end; and
//! that prefix holds every commit acknowledged durable, unless injected damage explains where
//! the log ended: damaged bytes of the log from the recovered log end up to the end of the
//! first lost commit's record ([`excusing_loss`]), or, when recovery used a checkpoint older
//! than the newest header written (or found no header and created the database again), damage
//! to the anchor ([`anchor_damage`]). Excuses always name the faults.

use crashpoint::strategy::AnchorRegion;
use crashpoint::{Engine, Error, Lsn, Options, RecoveryReport};

use crate::fs::{DiskImage, FaultKind, FaultRecord};
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
    /// The newest checkpoint `request_checkpoint` resolved Ok before the crash (0: none).
    pub forced_durable: u64,
    /// Faults the crashed phase injected into the files holding anchors (a lying fsync, a
    /// lost write): they may keep a checkpoint reported durable from being so.
    pub anchor_faults: &'a [FaultRecord],
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

/// Up to three faults in words, and how many more.
pub(crate) fn describe(faults: &[FaultRecord]) -> String {
    let shown: Vec<String> = faults.iter().take(3).map(ToString::to_string).collect();
    let more = if faults.len() > 3 {
        format!(" and {} more", faults.len() - 3)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join("; "))
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
/// older checkpoint whose log is gone). An I/O error needs a latent sector error in its file.
fn excusing_damage(error: &Error, damage: &[FaultRecord]) -> Vec<FaultRecord> {
    match error {
        Error::Corruption { file, .. } if !crate::log_names::is_log_file(file) => damage
            .iter()
            .filter(|fault| fault.file == *file)
            .cloned()
            .collect(),
        Error::Corruption { .. } => damage.to_vec(),
        // A read that failed is detected damage when a latent sector error made a sector of
        // that file unreadable.
        Error::Io { file, .. } => damage
            .iter()
            .filter(|fault| fault.kind == FaultKind::LatentSectorError && fault.file == *file)
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The injected damage that can explain a recovered log that ends at `log_end` although the
/// commit whose record ends at `first_lost_end` was acknowledged durable: damaged bytes of a
/// log segment (a segment's byte `o` is LSN `start + o`) in `[log_end, first_lost_end)`. A
/// correct scan stops at the first record it cannot verify, so the damage that ended the log
/// lies in the record at the log end, and that record is the lost commit's or an earlier one.
/// Damage anywhere else (another place in the log, the data file) cannot explain the loss.
/// With `fsync_errors_excuse` false (a lost commit was acknowledged after a failed fsync) fsync
/// errors explain nothing.
fn excusing_loss(
    log_end: Lsn,
    first_lost_end: u64,
    fsync_errors_excuse: bool,
    damage: &[FaultRecord],
) -> Vec<FaultRecord> {
    damage
        .iter()
        .filter(|fault| fsync_errors_excuse || fault.kind != FaultKind::FsyncError)
        .filter(|fault| {
            let Some(start) = crate::log_names::redo_segment_start(&fault.file) else {
                return false;
            };
            fault.damaged.iter().any(|&(from, to)| {
                start.saturating_add(from) < first_lost_end && start.saturating_add(to) > log_end.0
            })
        })
        .cloned()
        .collect()
}

/// The injected damage to the strategy's anchor (a header slot, a control file slot, a
/// reserved page: `regions`). It can send recovery back to an older checkpoint whose log the
/// engine had already trimmed when the newer anchor was written, so the log ends where the
/// trimmed part begins: durable commits lost, not corruption.
fn anchor_damage(damage: &[FaultRecord], regions: &[AnchorRegion]) -> Vec<FaultRecord> {
    damage
        .iter()
        .filter(|fault| {
            regions.iter().any(|region| {
                fault.file == region.file
                    && fault
                        .damaged
                        .iter()
                        .any(|&(from, to)| from < region.offset + region.len && region.offset < to)
            })
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

/// `facts`' damage, and the faults `disk` (the recovery's own) injected so far that explain
/// what a read found.
fn damage_seen(facts: &CrashFacts<'_>, disk: &crate::fs::SimFs) -> Vec<FaultRecord> {
    let mut damage = facts.damage.to_vec();
    damage.extend(
        disk.faults()
            .into_iter()
            .filter(FaultRecord::explains_reads),
    );
    damage
}

/// Opens a fresh engine on `fs` (built from the crash image) and checks it against `hub`'s
/// model. On success the model keeps the recovered prefix of its history.
pub async fn recover_and_check(
    fs: crate::fs::SimFs,
    options: Options,
    hub: &Hub,
    facts: &CrashFacts<'_>,
) -> Result<Verdict, Failure> {
    let broken_promise = hub
        .lock()
        .model
        .acknowledged_after_fsync_error
        .iter()
        .next()
        .map(|(lsn, failed)| (*lsn, failed.clone()));
    if let Some((lsn, failed)) = broken_promise {
        return Err(failure(
            FailureKind::AcknowledgedAfterFsyncError,
            facts,
            format!(
                "the commit at LSN {lsn} was acknowledged durable after the failed {failed}, \
                 though its record was not durable when the fsync failed: after a failed fsync \
                 nothing may be reported durable until recovery (PostgreSQL's rule)"
            ),
        ));
    }
    let disk = fs.clone();
    let anchor_regions = options.strategy.anchor_regions();
    let opened = Engine::open(fs, SimClock::new(), options, hub.observer()).await;
    // What the recovery's own reads met (rot, latent errors, misdirected reads) explains what
    // it found as much as the damage before the crash does.
    let damage = damage_seen(facts, &disk);
    // The durable checkpoint was decided from the crash image; a read at recovery that met
    // damage on an anchor (rot, a latent error, a misdirected read) may hide it from recovery.
    let anchor_hidden_at_recovery =
        !anchor_damage(&damage[facts.damage.len()..], &anchor_regions).is_empty();
    let facts = &CrashFacts {
        damage: &damage,
        ..*facts
    };
    let engine = match opened {
        Ok(engine) => engine,
        Err(error) => return judge_corruption(&error, facts, "recovery"),
    };
    // The engine logs its own recovery report.
    let report = engine.recovery_report().clone();

    if let Some(durable) = facts.durable_checkpoint {
        if report.checkpoint_count < durable && !anchor_hidden_at_recovery {
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
    if report.checkpoint_count < facts.forced_durable
        && !anchor_hidden_at_recovery
        && facts.anchor_faults.is_empty()
        && anchor_damage(facts.damage, &anchor_regions).is_empty()
    {
        return Err(failure(
            FailureKind::StaleCheckpoint,
            facts,
            format!(
                "recovery used checkpoint {} but request_checkpoint resolved Ok for checkpoint \
                 {}, promising it durable, and no injected fault touched an anchor",
                report.checkpoint_count, facts.forced_durable
            ),
        ));
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
        Err(error) => {
            let damage = damage_seen(facts, &disk);
            let facts = &CrashFacts {
                damage: &damage,
                ..*facts
            };
            return judge_corruption(&error, facts, "reading the recovered state");
        }
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
        let first_end = model.record_end(*first).unwrap_or(first.0 + 1);
        let fsync_errors_excuse = lost
            .iter()
            .all(|lsn| !model.acknowledged_after_fsync_error.contains_key(lsn));
        let mut log_damage =
            excusing_loss(report.log_end, first_end, fsync_errors_excuse, facts.damage);
        if report.created || report.checkpoint_count < facts.anchor_written_max {
            log_damage.extend(anchor_damage(facts.damage, &anchor_regions));
        }
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

    use crate::fs::FaultKind;

    use super::{anchor_damage, excusing_damage, excusing_loss};
    use crate::fs::FaultRecord;

    fn rot(file: &str) -> FaultRecord {
        FaultRecord {
            index: 1,
            kind: FaultKind::BitRot,
            file: file.into(),
            offset: 0,
            len: 1,
            detail: String::new(),
            damaged: vec![(0, 1)],
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

    fn damaged(kind: FaultKind, file: &str, ranges: &[(u64, u64)]) -> FaultRecord {
        FaultRecord {
            kind,
            damaged: ranges.to_vec(),
            ..rot(file)
        }
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
            unreadable: Default::default(),
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
    fn lost_commits_need_damage_where_the_log_ended() {
        // Proves only damaged log bytes between the recovered log end and the end of the first
        // lost commit's record excuse the loss: damage after it, before the log end, in the
        // data file, or an fsync error when a lost commit was acknowledged after one, does not.
        let segment = "log-00000000000000008192";
        let later = "log-00000000000000016384";
        let in_record = damaged(FaultKind::BitRot, segment, &[(1000, 1001)]);
        let before_end = damaged(FaultKind::BitRot, segment, &[(10, 11)]);
        let after_record = damaged(FaultKind::BitRot, later, &[(0, 1)]);
        let in_data = damaged(FaultKind::BitRot, "data", &[(9200, 9201)]);
        let dropped = damaged(FaultKind::FsyncError, segment, &[(900, 1400)]);
        let all = [
            in_record.clone(),
            before_end,
            after_record,
            in_data,
            dropped.clone(),
        ];
        // The log ends at LSN 9100; the first lost commit spans [9150, 9300).
        assert_eq!(
            excusing_loss(Lsn(9100), 9300, true, &all),
            vec![in_record.clone(), dropped]
        );
        assert_eq!(excusing_loss(Lsn(9100), 9300, false, &all), vec![in_record]);
        assert!(excusing_loss(Lsn(9300), 9400, true, &all[2..4]).is_empty());
    }

    #[test]
    fn only_damage_to_an_anchor_slot_counts_as_anchor_damage() {
        // Proves a misdirected write that missed slot 1, or rot in slot 0, is header damage,
        // and damage to pages or to the log is not.
        let missed_slot = damaged(FaultKind::MisdirectedWrite, "data", &[(4096, 4608)]);
        let rotted_slot = damaged(FaultKind::BitRot, "data", &[(100, 101)]);
        let page = damaged(FaultKind::BitRot, "data", &[(9300, 9301)]);
        let log = damaged(FaultKind::BitRot, "log-00000000000000000000", &[(100, 101)]);
        assert_eq!(
            anchor_damage(
                &[missed_slot.clone(), page, log, rotted_slot.clone()],
                &crashpoint::Strategy::Sharp.anchor_regions()
            ),
            vec![missed_slot, rotted_slot]
        );
    }
}
