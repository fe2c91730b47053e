//! A newer header slot that failed to verify at one recovery (a read fault: a misdirected
//! read, rot met on the way in) may verify again at the next. Until the engine's first
//! checkpoint after that recovery has its header durable in that slot, the blocks the hidden
//! header names must stay untouched: a crash before that header lands lets the next recovery
//! follow the hidden header, and its pages must still be there.

mod common;

use std::sync::{Arc, Mutex};

use common::{assert_same, commit_many, open_observed, open_on, small_options, Model};
use crashpoint::format::header::{self, SlotState, HEADER_BYTES, HEADER_SLOT_OFFSETS};
use crashpoint::observer::CheckpointStep;
use crashpoint::vfs::read_exact_at;
use crashpoint::{MemVfs, Observer, Options, SyncMode, Vfs};
use futures::executor::block_on;

fn options() -> Options {
    Options {
        // One segment holds the whole test's log, so trimming at a checkpoint removes nothing
        // and the older checkpoint's log is still there to recover from.
        log_segment_bytes: 1 << 20,
        ..small_options(SyncMode::Instant)
    }
}

/// Takes the crash image of `vfs` when checkpoint `count` reaches `step`.
struct CrashAt {
    vfs: MemVfs,
    count: u64,
    step: &'static str,
    image: Mutex<Option<MemVfs>>,
}

impl CrashAt {
    fn new(vfs: &MemVfs, count: u64, step: &'static str) -> Arc<Self> {
        Arc::new(Self {
            vfs: vfs.clone(),
            count,
            step,
            image: Mutex::new(None),
        })
    }

    fn image(&self) -> MemVfs {
        self.image
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| panic!("checkpoint {} reached {}", self.count, self.step))
    }
}

impl Observer for CrashAt {
    fn checkpoint_step(&self, count: u64, step: CheckpointStep) {
        if count == self.count && step.name() == self.step {
            *self.image.lock().unwrap() = Some(self.vfs.crash_image());
        }
    }
}

async fn slot_bytes(vfs: &MemVfs, slot: usize) -> Vec<u8> {
    let data = vfs.open("data").await.unwrap();
    let mut bytes = vec![0; HEADER_BYTES];
    read_exact_at(&data, HEADER_SLOT_OFFSETS[slot], &mut bytes)
        .await
        .unwrap();
    bytes
}

#[test]
fn blocks_of_a_header_hidden_at_recovery_are_not_reused_before_its_slot_is_rewritten() {
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        let mut model = Model::new();
        commit_many(&engine, 0, 60, &mut model).await;
        let older = engine.checkpoint().await.unwrap();
        drop(engine);
        // Reopened with an observer that crashes the next checkpoint once its header is
        // durable, before its end record is logged (TokuDB's #3113 window): the older
        // checkpoint's blocks are all still there.
        let hidden = older + 1;
        let crash = CrashAt::new(&vfs, hidden, "header-synced");
        let engine = open_observed(vfs.clone(), &options(), crash.clone())
            .await
            .unwrap();
        commit_many(&engine, 60, 60, &mut model).await;
        assert_eq!(engine.checkpoint().await.unwrap(), hidden);
        drop(engine);
        let first = crash.image();
        let hidden_slot = (hidden % 2) as usize;
        let hidden_bytes = slot_bytes(&first, hidden_slot).await;
        assert!(matches!(
            header::read_slot(hidden_slot, &hidden_bytes),
            SlotState::Valid(_)
        ));

        // A recovery that reads garbage in the newer slot.
        let mut garbled = hidden_bytes.clone();
        garbled[20..28].copy_from_slice(&[0xa5; 8]);
        first.poke("data", HEADER_SLOT_OFFSETS[hidden_slot], &garbled);
        let crash = CrashAt::new(&first, hidden, "translation-synced");
        let engine = open_observed(first.clone(), &options(), crash.clone())
            .await
            .unwrap();
        let report = engine.recovery_report();
        assert_eq!(report.checkpoint_count, older, "recovered from the older");
        assert!(report.header_warning.is_some(), "{report:?}");
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after the first recovery",
        );

        // New work and the checkpoint numbered like the hidden one; it crashes before its
        // header is written.
        commit_many(&engine, 120, 120, &mut model).await;
        assert_eq!(engine.checkpoint().await.unwrap(), hidden);
        drop(engine);
        let second = crash.image();

        // This time the hidden header reads as it stands on disk.
        second.poke("data", HEADER_SLOT_OFFSETS[hidden_slot], &hidden_bytes);
        let engine = open_on(second, &options()).await.unwrap_or_else(|error| {
            panic!("recovery through the once-hidden header failed: {error}")
        });
        assert_eq!(engine.recovery_report().checkpoint_count, hidden);
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after recovering through the once-hidden header",
        );
    });
}
