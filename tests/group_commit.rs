//! Group commit in periodic mode: commits wait for the embedder's `sync_log`, and one log fsync
//! acknowledges every commit queued before it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{
    apply, assert_same, key, open_observed, open_on, small_options, value, yield_now, Model,
    YieldingVfs,
};
use crashpoint::{MemVfs, NoopObserver, Options, SyncMode, Write};
use futures::executor::block_on;
use futures::future::{join, join_all};

/// Periodic mode with a log segment large enough that no batch rolls a segment (a roll syncs
/// the closed segment, which would be a second sync per batch).
fn options() -> Options {
    Options {
        log_segment_bytes: 1 << 20,
        ..small_options(SyncMode::Periodic)
    }
}

fn writes_for(round: u32) -> Vec<Write> {
    vec![Write::put(
        key(round % 70),
        value(u64::from(round), 10 + (round as usize * 29) % 180),
    )]
}

#[test]
fn one_log_sync_acknowledges_every_queued_commit() {
    // Proves concurrent periodic commits all wait for one sync_log, whose single fsync makes every one durable.
    block_on(async {
        let memory = MemVfs::new();
        let vfs = YieldingVfs::new(memory.clone(), false);
        let engine = open_observed(vfs.clone(), &options(), Arc::new(NoopObserver))
            .await
            .unwrap();
        let mut model = Model::new();
        // Three batches: each is queued in full, then one sync_log acknowledges it.
        for batch in 0..3u32 {
            let batch_writes: Vec<Vec<Write>> =
                (batch * 25..batch * 25 + 25).map(writes_for).collect();
            let finished = AtomicUsize::new(0);
            let log_syncs_before = vfs.log_syncs.load(Ordering::SeqCst);
            let commits = join_all(batch_writes.iter().map(|writes| {
                let (engine, finished) = (&engine, &finished);
                async move {
                    let result = engine.commit(writes.clone()).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    result
                }
            }));
            let syncer = async {
                for _ in 0..3 {
                    yield_now().await;
                }
                assert_eq!(
                    finished.load(Ordering::SeqCst),
                    0,
                    "a periodic commit returned before any sync"
                );
                engine.sync_log().await.unwrap();
                // Any commit still waiting after the sync was not covered by it; sync again
                // (bounded) so the test reports instead of hanging.
                let mut extra_syncs = 0;
                for _ in 0..10 {
                    for _ in 0..3 {
                        yield_now().await;
                    }
                    if finished.load(Ordering::SeqCst) == batch_writes.len() {
                        break;
                    }
                    extra_syncs += 1;
                    engine.sync_log().await.unwrap();
                }
                extra_syncs
            };
            let (results, extra_syncs) = join(commits, syncer).await;
            assert_eq!(
                extra_syncs, 0,
                "batch {batch}: one sync_log did not cover every queued commit"
            );
            for (writes, result) in batch_writes.iter().zip(results) {
                let info = result.unwrap();
                assert!(
                    info.durable,
                    "batch {batch}: a periodic commit returned not durable"
                );
                assert!(info.lsn < engine.durable_lsn());
                apply(&mut model, writes);
            }
            assert_eq!(
                vfs.log_syncs.load(Ordering::SeqCst) - log_syncs_before,
                1,
                "batch {batch}: {} commits took more than one log fsync",
                batch_writes.len()
            );
        }
        drop(engine);
        let recovered = open_on(memory.crash_image(), &options()).await.unwrap();
        assert_same(
            &recovered.scan_all().await.unwrap(),
            &model,
            "after a crash following group commits",
        );
    });
}

#[test]
fn a_periodic_commit_is_not_durable_before_the_sync() {
    // Proves a queued periodic commit is not on disk before sync_log, so a crash then loses it, and is on disk after.
    block_on(async {
        let memory = MemVfs::new();
        let engine = open_on(memory.clone(), &options()).await.unwrap();
        let writes = writes_for(1);
        let mut images = Vec::new();
        let commit = engine.commit(writes.clone());
        let syncer = async {
            yield_now().await;
            images.push(memory.crash_image());
            engine.sync_log().await.unwrap();
        };
        let (result, ()) = join(commit, syncer).await;
        assert!(result.unwrap().durable);
        let before = open_on(images.pop().unwrap(), &options()).await.unwrap();
        assert_eq!(
            before.get(&writes[0].key).await.unwrap(),
            None,
            "the commit was durable before the sync"
        );
        let after = open_on(memory.crash_image(), &options()).await.unwrap();
        assert_eq!(
            after.get(&writes[0].key).await.unwrap(),
            writes[0].value,
            "the sync did not make the commit durable"
        );
    });
}
