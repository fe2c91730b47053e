//! A fuzzy page torn in place is repaired from the full-page image the log holds for it. When
//! the log lost that image (its tail is gone), the open fails with typed corruption of the
//! log: it never reports a clean recovery over a page no read could use.

mod common;

use common::{
    apply, copy_vfs, key, log_segments, open_on, small_options, tear_changed_runs, value,
};
use crashpoint::{Error, MemVfs, Options, Strategy, Structure, SyncMode, Write};
use futures::executor::block_on;

fn options() -> Options {
    Options {
        strategy: Strategy::Fuzzy,
        cache_pages: 8,
        page_size_bytes: 1024,
        log_segment_bytes: 1 << 20,
        ..small_options(SyncMode::Instant)
    }
}

async fn commit_round(engine: &crashpoint::Engine<MemVfs, crashpoint::ManualClock>, round: u64) {
    let mut model = common::Model::new();
    for index in 0..80 {
        let writes = vec![Write::put(
            key(index),
            value(round * 1000 + u64::from(index), 150),
        )];
        engine.commit(writes.clone()).await.unwrap();
        apply(&mut model, &writes);
    }
}

#[test]
fn a_torn_page_whose_image_the_log_lost_fails_the_open_typed() {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        commit_round(&engine, 0).await;
        engine.checkpoint().await.unwrap();
        let data_at_checkpoint = vfs.contents("data").unwrap();
        let (_, segment) = log_segments(&vfs).await.pop().expect("a log segment");
        let log_at_checkpoint = vfs.contents(&segment).unwrap();
        // Every page changes again: full-page images go to the log, and evictions write the
        // pages in place.
        commit_round(&engine, 1).await;
        drop(engine);

        let torn = std::cell::Cell::new(0);
        let image = copy_vfs(&vfs, |name, bytes| {
            if name == "data" {
                // Each changed run loses its last sector: a run of several is a torn page.
                let runs = tear_changed_runs(&data_at_checkpoint, bytes, |_| false, |run| run - 1);
                torn.set(runs.iter().filter(|&&run| run > 1).count());
            } else if name == segment {
                *bytes = log_at_checkpoint.clone();
            }
        })
        .await;
        assert!(torn.get() > 0, "some page write was torn");
        let error = match open_on(image, &options()).await {
            Ok(_) => panic!(
                "opened over {} torn pages the log cannot repair",
                torn.get()
            ),
            Err(error) => error,
        };
        let Error::Corruption {
            structure, detail, ..
        } = &error
        else {
            panic!("expected corruption of the log, got {error}");
        };
        assert_eq!(*structure, Structure::LogRecord, "{error}");
        assert!(detail.contains("full-page image"), "{error}");
    });
}
