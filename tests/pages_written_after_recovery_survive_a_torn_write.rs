//! A recovered engine protects the pages it writes in place exactly as the engine before the
//! crash did: the fuzzy strategy logs a full-page image at a page's first change since the
//! redo point it recovered (PostgreSQL's full_page_writes), the physical log keeps a
//! before-image of it for the interval it recovered. So a crash that tears those page writes
//! loses nothing. The sharp strategy never writes in place; it is checked too.

mod common;

use common::{apply, assert_same, copy_vfs, key, open_on, small_options, value, Model};
use crashpoint::{MemVfs, Options, Strategy, SyncMode, Write};
use futures::executor::block_on;

const SECTOR: usize = 512;

fn options(strategy: Strategy) -> Options {
    Options {
        strategy,
        cache_pages: 8,
        page_size_bytes: 1024,
        log_segment_bytes: 1 << 20,
        ..small_options(SyncMode::Instant)
    }
}

async fn commit_range(
    engine: &crashpoint::Engine<MemVfs, crashpoint::ManualClock>,
    model: &mut Model,
    range: std::ops::Range<u32>,
    round: u64,
) {
    for index in range {
        let writes = vec![Write::put(
            key(index),
            value(round * 1000 + u64::from(index), 150),
        )];
        engine.commit(writes.clone()).await.unwrap();
        apply(model, &writes);
    }
}

/// Tears every run of sectors of `data` that differs from `old` outside the anchor regions:
/// the first half of the run (at least one sector) lands, the rest keeps its old bytes. A run
/// of one sector is lost whole. Returns how many runs it tore.
fn tear_changed_runs(strategy: Strategy, old: &[u8], data: &mut [u8]) -> usize {
    let in_anchor = |sector: usize| {
        let start = (sector * SECTOR) as u64;
        strategy.anchor_regions().iter().any(|region| {
            region.file == "data"
                && start < region.offset + region.len
                && region.offset < start + SECTOR as u64
        })
    };
    let sectors = data.len().div_ceil(SECTOR);
    let changed = |sector: usize| {
        let range = sector * SECTOR..((sector + 1) * SECTOR).min(data.len());
        !in_anchor(sector) && old.get(range.clone()) != Some(&data[range.clone()])
    };
    let mut runs = Vec::new();
    let mut sector = 0;
    while sector < sectors {
        if changed(sector) {
            let start = sector;
            while sector < sectors && changed(sector) {
                sector += 1;
            }
            runs.push(start..sector);
        } else {
            sector += 1;
        }
    }
    for run in &runs {
        let landed = if run.len() == 1 { 0 } else { run.len() / 2 };
        for sector in run.start + landed..run.end {
            let range = sector * SECTOR..((sector + 1) * SECTOR).min(data.len());
            match old.get(range.clone()) {
                Some(bytes) => data[range].copy_from_slice(bytes),
                // Past the old end: the file grew, and the unlanded part reads as zeros.
                None => data[range].fill(0),
            }
        }
    }
    runs.len()
}

fn torn_case(strategy: Strategy) {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options(strategy)).await.unwrap();
        let mut model = Model::new();
        commit_range(&engine, &mut model, 0..80, 0).await;
        engine.checkpoint().await.unwrap();
        // Only the first keys change after the checkpoint: the other pages' first change since
        // it comes after the recovery.
        commit_range(&engine, &mut model, 0..10, 1).await;
        drop(engine);

        // A crash and a recovery; then the recovered engine rewrites every key, so its pages
        // are written in place (evictions) before any checkpoint of its own.
        let recovered = vfs.crash_image();
        let engine = open_on(recovered.clone(), &options(strategy))
            .await
            .unwrap();
        let at_recovery = recovered.contents("data").unwrap();
        commit_range(&engine, &mut model, 0..80, 2).await;
        drop(engine);

        let torn = std::cell::Cell::new(0);
        let image = copy_vfs(&recovered, |name, bytes| {
            if name == "data" {
                torn.set(tear_changed_runs(strategy, &at_recovery, bytes));
            }
        })
        .await;
        if strategy != Strategy::Sharp {
            assert!(
                torn.get() > 0,
                "{strategy}: the recovered engine wrote pages in place"
            );
        }
        let engine = open_on(image, &options(strategy))
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
