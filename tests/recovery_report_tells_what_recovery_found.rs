//! The recovery report is what an operator reads after a crash: which checkpoint and anchor
//! slot recovery used, why the other slot was passed over, where replay started, how many
//! commits it replayed, where the log ended and why, what it cut off and how many
//! before-images it restored. Each field is held to what the test did to the disk, for every
//! strategy.

mod common;

use std::sync::Arc;

use common::{
    assert_same, commit_keys, in_place_options, log_segments, open_observed, open_on, Model,
    TriggerLog,
};
use crashpoint::format::control::{CONTROL_FILE, CONTROL_SLOT_OFFSETS};
use crashpoint::format::header::HEADER_SLOT_OFFSETS;
use crashpoint::{Lsn, MemVfs, Strategy, Trigger};
use futures::executor::block_on;

/// The file and offset of anchor slot `slot` for `strategy`.
fn anchor_slot(strategy: Strategy, slot: usize) -> (&'static str, u64) {
    match strategy {
        Strategy::Sharp => ("data", HEADER_SLOT_OFFSETS[slot]),
        Strategy::Fuzzy => (CONTROL_FILE, CONTROL_SLOT_OFFSETS[slot]),
        Strategy::PhysicalLog => ("data", CONTROL_SLOT_OFFSETS[slot]),
    }
}

/// The physical log's segments, oldest first.
async fn physical_log_segments(vfs: &MemVfs) -> Vec<(u64, String)> {
    let mut segments: Vec<(u64, String)> = crashpoint::Vfs::list(vfs)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|name| {
            crashpoint::log::parse_prefixed_segment_name(
                crashpoint::log::PHYSICAL_LOG_PREFIX,
                &name,
            )
            .map(|start| (start, name))
        })
        .collect();
    segments.sort();
    segments
}

/// `checkpoints` before the one recovery uses, so both anchor slots are covered.
fn report_case(strategy: Strategy, checkpoints: u32) {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &in_place_options(strategy))
            .await
            .unwrap();
        let created = engine.recovery_report().clone();
        assert!(created.created, "{strategy}: {created:?}");
        assert_eq!(created.replayed_commits, 0, "{strategy}: {created:?}");
        assert_eq!(
            created.log_stop_reason, "created",
            "{strategy}: {created:?}"
        );

        let mut model = Model::new();
        for round in 0..checkpoints {
            commit_keys(&engine, &mut model, 0, 200 + round..201 + round).await;
            engine.checkpoint().await.unwrap();
        }
        let before = commit_keys(&engine, &mut model, 0, 0..30).await;
        let count = engine.checkpoint().await.unwrap();
        // Enough new keys that the tree outgrows the cache: pages are written before the next
        // checkpoint (in place for the in-place strategies).
        let after = commit_keys(&engine, &mut model, 0, 30..90).await;
        drop(engine);

        let image = vfs.crash_image();
        let (start, name) = log_segments(&image).await.pop().expect("a log segment");
        let len = image.contents(&name).unwrap().len() as u64;
        // The redo log ends in garbage: a torn tail, or (the other run) a segment whose first
        // record never landed after a roll. Either is cut and counted.
        let mut garbage = if checkpoints.is_multiple_of(2) {
            image.poke(&name, len, &[0xA5; 40]);
            40
        } else {
            let later = crashpoint::log::segment_name(start + len);
            let later_file = crashpoint::Vfs::create(&image, &later).await.unwrap();
            crashpoint::VfsFile::write_at(&later_file, 0, &[0x5A; 100])
                .await
                .unwrap();
            crashpoint::VfsFile::sync(&later_file).await.unwrap();
            100
        };
        // The physical log's tail is cut the same way, and counted with the redo log's.
        if strategy == Strategy::PhysicalLog {
            let (_, name) = physical_log_segments(&image)
                .await
                .pop()
                .expect("a segment");
            let len = image.contents(&name).unwrap().len() as u64;
            image.poke(&name, len, &[0xA5; 24]);
            garbage += 24;
        }
        let slot = (count % 2) as usize;
        let (file, offset) = anchor_slot(strategy, 1 - slot);
        image.poke(file, offset + 20, &[0x5A; 8]);

        let engine = open_on(image, &in_place_options(strategy)).await.unwrap();
        let report = engine.recovery_report().clone();
        let context = format!("{strategy} from checkpoint {count}: {report:?}");
        assert!(!report.created, "{context}");
        assert_eq!(report.checkpoint_count, count, "{context}");
        assert_eq!(report.header_slot, slot, "{context}");
        assert!(
            report
                .header_warning
                .as_deref()
                .is_some_and(|warning| warning.contains(&format!("slot {}", 1 - slot))),
            "{context}"
        );
        assert!(
            *before.last().unwrap() < report.checkpoint_lsn && report.checkpoint_lsn <= after[0],
            "replay starts between the last commit before the checkpoint and the first after: \
             {context}"
        );
        assert_eq!(report.replayed_commits, after.len() as u64, "{context}");
        assert_eq!(report.last_commit_lsn, after.last().copied(), "{context}");
        assert_eq!(report.log_end, Lsn(start + len), "{context}");
        assert_eq!(report.discarded_log_bytes, garbage, "{context}");
        assert!(
            !report.log_stop_reason.is_empty() && report.log_stop_reason != "created",
            "{context}"
        );
        if strategy == Strategy::PhysicalLog {
            assert!(report.restored_pages > 0, "{context}");
        } else {
            assert_eq!(report.restored_pages, 0, "{context}");
        }
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            &format!("{strategy} after recovery"),
        );
    });
}

#[test]
fn the_report_names_the_checkpoint_the_slot_the_replay_and_the_cut() {
    for strategy in [Strategy::Sharp, Strategy::Fuzzy, Strategy::PhysicalLog] {
        for checkpoints in 0..2 {
            report_case(strategy, checkpoints);
        }
    }
}

#[test]
fn only_the_physical_log_checkpoints_at_the_end_of_recovery() {
    // GBase 8t's startup trigger: the restored and replayed state becomes a checkpoint, so the
    // physical log's old intervals can go. The other designs start from their last checkpoint.
    block_on(async {
        for strategy in [Strategy::Sharp, Strategy::Fuzzy, Strategy::PhysicalLog] {
            let vfs = MemVfs::new();
            let engine = open_on(vfs.clone(), &in_place_options(strategy))
                .await
                .unwrap();
            let mut model = Model::new();
            commit_keys(&engine, &mut model, 0, 0..40).await;
            drop(engine);
            let triggers = Arc::new(TriggerLog::default());
            let engine = open_observed(
                vfs.crash_image(),
                &in_place_options(strategy),
                triggers.clone(),
            )
            .await
            .unwrap();
            let expected = match strategy {
                Strategy::PhysicalLog => vec![Trigger::Startup],
                _ => Vec::new(),
            };
            assert_eq!(triggers.triggers(), expected, "{strategy}");
            assert_same(&engine.scan_all().await.unwrap(), &model, "after recovery");
        }
    });
}
