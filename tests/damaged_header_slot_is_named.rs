//! A damaged newest header slot whose older checkpoint's log was trimmed is reported as
//! corruption of that header slot in the data file, not as a problem with a log segment that
//! does not exist. Runs on the real filesystem and on `MemVfs`.

mod common;

use common::{commit_many, corruption_of, open_on, small_options, Model};
use crashpoint::format::header::{self, SlotState, HEADER_BYTES, HEADER_SLOT_OFFSETS};
use crashpoint::log::parse_segment_name;
use crashpoint::vfs::read_exact_at;
use crashpoint::{MemVfs, Options, StdVfs, Structure, SyncMode, Vfs, VfsFile};
use futures::executor::block_on;

fn options() -> Options {
    small_options(SyncMode::Instant)
}

/// `extra_checkpoints` first, so the damaged slot is either one.
async fn damaged_newest_slot_case<V: Vfs + Clone>(vfs: V, extra_checkpoints: u32) {
    let engine = open_on(vfs.clone(), &options()).await.unwrap();
    let mut model = Model::new();
    for _ in 0..extra_checkpoints {
        commit_many(&engine, 0, 10, &mut model).await;
        engine.checkpoint().await.unwrap();
    }
    commit_many(&engine, 0, 40, &mut model).await;
    let older = engine.checkpoint().await.unwrap();
    commit_many(&engine, 40, 40, &mut model).await;
    // close takes the newest checkpoint and trims the log before it.
    engine.close().await.unwrap();
    let newest = older + 1;
    let data = vfs.open("data").await.unwrap();
    let mut bytes = vec![0; HEADER_BYTES];
    read_exact_at(&data, HEADER_SLOT_OFFSETS[(older % 2) as usize], &mut bytes)
        .await
        .unwrap();
    let SlotState::Valid(older_header) = header::read_slot((older % 2) as usize, &bytes) else {
        panic!("the older checkpoint's header is intact");
    };
    let older_lsn = older_header.checkpoint_lsn;
    let first_segment = vfs
        .list()
        .await
        .unwrap()
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .min()
        .unwrap();
    assert!(
        first_segment > older_lsn.0,
        "the log was trimmed past the older checkpoint"
    );

    let slot = (newest % 2) as usize;
    data.write_at(HEADER_SLOT_OFFSETS[slot] + 20, &[0xa5; 8])
        .await
        .unwrap();
    data.sync().await.unwrap();
    let error = open_on(vfs.clone(), &options())
        .await
        .err()
        .expect("refused");
    let (file, offset, detail) = corruption_of(&error, Structure::HeaderSlot(slot as u8));
    assert_eq!((file, offset), ("data", HEADER_SLOT_OFFSETS[slot]));
    assert!(
        detail.contains("checksum"),
        "says why the slot failed: {detail}"
    );
    assert!(detail.contains("older checkpoint"), "{detail}");
}

#[test]
fn a_damaged_newest_header_slot_is_named_when_the_older_log_is_gone() {
    // Proves the error names the header slot that failed, in the data file, rather than a log segment that no longer exists.
    let dir = tempfile::tempdir().unwrap();
    block_on(damaged_newest_slot_case(
        StdVfs::new(dir.path()).unwrap(),
        0,
    ));
    for extra_checkpoints in 0..2 {
        block_on(damaged_newest_slot_case(MemVfs::new(), extra_checkpoints));
    }
}

/// A checkpoint whose end record is in the log but whose header slot is damaged: the older
/// checkpoint's blocks may have been reused, so the open fails naming that slot.
async fn completed_checkpoint_with_a_damaged_header_case(extra_checkpoints: u32) {
    let options = Options {
        log_segment_bytes: 1 << 20,
        ..options()
    };
    let vfs = MemVfs::new();
    let engine = open_on(vfs.clone(), &options).await.unwrap();
    let mut model = Model::new();
    for round in 0..extra_checkpoints {
        commit_many(&engine, 100 * round, 10, &mut model).await;
        engine.checkpoint().await.unwrap();
    }
    commit_many(&engine, 0, 20, &mut model).await;
    let newest = engine.checkpoint().await.unwrap();
    commit_many(&engine, 20, 10, &mut model).await;
    drop(engine);
    let slot = (newest % 2) as usize;
    let image = vfs.crash_image();
    image.poke("data", HEADER_SLOT_OFFSETS[slot] + 20, &[0xa5; 8]);
    let error = open_on(image, &options).await.err().expect("refused");
    let (file, offset, detail) = corruption_of(&error, Structure::HeaderSlot(slot as u8));
    assert_eq!((file, offset), ("data", HEADER_SLOT_OFFSETS[slot]));
    assert!(
        detail.contains(&format!("the log ends checkpoint {newest}")),
        "{detail}"
    );
}

#[test]
fn a_damaged_header_of_a_completed_checkpoint_is_named() {
    // Proves the refusal names the damaged slot of the newest checkpoint, for either slot.
    for extra_checkpoints in 0..2 {
        block_on(completed_checkpoint_with_a_damaged_header_case(
            extra_checkpoints,
        ));
    }
}

/// The newest checkpoint's begin record starts a log segment, so the log still reaches it:
/// when that record is damaged the open blames the record, even with the other header slot
/// damaged too, and does not claim the log is gone.
async fn damaged_record_at_a_segment_start_case(damage_other_slot: bool) {
    let options = options();
    let mut found = None;
    for count in 1..64 {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options).await.unwrap();
        let mut model = Model::new();
        commit_many(&engine, 0, count, &mut model).await;
        let newest = engine.checkpoint().await.unwrap();
        drop(engine);
        let image = vfs.crash_image();
        let slot = (newest % 2) as usize;
        let data = image.open("data").await.unwrap();
        let mut bytes = vec![0; HEADER_BYTES];
        read_exact_at(&data, HEADER_SLOT_OFFSETS[slot], &mut bytes)
            .await
            .unwrap();
        let SlotState::Valid(newest_header) = header::read_slot(slot, &bytes) else {
            panic!("the newest checkpoint's header is intact");
        };
        let record_lsn = newest_header.checkpoint_lsn.0;
        let names = image.list().await.unwrap();
        if let Some(segment) = names
            .iter()
            .find(|name| parse_segment_name(name) == Some(record_lsn))
        {
            found = Some((image, segment.clone(), slot, record_lsn));
            break;
        }
    }
    let (image, segment, slot, record_lsn) =
        found.expect("some checkpoint's begin record starts a log segment");
    image.poke(&segment, 4, &[0x5a; 8]);
    if damage_other_slot {
        image.poke("data", HEADER_SLOT_OFFSETS[1 - slot] + 20, &[0xa5; 8]);
    }
    let error = open_on(image, &options).await.err().expect("refused");
    let (file, offset, detail) = corruption_of(&error, Structure::CheckpointRecord);
    assert_eq!((file, offset), (segment.as_str(), record_lsn), "{error}");
    assert!(!detail.contains("gone"), "{detail}");
}

#[test]
fn a_damaged_checkpoint_record_at_a_segment_start_is_named() {
    // Proves a damaged checkpoint record at the very start of its segment is blamed on the
    // log, not on a damaged other header slot as if the log had been trimmed past it.
    for damage_other_slot in [false, true] {
        block_on(damaged_record_at_a_segment_start_case(damage_other_slot));
    }
}
