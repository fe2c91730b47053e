//! PostgreSQL's checkpoint_completion_target: the fuzzy checkpoint spreads its page writes over
//! that fraction of the checkpoint interval, the k-th of n pages not before `spread × k / n`
//! after the page phase starts, so the checkpoint lasts the spread, and no longer when nothing
//! else takes time. On a clock that moves only when the engine sleeps, every page step's time
//! shows the schedule.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{commit_many, small_options, Model};
use crashpoint::{
    CheckpointMeasures, CheckpointStep, Clock, Engine, ManualClock, MemVfs, Observer, Options,
    Strategy, SyncMode, Trigger,
};
use futures::executor::block_on;

/// When each step of the checkpoint came, by the engine's clock.
struct StepTimes {
    clock: Arc<ManualClock>,
    started: Mutex<Option<Duration>>,
    pages: Mutex<Vec<(u32, Duration)>>,
    triggers: Mutex<Vec<Trigger>>,
}

impl Observer for StepTimes {
    fn checkpoint_finished(&self, _count: u64, trigger: Trigger, _measures: &CheckpointMeasures) {
        self.triggers.lock().unwrap().push(trigger);
    }

    fn checkpoint_step(&self, _count: u64, step: CheckpointStep) {
        let now = self.clock.now();
        if step.is_start() {
            *self.started.lock().unwrap() = Some(now);
            self.pages.lock().unwrap().clear();
        }
        if let Some(page) = step.page {
            self.pages.lock().unwrap().push((page.index, now));
        }
    }
}

fn options() -> Options {
    Options {
        strategy: Strategy::Fuzzy,
        page_size_bytes: 1024,
        cache_pages: 64,
        checkpoint_interval: Duration::from_secs(1),
        checkpoint_completion_target: 0.5,
        ..small_options(SyncMode::Instant)
    }
}

const SPREAD: Duration = Duration::from_millis(500);

/// Opens a fuzzy engine on a manual clock that `StepTimes` reads.
async fn open(options: Options) -> (Engine<MemVfs, Arc<ManualClock>>, Arc<StepTimes>) {
    let clock = Arc::new(ManualClock::new());
    let times = Arc::new(StepTimes {
        clock: clock.clone(),
        started: Mutex::new(None),
        pages: Mutex::new(Vec::new()),
        triggers: Mutex::new(Vec::new()),
    });
    let engine = Engine::open(MemVfs::new(), clock, options, times.clone())
        .await
        .unwrap();
    (engine, times)
}

#[test]
fn the_kth_of_n_pages_is_written_no_sooner_than_its_share_of_the_spread() {
    block_on(async {
        let spread = SPREAD;
        let (engine, times) = open(options()).await;
        let clock = times.clock.clone();
        let mut model = Model::new();
        commit_many(&engine, 0, 120, &mut model).await;
        engine.checkpoint().await.unwrap();
        let started = times
            .started
            .lock()
            .unwrap()
            .expect("the checkpoint started");
        let pages = times.pages.lock().unwrap().clone();
        let total = pages.len() as u32;
        assert!(total >= 4, "the checkpoint wrote {total} pages");
        for &(index, at) in &pages {
            let due = spread * index / total;
            assert!(
                at - started >= due,
                "page {index} of {total} written {:?} after the start, before its {due:?}",
                at - started
            );
        }
        // Nothing but the pacing moves this clock, so the checkpoint lasts the spread exactly:
        // no shorter (pages written early), no longer (sleeping past the schedule).
        assert_eq!(
            clock.now() - started,
            spread,
            "the checkpoint's length against its spread"
        );
    });
}

#[test]
fn a_checkpoint_after_a_hurried_one_is_paced_again() {
    // A writer waiting for log space hurries the checkpoint it waits behind (GBase 8t's log
    // space trigger); once that checkpoint has freed the space, the next one keeps the spread.
    block_on(async {
        let (engine, times) = open(Options {
            log_capacity_bytes: Some(16 << 10),
            ..options()
        })
        .await;
        let clock = times.clock.clone();
        let mut model = Model::new();
        let before = clock.now();
        // Over the capacity: the writer waits for a log-space checkpoint, which hurries.
        commit_many(&engine, 0, 90, &mut model).await;
        assert!(times.triggers.lock().unwrap().contains(&Trigger::LogSpace));
        assert!(
            clock.now() - before < SPREAD,
            "the log-space checkpoints were hurried"
        );
        commit_many(&engine, 0, 10, &mut model).await;
        engine.checkpoint().await.unwrap();
        let started = times
            .started
            .lock()
            .unwrap()
            .expect("the checkpoint started");
        assert!(!times.pages.lock().unwrap().is_empty(), "it wrote pages");
        assert_eq!(clock.now() - started, SPREAD, "the checkpoint after them");
    });
}
