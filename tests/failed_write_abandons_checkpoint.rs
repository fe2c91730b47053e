//! A failed (torn) data-file write during a checkpoint abandons that checkpoint without
//! poisoning the engine: the previous checkpoint stays the latest, commits go on, the next
//! checkpoint succeeds, and a crash at either point recovers every commit. The one exception
//! is the header write: what it left in its slot is unknown, so it poisons, and recovery from
//! the disk still holds every commit.

mod common;

use std::sync::atomic::Ordering;

use common::failing_vfs::FailingVfs;
use common::{apply, assert_same, key, open_on, small_options, value, Model};
use crashpoint::{Error, SyncMode, Write};
use futures::executor::block_on;

fn writes_for(round: u32) -> Vec<Write> {
    vec![Write::put(
        key((round * 13) % 120),
        value(u64::from(round), 40 + (round as usize * 11) % 160),
    )]
}

#[test]
fn a_failed_checkpoint_write_abandons_the_checkpoint_without_losing_data() {
    // Proves a torn page, translation or header write fails only that checkpoint; later work and crash recovery keep every commit.
    block_on(async {
        let options = small_options(SyncMode::Instant);
        let mut failed_at = Vec::new();
        let mut header_failures = 0;
        // Fail the n-th data write of one checkpoint, for every n until the checkpoint has fewer writes.
        for n in 0..64i64 {
            let vfs = FailingVfs::new();
            let engine = open_on(vfs.clone(), &options).await.unwrap();
            let mut model = Model::new();
            for round in 0..150 {
                let writes = writes_for(round);
                engine.commit(writes.clone()).await.unwrap();
                apply(&mut model, &writes);
            }
            let count_before = engine.checkpoint_count().await;
            vfs.data_writes_before_failure.store(n, Ordering::SeqCst);
            let result = engine.checkpoint().await;
            vfs.data_writes_before_failure.store(-1, Ordering::SeqCst);
            match result {
                Ok(count) => {
                    assert_eq!(count, count_before + 1);
                    assert!(
                        n >= 3,
                        "a checkpoint of 150 commits made only {n} data writes"
                    );
                    break;
                }
                Err(Error::Io { op: "write", .. }) => failed_at.push(n),
                Err(other) => panic!("write {n}: the checkpoint failed with {other}"),
            }
            if engine.poisoned().is_some() {
                header_failures += 1;
                let crashed = open_on(vfs.inner.crash_image(), &options).await.unwrap();
                assert_same(
                    &crashed.scan_all().await.unwrap(),
                    &model,
                    &format!("write {n}: crash after a failed header write"),
                );
                continue;
            }
            assert!(
                engine.poisoned().is_none(),
                "write {n}: a failed write poisoned the engine"
            );
            assert_eq!(
                engine.checkpoint_count().await,
                count_before,
                "write {n}: the abandoned checkpoint counts"
            );

            let crashed = open_on(vfs.inner.crash_image(), &options).await.unwrap();
            assert_eq!(
                crashed.recovery_report().checkpoint_count,
                count_before,
                "write {n}"
            );
            assert_same(
                &crashed.scan_all().await.unwrap(),
                &model,
                &format!("write {n}: crash after the failed checkpoint"),
            );
            drop(crashed);

            for round in 150..250 {
                let writes = writes_for(round);
                engine.commit(writes.clone()).await.unwrap();
                apply(&mut model, &writes);
            }
            assert_same(
                &engine.scan_all().await.unwrap(),
                &model,
                &format!("write {n}: live state after the failed checkpoint"),
            );
            let count = engine.checkpoint().await.unwrap();
            assert_eq!(
                count,
                count_before + 1,
                "write {n}: the retried checkpoint's count"
            );
            let crashed = open_on(vfs.inner.crash_image(), &options).await.unwrap();
            assert_eq!(
                crashed.recovery_report().checkpoint_count,
                count,
                "write {n}"
            );
            assert_same(
                &crashed.scan_all().await.unwrap(),
                &model,
                &format!("write {n}: crash after the retried checkpoint"),
            );
            engine.close().await.unwrap();
            let reopened = open_on(vfs.inner.clone(), &options).await.unwrap();
            assert_same(
                &reopened.scan_all().await.unwrap(),
                &model,
                &format!("write {n}: reopen after close"),
            );
        }
        assert!(
            failed_at.len() >= 3,
            "only writes {failed_at:?} were failed"
        );
        assert_eq!(header_failures, 1, "exactly the header write poisons");
    });
}
