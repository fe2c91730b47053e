//! A fuzzy page torn in place is repaired from the full-page image the log holds for it. When
//! the log lost that image (its tail is gone), the open fails with typed corruption of the
//! log: it never reports a clean recovery over a page no read could use.

mod common;

use common::{
    commit_keys, copy_vfs, corruption_of, in_place_options, log_segments, open_on,
    tear_changed_runs, Model,
};
use crashpoint::{MemVfs, Strategy, Structure};
use futures::executor::block_on;

#[test]
fn a_torn_page_whose_image_the_log_lost_fails_the_open_typed() {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(Strategy::Fuzzy))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        let data_at_checkpoint = vfs.contents("data").unwrap();
        let (_, segment) = log_segments(&vfs).await.pop().expect("a log segment");
        let log_at_checkpoint = vfs.contents(&segment).unwrap();
        // Every page changes again: full-page images go to the log, and evictions write the
        // pages in place.
        commit_keys(&engine, &mut model, 1, 0..80).await;
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
        let error = match open_on(image, &in_place_options(Strategy::Fuzzy)).await {
            Ok(_) => panic!(
                "opened over {} torn pages the log cannot repair",
                torn.get()
            ),
            Err(error) => error,
        };
        let (_, _, detail) = corruption_of(&error, Structure::LogRecord);
        assert!(detail.contains("full-page image"), "{error}");
    });
}
