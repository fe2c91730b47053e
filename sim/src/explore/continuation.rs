//! Exploring past one recovery: a recovered state goes on. The engine that recovered it
//! commits more (each commit durable before it returns) and takes a checkpoint, with every I/O
//! call of that a crash point; the states of each second crash are enumerated as the first
//! crash's were, recovered and checked, and the continued engine itself reads back what the
//! model says it holds.
//!
//! A bug that leaves a recovered disk looking right but unfit to go on (a torn tail left in
//! place, new records appended inside a sector that holds durable ones, a recovered allocator
//! that hands out live blocks) passes the first check and fails here.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crashpoint::{Lsn, SyncMode, Write};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::check::{Checker, PointFacts, StateVerdict};
use super::enumerate::Shape;
use crate::fs::{CrashPoint, DiskImage, SimFs};
use crate::hub::{AnchorWrite, Hub};
use crate::model::first_difference;
use crate::oracle::{self, Verdict};
use crate::outcome::{Failure, FailureKind};

/// Commits made after the recovery; the checkpoint comes after the first half of them.
pub const CONTINUATION_COMMITS: u32 = 4;
/// States checked at most per second-crash point (the two extremes first).
pub const SECOND_STATES_PER_POINT: u64 = 4;
/// Second-crash points kept at most per continued state.
const SECOND_POINTS_MAX: usize = 96;
/// Keys the continuation writes (the workload's naming, so they meet keys it wrote).
const CONTINUATION_KEYS: u32 = 64;

/// A crash point of the continuation, with the model as it stood there.
struct SecondPoint {
    io_index: u64,
    crash_point: CrashPoint,
    commits: usize,
    acknowledged_durable: BTreeSet<Lsn>,
    anchor_writes: Vec<AnchorWrite>,
}

/// What continuing one recovered state found.
#[derive(Debug, Default)]
pub struct Continued {
    /// The state recovered (the first check passed there) and went on.
    pub continued: bool,
    /// Second-crash states checked.
    pub states_checked: u64,
    /// The first failure: where, in words, and what.
    pub failure: Option<(String, Failure)>,
}

impl Checker {
    /// Recovers `image` again, continues it (commits, a checkpoint, more commits), then checks
    /// the continued engine's contents and every second-crash state within budget. `seed`
    /// draws the commits and the sampled states.
    pub async fn continue_state(
        &self,
        image: DiskImage,
        facts: &PointFacts,
        durable_checkpoint: Option<u64>,
        seed: u64,
    ) -> Continued {
        let mut outcome = Continued::default();
        let fs = SimFs::from_image(image, self.fs_config.clone());
        fs.set_faults_enabled(false);
        let hub = Hub::default();
        let mut options = self.options.clone();
        // Every continued commit is acknowledged durable, so a second crash that loses one
        // must be explained.
        options.sync_mode = SyncMode::Instant;
        {
            let mut state = hub.lock();
            state.model = facts.model.clone();
            state.expect_engine(&options);
            state.anchor_writes = facts.anchor_writes.clone();
        }
        hub.attach(&fs);
        let crash_facts = facts.crash_facts(durable_checkpoint);
        let engine = match oracle::recover_and_check(fs.clone(), options, &hub, &crash_facts).await
        {
            Ok(Verdict::Recovered { engine, .. }) => engine,
            // The first check judged this state; only a recovered one goes on.
            Ok(Verdict::ExcusedCorruption { .. }) | Err(_) => return outcome,
        };
        outcome.continued = true;
        let second_phase = facts.phase + 1;
        let points: Arc<Mutex<Vec<SecondPoint>>> = Arc::default();
        let recorder_points = points.clone();
        let recorder_hub = hub.clone();
        fs.set_recorder(Some(Arc::new(move |io_index, crash_point| {
            let state = recorder_hub.lock();
            let mut points = recorder_points.lock().unwrap_or_else(|p| p.into_inner());
            if points.len() < SECOND_POINTS_MAX {
                points.push(SecondPoint {
                    io_index,
                    crash_point,
                    commits: state.model.commits.len(),
                    acknowledged_durable: state.model.acknowledged_durable.clone(),
                    anchor_writes: state.anchor_writes.clone(),
                });
            }
        })));
        fs.set_recording(true);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let went_on = go_on(&engine, &hub, &mut rng).await;
        fs.set_recording(false);
        fs.set_recorder(None);
        let failure = |kind, message: String| Failure {
            kind,
            crash_index: Some(second_phase),
            message,
        };
        if let Err(message) = went_on {
            outcome.failure = Some((
                "while continuing after the recovery".to_string(),
                failure(FailureKind::RecoveryError, message),
            ));
            return outcome;
        }
        // The final check: the continued engine holds exactly the model.
        match engine.scan_all().await {
            Ok(entries) => {
                let found = entries.into_iter().collect();
                let expected = hub.lock().model.live.clone();
                if let Some(difference) = first_difference(&expected, &found) {
                    outcome.failure = Some((
                        "reading back after continuing".to_string(),
                        failure(FailureKind::Divergence, difference),
                    ));
                    return outcome;
                }
            }
            Err(error) => {
                outcome.failure = Some((
                    "reading back after continuing".to_string(),
                    failure(FailureKind::RecoveryError, error.to_string()),
                ));
                return outcome;
            }
        }
        drop(engine);
        let history = hub.lock().model.clone();
        let points = std::mem::take(&mut *points.lock().unwrap_or_else(|p| p.into_inner()));
        for (index, point) in points.iter().enumerate() {
            let model = history.truncated(point.commits, point.acknowledged_durable.clone());
            let second = PointFacts::new(
                second_phase,
                model,
                facts.damage.clone(),
                &point.crash_point,
                point.anchor_writes.clone(),
            );
            let shape = Shape::of(&point.crash_point, rng.gen(), self.garbage);
            for (state, spec) in shape
                .states()
                .take(SECOND_STATES_PER_POINT as usize)
                .enumerate()
            {
                let decisions = shape.decisions(&point.crash_point, &spec);
                let (image, _) = point.crash_point.materialize(&decisions);
                let durable = second.durable_checkpoint(&image);
                let (verdict, _) = self.recover(image, &second, durable).await;
                outcome.states_checked += 1;
                if let StateVerdict::Failed(failure) = verdict {
                    outcome.failure = Some((
                        format!(
                            "continued ({CONTINUATION_COMMITS} durable commits and a checkpoint), \
                             then crashed at its point {index} (I/O #{}), state {state}: {spec}",
                            point.io_index
                        ),
                        failure,
                    ));
                    return outcome;
                }
            }
        }
        outcome
    }
}

/// The continuation itself: durable commits, a checkpoint halfway. An error is a failure: the
/// disk has no faults now.
async fn go_on(
    engine: &crate::workload::SimEngine,
    hub: &Hub,
    rng: &mut ChaCha8Rng,
) -> Result<(), String> {
    for commit in 0..CONTINUATION_COMMITS {
        if commit == CONTINUATION_COMMITS / 2 {
            engine
                .checkpoint()
                .await
                .map_err(|error| format!("checkpoint after the recovery failed: {error}"))?;
        }
        let writes: Vec<Write> = (0..rng.gen_range(1..=3))
            .map(|_| {
                let key = format!("key{:06}", rng.gen_range(0..CONTINUATION_KEYS)).into_bytes();
                let value = rng.gen_bool(0.85).then(|| {
                    let len = rng.gen_range(1..=48);
                    let mut value = format!("c{commit}-").into_bytes();
                    value.extend((0..len).map(|_| rng.gen_range(b'a'..=b'z')));
                    value
                });
                Write { key, value }
            })
            .collect();
        let info = engine
            .commit(writes)
            .await
            .map_err(|error| format!("commit {commit} after the recovery failed: {error}"))?;
        if info.durable {
            hub.lock().model.acknowledged_durable.insert(info.lsn);
        }
    }
    Ok(())
}
