//! End-to-end basics on the in-memory Vfs: commit, read, checkpoint, crash, recover.

use std::sync::Arc;

use crashpoint::{Engine, ManualClock, MemVfs, NoopObserver, Options, SyncMode, Write};
use futures::executor::block_on;

fn options() -> Options {
    Options {
        page_size_bytes: 512,
        cache_pages: 8,
        log_segment_bytes: 4096,
        key_size_max: 64,
        value_size_max: 256,
        ..Options::default()
    }
}

#[test]
fn durable_commits_survive_a_crash_and_recovery() {
    // Proves a crash keeps every durable commit, across checkpoints, splits and evictions.
    block_on(async {
        let vfs = MemVfs::new();
        let engine = Engine::open(
            vfs.clone(),
            ManualClock::new(),
            options(),
            Arc::new(NoopObserver),
        )
        .await
        .unwrap();
        for i in 0..400u32 {
            let key = format!("key{:05}", (i * 7919) % 1000);
            let info = engine
                .commit(vec![Write::put(key, format!("value{i}"))])
                .await
                .unwrap();
            assert!(info.durable);
            if i % 97 == 0 {
                engine.checkpoint().await.unwrap();
            }
        }
        let expected = engine.scan_all().await.unwrap();
        assert!(expected.len() > 300);
        let image = vfs.crash_image();
        let recovered = Engine::open(image, ManualClock::new(), options(), Arc::new(NoopObserver))
            .await
            .unwrap();
        assert_eq!(recovered.scan_all().await.unwrap(), expected);
        assert!(recovered.recovery_report().replayed_commits > 0);
    });
}

#[test]
fn no_sync_commits_are_not_durable_until_synced() {
    // Proves no-sync mode reports commits as not durable and sync_log makes them durable.
    block_on(async {
        let vfs = MemVfs::new();
        let options = Options {
            sync_mode: SyncMode::NoSync,
            ..options()
        };
        let engine = Engine::open(
            vfs.clone(),
            ManualClock::new(),
            options.clone(),
            Arc::new(NoopObserver),
        )
        .await
        .unwrap();
        let info = engine.commit(vec![Write::put("a", "1")]).await.unwrap();
        assert!(!info.durable);
        let lost = Engine::open(
            vfs.crash_image(),
            ManualClock::new(),
            options.clone(),
            Arc::new(NoopObserver),
        )
        .await
        .unwrap();
        assert_eq!(lost.get(b"a").await.unwrap(), None);
        engine.sync_log().await.unwrap();
        let kept = Engine::open(
            vfs.crash_image(),
            ManualClock::new(),
            options,
            Arc::new(NoopObserver),
        )
        .await
        .unwrap();
        assert_eq!(kept.get(b"a").await.unwrap(), Some(b"1".to_vec()));
    });
}
