//! A failed fsync poisons the engine: the failing call fails, every later write, checkpoint and
//! log sync fails with `Error::Poisoned` even once the disk works again (nothing retries the
//! sync and assumes the dropped data reached the disk), and reopening recovers every commit
//! that was acknowledged durable before the failure.

mod common;

use std::sync::atomic::Ordering;

use common::failing_vfs::FailingVfs;
use common::{apply, assert_same, key, open_on, small_options, value, yield_now, Model};
use crashpoint::{Engine, Error, ManualClock, Options, SyncMode, Write};
use futures::executor::block_on;

type TestEngine = Engine<FailingVfs, ManualClock>;

async fn open(vfs: &FailingVfs, options: &Options) -> TestEngine {
    open_on(vfs.clone(), options).await.unwrap()
}

fn writes_for(round: u32) -> Vec<Write> {
    vec![
        Write::put(
            key(round % 90),
            value(u64::from(round), 30 + (round as usize * 7) % 150),
        ),
        Write::put(key((round * 7 + 3) % 90), value(u64::from(round) + 1, 25)),
    ]
}

/// Commits rounds, each acknowledged durable, applying them to the model.
async fn commit_durable(engine: &TestEngine, model: &mut Model, rounds: std::ops::Range<u32>) {
    for round in rounds {
        let writes = writes_for(round);
        let info = engine.commit(writes.clone()).await.unwrap();
        assert!(info.durable);
        apply(model, &writes);
    }
}

fn assert_poisoned<T: std::fmt::Debug>(result: crashpoint::Result<T>, what: &str) {
    match result {
        Err(Error::Poisoned { .. }) => {}
        other => panic!("{what}: expected Error::Poisoned, got {other:?}"),
    }
}

/// Every entry point that could write or sync refuses a poisoned engine, and none of them
/// reaches the disk's sync.
async fn assert_refuses_everything(engine: &TestEngine, vfs: &FailingVfs) {
    let syncs = vfs.syncs();
    assert!(engine.poisoned().is_some(), "the engine is not poisoned");
    assert_poisoned(engine.commit(writes_for(9_999)).await, "commit");
    assert_poisoned(engine.begin().commit().await, "empty transaction");
    assert_poisoned(engine.checkpoint().await, "checkpoint");
    assert_poisoned(engine.checkpoint_if_due().await, "checkpoint_if_due");
    assert_poisoned(engine.sync_log().await, "sync_log");
    assert_poisoned(engine.get(&key(1)).await, "get");
    assert_poisoned(engine.close().await, "close");
    assert_eq!(vfs.syncs(), syncs, "a poisoned engine synced again");
}

/// What a power cut now would leave, opened with a healthy disk; its full contents.
async fn recover(vfs: &FailingVfs, options: &Options) -> Vec<(Vec<u8>, Vec<u8>)> {
    let engine = open_on(vfs.inner.crash_image(), options).await.unwrap();
    engine.scan_all().await.unwrap()
}

#[test]
fn a_failed_log_sync_fails_the_commit_and_poisons_the_engine() {
    // Proves a commit whose log fsync fails is not acknowledged, and the engine refuses all later work even after the disk recovers.
    block_on(async {
        let options = small_options(SyncMode::Instant);
        let vfs = FailingVfs::new();
        let engine = open(&vfs, &options).await;
        let mut model = Model::new();
        commit_durable(&engine, &mut model, 0..80).await;
        let durable_lsn = engine.durable_lsn();

        vfs.fail_log_sync.store(true, Ordering::SeqCst);
        let failed_writes = writes_for(80);
        let result = engine.commit(failed_writes.clone()).await;
        assert!(
            matches!(result, Err(Error::Io { op: "sync", .. })),
            "the commit returned {result:?}"
        );
        assert_eq!(
            engine.durable_lsn(),
            durable_lsn,
            "a failed sync moved the durable LSN"
        );
        vfs.fail_log_sync.store(false, Ordering::SeqCst);
        assert_refuses_everything(&engine, &vfs).await;
        drop(engine);

        // The failed commit was never acknowledged; the disk never made it durable either.
        let found = recover(&vfs, &options).await;
        assert_same(&found, &model, "recovered after a failed log sync");
    });
}

#[test]
fn a_failed_data_sync_during_a_checkpoint_poisons_the_engine() {
    // Proves a checkpoint whose data-file fsync fails fails and poisons, and recovery keeps every acknowledged commit.
    block_on(async {
        let options = small_options(SyncMode::Instant);
        let vfs = FailingVfs::new();
        let engine = open(&vfs, &options).await;
        let mut model = Model::new();
        commit_durable(&engine, &mut model, 0..120).await;

        vfs.fail_data_sync.store(true, Ordering::SeqCst);
        let result = engine.checkpoint().await;
        assert!(
            matches!(result, Err(Error::Io { op: "sync", .. })),
            "the checkpoint returned {result:?}"
        );
        vfs.fail_data_sync.store(false, Ordering::SeqCst);
        assert_refuses_everything(&engine, &vfs).await;
        drop(engine);

        let found = recover(&vfs, &options).await;
        assert_same(&found, &model, "recovered after a failed data sync");
    });
}

#[test]
fn a_failed_log_sync_in_begin_checkpoint_poisons_the_engine() {
    // Proves a checkpoint whose begin record cannot be synced fails and poisons, and recovery keeps every acknowledged commit.
    block_on(async {
        let options = small_options(SyncMode::NoSync);
        let vfs = FailingVfs::new();
        let engine = open(&vfs, &options).await;
        let mut model = Model::new();
        for round in 0..40 {
            let writes = writes_for(round);
            engine.commit(writes.clone()).await.unwrap();
            apply(&mut model, &writes);
        }
        engine.sync_log().await.unwrap();
        let synced = model.clone();
        for round in 40..60 {
            engine.commit(writes_for(round)).await.unwrap();
        }

        vfs.fail_log_sync.store(true, Ordering::SeqCst);
        let result = engine.checkpoint().await;
        assert!(
            matches!(result, Err(Error::Io { op: "sync", .. })),
            "the checkpoint returned {result:?}"
        );
        vfs.fail_log_sync.store(false, Ordering::SeqCst);
        assert_refuses_everything(&engine, &vfs).await;
        drop(engine);

        let found = recover(&vfs, &options).await;
        assert_same(
            &found,
            &synced,
            "recovered after a failed begin_checkpoint sync",
        );
    });
}

#[test]
fn a_failed_group_sync_fails_every_waiting_commit() {
    // Proves in periodic mode a failed sync_log wakes and fails every commit waiting for it; none is acknowledged.
    block_on(async {
        let options = small_options(SyncMode::Periodic);
        let vfs = FailingVfs::new();
        let engine = open(&vfs, &options).await;
        let mut model = Model::new();
        let batch: Vec<Vec<Write>> = (0..10).map(writes_for).collect();
        let commits =
            futures::future::join_all(batch.iter().map(|writes| engine.commit(writes.clone())));
        let sync = async {
            yield_now().await;
            engine.sync_log().await
        };
        let (results, sync) = futures::future::join(commits, sync).await;
        for (writes, result) in batch.iter().zip(results) {
            assert!(result.unwrap().durable);
            apply(&mut model, writes);
        }
        sync.unwrap();

        vfs.fail_log_sync.store(true, Ordering::SeqCst);
        let commits =
            futures::future::join_all((10..20).map(|round| engine.commit(writes_for(round))));
        let sync = async {
            yield_now().await;
            engine.sync_log().await
        };
        let (results, sync) = futures::future::join(commits, sync).await;
        assert!(
            matches!(sync, Err(Error::Io { op: "sync", .. })),
            "sync_log returned {sync:?}"
        );
        for result in results {
            assert_poisoned(result, "a commit waiting for the failed sync");
        }
        vfs.fail_log_sync.store(false, Ordering::SeqCst);
        assert_refuses_everything(&engine, &vfs).await;
        drop(engine);

        let found = recover(&vfs, &options).await;
        assert_same(&found, &model, "recovered after a failed group sync");
    });
}
