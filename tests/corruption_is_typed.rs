//! Flipped bytes in every on-disk structure are reported as typed corruption naming the
//! structure and the offset, or survived through the redundant copy (the other header slot);
//! never a panic and never wrong data.

mod common;

use std::ops::Bound;

use common::{apply, assert_same, key, log_segments, open_on, small_options, value, Model};
use crashpoint::format::header::{self, Header, HeaderChoice, HEADER_SLOT_OFFSETS};
use crashpoint::format::page::{self, Node};
use crashpoint::format::translation::{BlockRef, Translation};
use crashpoint::{Error, MemVfs, Options, PageId, Structure, SyncMode, Vfs, VfsFile, Write};
use futures::executor::block_on;

fn options() -> Options {
    small_options(SyncMode::Instant)
}

/// A closed database of 200 keys over many pages, with three checkpoints (creation, one
/// explicit, and the one close takes), so both header slots hold valid headers.
async fn closed_database() -> (MemVfs, Model) {
    let vfs = MemVfs::new();
    let engine = open_on(vfs.clone(), &options()).await.unwrap();
    let mut model = Model::new();
    for round in 0..200u32 {
        let writes = vec![Write::put(
            key(round),
            value(u64::from(round), 60 + (round as usize % 7) * 20),
        )];
        engine.commit(writes.clone()).await.unwrap();
        apply(&mut model, &writes);
        if round == 100 {
            engine.checkpoint().await.unwrap();
        }
    }
    engine.close().await.unwrap();
    (vfs, model)
}

/// Both header slots as the engine would read them, and the one it would choose.
fn headers(vfs: &MemVfs) -> ([header::SlotState; 2], Header, usize) {
    let data = vfs.contents("data").expect("a data file");
    let slots = [0, 1].map(|slot| {
        let offset = HEADER_SLOT_OFFSETS[slot] as usize;
        let end = (offset + header::HEADER_BYTES).min(data.len());
        header::read_slot(slot, &data[offset.min(end)..end])
    });
    let HeaderChoice::Use { header, slot, .. } = header::choose(&slots) else {
        panic!("the database has a usable header: {slots:?}");
    };
    (slots, header, slot)
}

/// The chosen checkpoint's translation.
fn translation(vfs: &MemVfs) -> Translation {
    let (_, header, _) = headers(vfs);
    let data = vfs.contents("data").unwrap();
    let block = header.translation;
    Translation::decode(&data[block.offset as usize..block.end() as usize])
        .expect("the translation decodes")
}

/// Every page of the chosen checkpoint, decoded, with its block.
fn pages(vfs: &MemVfs) -> Vec<(PageId, BlockRef, Node)> {
    let data = vfs.contents("data").unwrap();
    translation(vfs)
        .entries
        .into_iter()
        .map(|(page_id, block)| {
            let bytes = &data[block.offset as usize..block.end() as usize];
            let node = page::decode_block(page_id, bytes).expect("the page decodes");
            (page_id, block, node)
        })
        .collect()
}

/// Flips every bit of `len` bytes at `offset` of `name`.
fn flip(vfs: &MemVfs, name: &str, offset: u64, len: usize) {
    let contents = vfs.contents(name).expect("the file exists");
    let flipped: Vec<u8> = contents[offset as usize..offset as usize + len]
        .iter()
        .map(|byte| !byte)
        .collect();
    vfs.poke(name, offset, &flipped);
}

fn expect_corruption<T: std::fmt::Debug>(
    result: crashpoint::Result<T>,
    structure: Structure,
) -> (String, u64) {
    match result {
        Err(Error::Corruption {
            file,
            offset,
            structure: found,
            detail,
        }) => {
            assert_eq!(
                found, structure,
                "corruption in {file} at {offset}: {detail}"
            );
            (file, offset)
        }
        other => panic!("expected corruption of {structure}, got {other:?}"),
    }
}

#[test]
fn a_corrupt_older_header_slot_is_a_warning_and_the_data_opens() {
    // Proves recovery warns about a bad non-chosen header slot, uses the other and loses nothing.
    block_on(async {
        let (vfs, model) = closed_database().await;
        let (slots, header, chosen) = headers(&vfs);
        assert!(
            slots
                .iter()
                .all(|slot| matches!(slot, header::SlotState::Valid(_))),
            "{slots:?}"
        );
        flip(&vfs, "data", HEADER_SLOT_OFFSETS[1 - chosen] + 16, 8);

        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        let report = engine.recovery_report().clone();
        assert_eq!(report.header_slot, chosen, "report {report:?}");
        assert_eq!(
            report.checkpoint_count, header.checkpoint_count,
            "report {report:?}"
        );
        let warning = report.header_warning.expect("a warning about the bad slot");
        assert!(
            warning.contains(&format!("slot {}", 1 - chosen)),
            "{warning}"
        );
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after a bad older header slot",
        );
    });
}

#[test]
fn a_corrupt_newest_header_slot_falls_back_or_fails_typed() {
    // Proves a bad newest header slot never yields wrong data: the older checkpoint plus the log give the model, or a typed error.
    block_on(async {
        let (vfs, model) = closed_database().await;
        let (_, header, chosen) = headers(&vfs);
        flip(&vfs, "data", HEADER_SLOT_OFFSETS[chosen] + 20, 4);
        match open_on(vfs.clone(), &options()).await {
            Ok(engine) => {
                let report = engine.recovery_report().clone();
                assert_eq!(report.header_slot, 1 - chosen, "report {report:?}");
                assert_eq!(
                    report.checkpoint_count,
                    header.checkpoint_count - 1,
                    "report {report:?}"
                );
                assert!(report.header_warning.is_some(), "report {report:?}");
                match engine.scan_all().await {
                    Ok(found) => {
                        assert_same(&found, &model, "after falling back to the older header")
                    }
                    Err(error) => assert!(error.is_corruption(), "an untyped error: {error}"),
                }
            }
            Err(error) => assert!(error.is_corruption(), "an untyped error: {error}"),
        }
    });
}

#[test]
fn both_header_slots_corrupt_is_typed_headers_corruption() {
    // Proves a data file with no valid header slot fails to open with Structure::Headers.
    block_on(async {
        let (vfs, _) = closed_database().await;
        flip(&vfs, "data", HEADER_SLOT_OFFSETS[0] + 12, 8);
        flip(&vfs, "data", HEADER_SLOT_OFFSETS[1] + 12, 8);
        let (file, offset) = expect_corruption(
            open_on(vfs.clone(), &options()).await.map(|_| ()),
            Structure::Headers,
        );
        assert_eq!((file.as_str(), offset), ("data", 0));
    });
}

#[test]
fn a_corrupt_translation_is_typed_translation_corruption() {
    // Proves a flipped byte in the chosen checkpoint's translation block fails the open with its offset.
    block_on(async {
        let (vfs, _) = closed_database().await;
        let (_, header, _) = headers(&vfs);
        let block = header.translation;
        flip(&vfs, "data", block.offset + u64::from(block.len) / 2, 1);
        let (file, offset) = expect_corruption(
            open_on(vfs.clone(), &options()).await.map(|_| ()),
            Structure::Translation,
        );
        assert_eq!((file.as_str(), offset), ("data", block.offset));
    });
}

#[test]
fn a_translation_past_the_end_of_the_file_is_typed_translation_corruption() {
    // Proves a data file cut short inside the chosen checkpoint's translation fails the open as
    // corruption of the translation at its offset, not as an I/O error.
    block_on(async {
        let (vfs, _) = closed_database().await;
        let (_, header, _) = headers(&vfs);
        let block = header.translation;
        let data = vfs.open("data").await.unwrap();
        data.set_len(block.offset + u64::from(block.len) / 2)
            .await
            .unwrap();
        data.sync().await.unwrap();
        drop(data);
        let opened = open_on(vfs.clone(), &options()).await.map(|_| ());
        let Err(Error::Corruption { detail, .. }) = &opened else {
            panic!("expected corruption, got {opened:?}");
        };
        assert!(detail.contains("past the end"), "{detail}");
        let (file, offset) = expect_corruption(opened, Structure::Translation);
        assert_eq!((file.as_str(), offset), ("data", block.offset));
    });
}

#[test]
fn a_corrupt_leaf_page_fails_reads_of_its_keys_only() {
    // Proves a flipped byte in a leaf makes every read of its keys a typed page corruption at its offset, while other keys read correctly.
    block_on(async {
        let (vfs, model) = closed_database().await;
        let pages = pages(&vfs);
        let leaves: Vec<&(PageId, BlockRef, Node)> = pages
            .iter()
            .filter(|(_, _, node)| matches!(node, Node::Leaf { entries } if !entries.is_empty()))
            .collect();
        assert!(
            leaves.len() >= 4,
            "the database spans only {} leaves",
            leaves.len()
        );
        let (page_id, block, Node::Leaf { entries }) = leaves[leaves.len() / 2] else {
            unreachable!("filtered to leaves")
        };
        let bad_keys: Vec<Vec<u8>> = entries.iter().map(|(key, _)| key.clone()).collect();
        flip(&vfs, "data", block.offset + u64::from(block.len) / 2, 1);

        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        for (key, expected) in &model {
            let result = engine.get(key).await;
            if bad_keys.contains(key) {
                let (file, offset) = expect_corruption(result, Structure::Page(*page_id));
                assert_eq!((file.as_str(), offset), ("data", block.offset));
            } else {
                assert_eq!(
                    result.unwrap().as_ref(),
                    Some(expected),
                    "key {}",
                    String::from_utf8_lossy(key)
                );
            }
        }
        let scan = engine.scan(&bad_keys[0], Bound::Unbounded, 5).await;
        expect_corruption(scan, Structure::Page(*page_id));
        expect_corruption(engine.scan_all().await, Structure::Page(*page_id));
        // A commit that needs the page fails typed and applies nothing.
        let commit = engine
            .commit(vec![Write::put(bad_keys[0].clone(), b"new".to_vec())])
            .await;
        expect_corruption(commit, Structure::Page(*page_id));
        let first_good = model.keys().find(|key| !bad_keys.contains(key)).unwrap();
        assert_eq!(
            engine.get(first_good).await.unwrap().as_ref(),
            model.get(first_good)
        );
    });
}

#[test]
fn a_corrupt_root_page_fails_every_read_typed() {
    // Proves a flipped byte in the root makes every get and scan a typed corruption naming the root page.
    block_on(async {
        let (vfs, model) = closed_database().await;
        let (_, header, _) = headers(&vfs);
        let root = header.root_page;
        let block = translation(&vfs).entries[&root];
        flip(&vfs, "data", block.offset + u64::from(block.len) - 1, 1);
        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        for key in model.keys().step_by(17) {
            let (_, offset) = expect_corruption(engine.get(key).await, Structure::Page(root));
            assert_eq!(offset, block.offset);
        }
        expect_corruption(engine.scan_all().await, Structure::Page(root));
    });
}

#[test]
fn a_corrupt_checkpoint_record_is_typed_checkpoint_record_corruption() {
    // Proves a flipped byte in the begin_checkpoint record the header points at fails the open, naming its segment and LSN.
    block_on(async {
        let (vfs, _) = closed_database().await;
        let (_, header, _) = headers(&vfs);
        let lsn = header.checkpoint_lsn.0;
        let (start, name) = log_segments(&vfs)
            .await
            .into_iter()
            .rfind(|(start, _)| *start <= lsn)
            .expect("a segment holds the checkpoint LSN");
        // Byte 17 is the first payload byte: the checkpoint count.
        flip(&vfs, &name, lsn - start + 17, 1);
        let (file, offset) = expect_corruption(
            open_on(vfs.clone(), &options()).await.map(|_| ()),
            Structure::CheckpointRecord,
        );
        assert_eq!((file, offset), (name, lsn));
    });
}

#[test]
fn a_missing_log_is_typed_checkpoint_record_corruption() {
    // Proves a data file whose log segments are gone fails the open typed rather than opening without the log.
    block_on(async {
        let (vfs, _) = closed_database().await;
        for (_, name) in log_segments(&vfs).await {
            vfs.remove(&name).await.unwrap();
        }
        expect_corruption(
            open_on(vfs.clone(), &options()).await.map(|_| ()),
            Structure::CheckpointRecord,
        );
    });
}

#[test]
fn every_single_byte_flip_in_the_data_file_is_survived_or_typed() {
    // Proves no flipped byte anywhere in the used data file panics or returns data other than the model.
    block_on(async {
        let (vfs, model) = closed_database().await;
        let data = vfs.contents("data").unwrap();
        // Every 61st byte keeps the run short while still hitting headers, translation and pages.
        for offset in (0..data.len() as u64).step_by(61) {
            let image = vfs.crash_image();
            flip(&image, "data", offset, 1);
            let engine = match open_on(image, &options()).await {
                Ok(engine) => engine,
                Err(error) => {
                    assert!(
                        error.is_corruption(),
                        "flip at {offset}: untyped open error {error}"
                    );
                    continue;
                }
            };
            match engine.scan_all().await {
                Ok(found) => assert_same(&found, &model, &format!("flip at {offset}")),
                Err(error) => assert!(
                    error.is_corruption(),
                    "flip at {offset}: untyped scan error {error}"
                ),
            }
        }
    });
}
