//! Random operation sequences against the `BTreeMap` reference model: commits, checkpoints,
//! reads, range scans, clean reopens and crash reopens, in both the instant and the no-sync
//! log modes. A failing case prints the operation list that reproduces it (proptest shrinks it
//! and stores the seed under proptest-regressions/).

mod common;

use std::ops::Bound;

use std::sync::Arc;
use std::time::Duration;

use common::{apply, first_difference, model_scan, small_options, value, Model};
use crashpoint::{Engine, Lsn, ManualClock, MemVfs, NoopObserver, Options, SyncMode, Write};
use futures::executor::block_on;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Keys are drawn from `key(0)..key(KEYS)`.
const KEYS: u32 = 60;

/// Key `index`: ordered by index, 8 to 64 bytes long (the options' key_size_max), so internal
/// nodes hold separators of very different sizes.
fn key(index: u32) -> Vec<u8> {
    let mut key = format!("key{index:04}-").into_bytes();
    key.resize(8 + (index as usize * 23) % 57, b'k');
    key
}

type TestEngine = Engine<MemVfs, Arc<ManualClock>>;

async fn open(
    vfs: &MemVfs,
    options: &Options,
    clock: &Arc<ManualClock>,
) -> crashpoint::Result<TestEngine> {
    Engine::open(
        vfs.clone(),
        clock.clone(),
        options.clone(),
        Arc::new(NoopObserver),
    )
    .await
}

#[derive(Clone, Debug)]
enum Op {
    /// One transaction: (key index, Some((value seed, value length)) for a put, None for a
    /// delete).
    Commit(Vec<(u32, Option<(u64, usize)>)>),
    Checkpoint,
    /// Advance the clock, then let the engine decide whether a checkpoint is due.
    CheckpointIfDue {
        advance_secs: u64,
    },
    SyncLog,
    Get(u32),
    /// Keys from `key(start)` to `key(end)` (excluded, or included if `inclusive`; unbounded
    /// if `end == KEYS`), at most `limit`.
    Scan {
        start: u32,
        end: u32,
        inclusive: bool,
        limit: usize,
    },
    /// close(), then open on the same directory.
    CleanReopen,
    /// Drop the engine and open what a power cut would leave (`MemVfs::crash_image`).
    CrashReopen,
}

fn op() -> impl Strategy<Value = Op> {
    let length = prop_oneof![8 => 0usize..=120, 1 => 200usize..=256];
    let write = (
        0..KEYS,
        proptest::option::weighted(0.8, (any::<u64>(), length)),
    );
    prop_oneof![
        12 => proptest::collection::vec(write, 1..=5).prop_map(Op::Commit),
        1 => Just(Op::Checkpoint),
        1 => (0u64..90).prop_map(|advance_secs| Op::CheckpointIfDue { advance_secs }),
        1 => Just(Op::SyncLog),
        2 => (0..KEYS).prop_map(Op::Get),
        2 => (0..=KEYS, 0..=KEYS, any::<bool>(), 1usize..=80)
            .prop_map(|(start, end, inclusive, limit)| Op::Scan { start, end, inclusive, limit }),
        1 => Just(Op::CleanReopen),
        1 => Just(Op::CrashReopen),
    ]
}

fn writes_of(writes: &[(u32, Option<(u64, usize)>)]) -> Vec<Write> {
    writes
        .iter()
        .map(|&(index, put)| match put {
            Some((seed, len)) => Write::put(key(index), value(seed, len)),
            None => Write::delete(key(index)),
        })
        .collect()
}

fn failed(context: impl std::fmt::Display) -> impl FnOnce(crashpoint::Error) -> TestCaseError {
    move |error| TestCaseError::fail(format!("{context}: {error}"))
}

fn entries(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Checks a read-only operation (Get or Scan) against the model.
async fn check_read(
    engine: &TestEngine,
    model: &Model,
    step: usize,
    op: &Op,
) -> Result<(), TestCaseError> {
    match op {
        Op::Get(index) => {
            let found = engine
                .get(&key(*index))
                .await
                .map_err(failed(format!("step {step}: get")))?;
            prop_assert_eq!(
                found.as_ref(),
                model.get(&key(*index)),
                "step {}: get of key {}",
                step,
                index
            );
        }
        Op::Scan {
            start,
            end,
            inclusive,
            limit,
        } => {
            let (start_key, end_key) = (key(*start), key(*end));
            let end_bound = if *end == KEYS {
                Bound::Unbounded
            } else if *inclusive {
                Bound::Included(end_key.as_slice())
            } else {
                Bound::Excluded(end_key.as_slice())
            };
            let found = engine
                .scan(&start_key, end_bound, *limit)
                .await
                .map_err(failed(format!("step {step}: scan")))?;
            let expected = model_scan(model, &start_key, end_bound, *limit);
            if let Some(difference) = first_difference(&found, &expected) {
                return Err(TestCaseError::fail(format!(
                    "step {step}: scan from {start} to {end} (inclusive {inclusive}) limit {limit}: {difference}"
                )));
            }
        }
        _ => unreachable!("only reads are checked here"),
    }
    Ok(())
}

async fn check_all(
    engine: &TestEngine,
    model: &Model,
    context: String,
) -> Result<(), TestCaseError> {
    let found = engine
        .scan_all()
        .await
        .map_err(failed(format!("{context}: scan_all")))?;
    if let Some(difference) = first_difference(&found, &entries(model)) {
        return Err(TestCaseError::fail(format!("{context}: {difference}")));
    }
    Ok(())
}

/// Instant mode: every commit is durable when it returns, so any reopen, clean or not, must
/// show exactly the model.
fn run_instant(ops: &[Op]) -> Result<(), TestCaseError> {
    block_on(async {
        let options = small_options(SyncMode::Instant);
        let mut vfs = MemVfs::new();
        let clock = Arc::new(ManualClock::new());
        let mut engine = open(&vfs, &options, &clock)
            .await
            .map_err(failed("create"))?;
        let mut model = Model::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Commit(writes) => {
                    let writes = writes_of(writes);
                    let mut txn = engine.begin();
                    for write in &writes {
                        match &write.value {
                            Some(value) => txn.put(write.key.clone(), value.clone()),
                            None => txn.delete(write.key.clone()),
                        }
                    }
                    let info = txn
                        .commit()
                        .await
                        .map_err(failed(format!("step {step}: commit")))?;
                    prop_assert!(
                        info.durable,
                        "step {}: an instant commit returned not durable",
                        step
                    );
                    apply(&mut model, &writes);
                }
                Op::Checkpoint => {
                    engine
                        .checkpoint()
                        .await
                        .map_err(failed(format!("step {step}: checkpoint")))?;
                }
                Op::CheckpointIfDue { advance_secs } => {
                    clock.advance(Duration::from_secs(*advance_secs));
                    engine
                        .checkpoint_if_due()
                        .await
                        .map_err(failed(format!("step {step}: checkpoint_if_due")))?;
                }
                Op::SyncLog => {
                    engine
                        .sync_log()
                        .await
                        .map_err(failed(format!("step {step}: sync_log")))?;
                }
                Op::Get(_) | Op::Scan { .. } => check_read(&engine, &model, step, op).await?,
                Op::CleanReopen => {
                    engine
                        .close()
                        .await
                        .map_err(failed(format!("step {step}: close")))?;
                    drop(engine);
                    engine = open(&vfs, &options, &clock)
                        .await
                        .map_err(failed(format!("step {step}: reopen after close")))?;
                    prop_assert_eq!(
                        engine.recovery_report().replayed_commits,
                        0,
                        "step {}: a clean close leaves no commit to replay",
                        step
                    );
                    check_all(
                        &engine,
                        &model,
                        format!("step {step}: after a clean reopen"),
                    )
                    .await?;
                }
                Op::CrashReopen => {
                    drop(engine);
                    vfs = vfs.crash_image();
                    engine = open(&vfs, &options, &clock)
                        .await
                        .map_err(failed(format!("step {step}: reopen after a crash")))?;
                    check_all(&engine, &model, format!("step {step}: after a crash")).await?;
                }
            }
        }
        check_all(&engine, &model, "at the end".to_string()).await
    })
}

/// No-sync mode: a crash loses some suffix of the commits. The recovered state must be the
/// model after a prefix of the commits in log order; that prefix ends exactly at the last
/// commit recovery reports replaying (or at the checkpoint, if it replayed none), and it holds
/// every commit made durable before the crash (one that returned durable, one before the last
/// sync_log or checkpoint, one below the engine's durable LSN).
fn run_no_sync(ops: &[Op]) -> Result<(), TestCaseError> {
    block_on(async {
        let options = small_options(SyncMode::NoSync);
        let mut vfs = MemVfs::new();
        let clock = Arc::new(ManualClock::new());
        let mut engine = open(&vfs, &options, &clock)
            .await
            .map_err(failed("create"))?;
        let mut model = Model::new();
        // history[i] is the model after the first i commits since the last reopen; lsns[i] is
        // commit i's LSN; the first `durable` commits are known durable.
        let mut history = vec![model.clone()];
        let mut lsns: Vec<Lsn> = Vec::new();
        let mut durable = 0usize;
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Commit(writes) => {
                    let writes = writes_of(writes);
                    let info = engine
                        .commit(writes.clone())
                        .await
                        .map_err(failed(format!("step {step}: commit")))?;
                    // A later write to the same key within one commit wins, in the engine as in apply.
                    apply(&mut model, &writes);
                    if let Some(last) = lsns.last() {
                        prop_assert!(
                            info.lsn > *last,
                            "step {}: LSN {} is not above {}",
                            step,
                            info.lsn,
                            last
                        );
                    }
                    lsns.push(info.lsn);
                    history.push(model.clone());
                    if info.durable {
                        durable = lsns.len();
                    }
                }
                Op::Checkpoint => {
                    engine
                        .checkpoint()
                        .await
                        .map_err(failed(format!("step {step}: checkpoint")))?;
                    durable = lsns.len();
                }
                Op::CheckpointIfDue { advance_secs } => {
                    clock.advance(Duration::from_secs(*advance_secs));
                    let ran = engine
                        .checkpoint_if_due()
                        .await
                        .map_err(failed(format!("step {step}: checkpoint_if_due")))?;
                    if ran.is_some() {
                        durable = lsns.len();
                    }
                }
                Op::SyncLog => {
                    engine
                        .sync_log()
                        .await
                        .map_err(failed(format!("step {step}: sync_log")))?;
                    durable = lsns.len();
                }
                Op::Get(_) | Op::Scan { .. } => check_read(&engine, &model, step, op).await?,
                Op::CleanReopen => {
                    engine
                        .close()
                        .await
                        .map_err(failed(format!("step {step}: close")))?;
                    drop(engine);
                    engine = open(&vfs, &options, &clock)
                        .await
                        .map_err(failed(format!("step {step}: reopen after close")))?;
                    check_all(
                        &engine,
                        &model,
                        format!("step {step}: after a clean reopen"),
                    )
                    .await?;
                    history = vec![model.clone()];
                    lsns.clear();
                    durable = 0;
                }
                Op::CrashReopen => {
                    let durable_lsn = engine.durable_lsn();
                    let below_durable_lsn = lsns.iter().filter(|lsn| **lsn < durable_lsn).count();
                    let must_keep = durable.max(below_durable_lsn);
                    drop(engine);
                    vfs = vfs.crash_image();
                    engine = open(&vfs, &options, &clock)
                        .await
                        .map_err(failed(format!("step {step}: reopen after a crash")))?;
                    let report = engine.recovery_report().clone();
                    let bound = report
                        .last_commit_lsn
                        .unwrap_or(Lsn(0))
                        .max(report.checkpoint_lsn);
                    let kept = lsns.iter().filter(|lsn| **lsn <= bound).count();
                    prop_assert!(
                        kept >= must_keep,
                        "step {}: recovery kept {} of {} commits but {} were durable (report {:?})",
                        step,
                        kept,
                        lsns.len(),
                        must_keep,
                        report
                    );
                    let found = engine
                        .scan_all()
                        .await
                        .map_err(failed(format!("step {step}: scan_all after a crash")))?;
                    if let Some(difference) = first_difference(&found, &entries(&history[kept])) {
                        let matching: Vec<usize> = (0..history.len())
                            .filter(|&index| {
                                first_difference(&found, &entries(&history[index])).is_none()
                            })
                            .collect();
                        return Err(TestCaseError::fail(format!(
                            "step {step}: after a crash the state is not the model after the {kept} \
                             commits recovery replayed: {difference}; prefixes that match: {matching:?}"
                        )));
                    }
                    model = history[kept].clone();
                    history = vec![model.clone()];
                    lsns.clear();
                    durable = 0;
                }
            }
        }
        check_all(&engine, &model, "at the end".to_string()).await
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn instant_mode_matches_the_model_across_crashes(ops in proptest::collection::vec(op(), 1..150)) {
        // Proves instant-mode reads, scans, clean reopens and crash reopens always equal the model.
        run_instant(&ops)?;
    }

    #[test]
    fn no_sync_mode_recovers_a_durable_prefix_of_commits(ops in proptest::collection::vec(op(), 1..150)) {
        // Proves a no-sync crash recovers exactly a prefix of commits in log order that holds every durable one.
        run_no_sync(&ops)?;
    }
}

#[test]
fn model_check_fails_when_the_engine_disagrees() {
    // Proves the model comparison can fail (a canary for the harness): a missing key is reported.
    let mut model = Model::new();
    model.insert(key(1), value(1, 5));
    model.insert(key(2), value(2, 5));
    let found = vec![(key(1), value(1, 5))];
    let difference = first_difference(&found, &entries(&model)).expect("the states differ");
    assert!(difference.contains("key0002"), "{difference}");
    assert!(difference.contains("found nothing"), "{difference}");
}
