//! The in-place strategies check every page slot against the checkpoint record before replay:
//! a fuzzy page the replay redoes from a full-page image may hold anything (a lost checkpoint
//! write is repaired), while a physical-log page must hold the checkpoint's state once the
//! before-images are restored, and one that does not (damaged at rest, or newer with its
//! before-image gone) fails the open with typed corruption of the physical log.

mod common;

use common::{assert_same, commit_keys, copy_vfs, corruption_of, in_place_options, open_on, Model};
use crashpoint::log::{parse_prefixed_segment_name, PHYSICAL_LOG_PREFIX};
use crashpoint::{Error, MemVfs, Strategy, Structure, Vfs};
use futures::executor::block_on;

/// Puts back, in `data`, the pre-checkpoint bytes (`old`) of every sector the checkpoint wrote
/// (`written`) and a later write changed again: as if both writes were lost, the checkpoint's
/// to a lying fsync and the later one to the crash. Returns how many sectors.
fn lose_checkpoint_writes_overwritten_since(old: &[u8], written: &[u8], data: &mut [u8]) -> usize {
    let mut reverted = 0;
    for (index, sector) in data.chunks_mut(512).enumerate() {
        let range = index * 512..index * 512 + sector.len();
        let (Some(before), Some(by_checkpoint)) = (old.get(range.clone()), written.get(range))
        else {
            continue;
        };
        if before != by_checkpoint && sector != by_checkpoint {
            sector.copy_from_slice(before);
            reverted += 1;
        }
    }
    reverted
}

#[test]
fn a_fuzzy_checkpoint_write_that_was_lost_is_repaired_from_the_full_page_images() {
    block_on(async {
        let strategy = Strategy::Fuzzy;
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(strategy))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        commit_keys(&engine, &mut model, 1, 0..80).await;
        let before = vfs.contents("data").unwrap();
        engine.checkpoint().await.unwrap();
        let written = vfs.contents("data").unwrap();
        // Every page changes after the checkpoint (each change logs a full-page image) and is
        // evicted, written in place: the last keys' pages, which the checkpoint wrote, go
        // when the first keys' are read back in.
        commit_keys(&engine, &mut model, 2, (0..80).rev()).await;
        commit_keys(&engine, &mut model, 3, 0..80).await;
        drop(engine);

        let reverted = std::cell::Cell::new(0);
        let image = copy_vfs(&vfs, |name, bytes| {
            if name == "data" {
                reverted.set(lose_checkpoint_writes_overwritten_since(
                    &before, &written, bytes,
                ));
            }
        })
        .await;
        assert!(
            reverted.get() > 0,
            "pages the checkpoint wrote were written again"
        );
        let engine = open_on(image, &in_place_options(strategy))
            .await
            .unwrap_or_else(|error| panic!("{} lost sectors: {error}", reverted.get()));
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after repairing the lost checkpoint writes",
        );
    });
}

/// Opens `image` as a physical-log database and expects corruption of the physical log
/// whose detail contains `says`.
async fn expect_physical_log_corruption(image: MemVfs, says: &str) {
    let error = match open_on(image, &in_place_options(Strategy::PhysicalLog)).await {
        Ok(_) => panic!("opened a page the physical log cannot account for"),
        Err(error) => error,
    };
    let (_, _, detail) = corruption_of(&error, Structure::PhysicalLogRecord);
    assert!(detail.contains(says), "{error}");
}

#[test]
fn a_physical_log_page_damaged_at_rest_fails_the_open_typed() {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(Strategy::PhysicalLog))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        let at_checkpoint = vfs.contents("data").unwrap();
        drop(engine);
        // The last page slot the checkpoint left, with a byte flipped near its start; nothing
        // wrote it since, so the physical log holds no before-image of it.
        let slot_bytes = in_place_options(Strategy::PhysicalLog).slot_bytes() as usize;
        let image = copy_vfs(&vfs, |name, bytes| {
            if name == "data" {
                bytes[at_checkpoint.len() - slot_bytes + 100] ^= 0x40;
            }
        })
        .await;
        expect_physical_log_corruption(image, "holds no before-image to restore it").await;
    });
}

#[test]
fn a_physical_log_page_newer_than_its_checkpoint_without_a_before_image_fails_the_open() {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(Strategy::PhysicalLog))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        let physical_log_at_checkpoint: Vec<(String, Vec<u8>)> = vfs
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|name| parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, name).is_some())
            .map(|name| {
                let bytes = vfs.contents(&name).unwrap();
                (name, bytes)
            })
            .collect();
        // Pages written in place after the checkpoint (evictions), each after its
        // before-image; then the physical log loses those images.
        commit_keys(&engine, &mut model, 1, 0..80).await;
        drop(engine);
        let image = copy_vfs(&vfs, |name, bytes| {
            if let Some((_, old)) = physical_log_at_checkpoint
                .iter()
                .find(|(segment, _)| segment == name)
            {
                *bytes = old.clone();
            } else if parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, name).is_some() {
                bytes.clear();
            }
        })
        .await;
        expect_physical_log_corruption(image, "past checkpoint").await;
    });
}

#[test]
fn a_physical_log_page_older_than_its_checkpoint_is_named_as_a_lost_write() {
    block_on(async {
        let strategy = Strategy::PhysicalLog;
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(strategy))
            .await
            .unwrap();
        let mut model = Model::new();
        commit_keys(&engine, &mut model, 0, 0..80).await;
        engine.checkpoint().await.unwrap();
        commit_keys(&engine, &mut model, 1, 0..80).await;
        let before = vfs.contents("data").unwrap();
        engine.checkpoint().await.unwrap();
        let written = vfs.contents("data").unwrap();
        drop(engine);
        // Every page write of the last checkpoint lost (a lying fsync): the pages hold their
        // state from before it, older than the checkpoint record says.
        let anchors = strategy.anchor_regions();
        let image = copy_vfs(&vfs, |name, bytes| {
            if name == "data" {
                for (index, sector) in bytes.chunks_mut(512).enumerate() {
                    let offset = (index * 512) as u64;
                    let in_anchor = anchors.iter().any(|region| {
                        offset < region.offset + region.len && region.offset < offset + 512
                    });
                    let range = index * 512..index * 512 + sector.len();
                    if let (false, Some(old)) = (in_anchor, before.get(range.clone())) {
                        if old != &written[range] {
                            sector.copy_from_slice(old);
                        }
                    }
                }
            }
        })
        .await;
        let error = match open_on(image, &in_place_options(strategy)).await {
            Ok(_) => panic!("opened pages older than their checkpoint"),
            Err(error) => error,
        };
        assert!(
            matches!(
                &error,
                Error::Corruption {
                    structure: Structure::Page(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("a write was lost"), "{error}");
    });
}
