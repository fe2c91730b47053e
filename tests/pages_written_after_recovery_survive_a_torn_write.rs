//! A recovered engine protects the pages it writes in place exactly as the engine before the
//! crash did: the fuzzy strategy logs a full-page image at a page's first change since the
//! redo point it recovered (PostgreSQL's full_page_writes), the physical log keeps a
//! before-image of it for the interval it recovered. So a crash that tears those page writes
//! loses nothing. The sharp strategy never writes in place; it is checked too.

mod common;

use common::{
    assert_same, commit_keys, copy_vfs, in_place_options, open_on, tear_changed_runs, Model,
};
use crashpoint::{MemVfs, Strategy};
use futures::executor::block_on;

fn torn_case(strategy: Strategy) {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(strategy))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        // Only the first keys change after the checkpoint: the other pages' first change since
        // it comes after the recovery.
        commit_keys(&engine, &mut model, 1, 0..10).await;
        drop(engine);

        // A crash and a recovery; then the recovered engine rewrites every key, so its pages
        // are written in place (evictions) before any checkpoint of its own.
        let recovered = vfs.crash_image();
        let engine = open_on(recovered.clone(), &in_place_options(strategy))
            .await
            .unwrap();
        let at_recovery = recovered.contents("data").unwrap();
        commit_keys(&engine, &mut model, 2, 0..80).await;
        drop(engine);

        // Each run of changed sectors lands its first half (a run of one is lost whole).
        let in_anchor = |offset: u64| {
            strategy.anchor_regions().iter().any(|region| {
                region.file == "data"
                    && offset < region.offset + region.len
                    && region.offset < offset + 512
            })
        };
        let torn = std::cell::Cell::new(0);
        let image = copy_vfs(&recovered, |name, bytes| {
            if name == "data" {
                let runs = tear_changed_runs(&at_recovery, bytes, in_anchor, |run| run / 2);
                torn.set(runs.len());
            }
        })
        .await;
        if strategy != Strategy::Sharp {
            assert!(
                torn.get() > 0,
                "{strategy}: the recovered engine wrote pages in place"
            );
        }
        let engine = open_on(image, &in_place_options(strategy))
            .await
            .unwrap_or_else(|error| panic!("{strategy}: {} torn page writes: {error}", torn.get()));
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            &format!("{strategy} after tearing the pages written since recovery"),
        );
    });
}

#[test]
fn pages_written_in_place_after_a_recovery_are_repaired_when_torn() {
    for strategy in [Strategy::Sharp, Strategy::Fuzzy, Strategy::PhysicalLog] {
        torn_case(strategy);
    }
}
