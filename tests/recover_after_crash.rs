//! Crashes at every checkpoint step and in the log tail: recovery must keep every acknowledged
//! commit, pick the checkpoint that was durable at the crash, cut a torn log tail, and let the
//! cut log be continued and recovered again.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    apply, assert_same, copy_vfs, key, log_segments, open_observed, open_on, small_options, value,
    Model, YieldingVfs,
};
use crashpoint::format::record::{encoded_len, Record};
use crashpoint::{CheckpointStep, Lsn, MemVfs, Observer, Options, Strategy, SyncMode, Write};
use futures::executor::block_on;

/// A crash image taken right after a checkpoint step.
struct Image {
    step: CheckpointStep,
    vfs: MemVfs,
    /// LSNs of the commits that had returned to their callers when the image was taken.
    acknowledged: Vec<Lsn>,
    /// Commits appended to the log when the image was taken.
    logged: usize,
}

/// Records every logged commit, and while armed takes a crash image after every checkpoint
/// step. It holds a clone of the MemVfs, which shares the engine's files.
struct CrashAtEveryStep {
    vfs: MemVfs,
    armed: AtomicBool,
    logged: Mutex<Vec<(Lsn, Vec<Write>)>>,
    acknowledged: Mutex<Vec<Lsn>>,
    images: Mutex<Vec<Image>>,
}

impl CrashAtEveryStep {
    fn new(vfs: MemVfs) -> Arc<Self> {
        Arc::new(Self {
            vfs,
            armed: AtomicBool::new(false),
            logged: Mutex::new(Vec::new()),
            acknowledged: Mutex::new(Vec::new()),
            images: Mutex::new(Vec::new()),
        })
    }

    fn acknowledge(&self, lsn: Lsn) {
        self.acknowledged.lock().unwrap().push(lsn);
    }

    /// The model after every logged commit with an LSN at or below `bound`.
    fn model_through(&self, bound: Lsn) -> Model {
        let mut model = Model::new();
        for (lsn, writes) in self.logged.lock().unwrap().iter() {
            if *lsn <= bound {
                apply(&mut model, writes);
            }
        }
        model
    }
}

impl Observer for CrashAtEveryStep {
    fn checkpoint_step(&self, _count: u64, step: CheckpointStep) {
        if self.armed.load(Ordering::SeqCst) {
            self.images.lock().unwrap().push(Image {
                step,
                vfs: self.vfs.crash_image(),
                acknowledged: self.acknowledged.lock().unwrap().clone(),
                logged: self.logged.lock().unwrap().len(),
            });
        }
    }

    fn commit_logged(&self, lsn: Lsn, _end: Lsn, writes: &[Write]) {
        self.logged.lock().unwrap().push((lsn, writes.to_vec()));
    }
}

fn options() -> Options {
    strategy_options(Strategy::Sharp)
}

/// The test's options for `strategy`: pages large enough that the in-place strategies' slots
/// hold the test's largest entry.
fn strategy_options(strategy: Strategy) -> Options {
    Options {
        strategy,
        cache_pages: 16,
        page_size_bytes: 1024,
        ..small_options(SyncMode::Instant)
    }
}

/// The step after which a strategy's checkpoint is durable (its anchor is synced).
fn durable_step(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Sharp => "header-synced",
        Strategy::Fuzzy => "control-file-synced",
        Strategy::PhysicalLog => "reserved-page-synced",
    }
}

fn writes_for(round: u64) -> Vec<Write> {
    let index = ((round * 37) % 150) as u32;
    if round % 11 == 5 {
        vec![Write::delete(key(index))]
    } else {
        vec![
            Write::put(key(index), value(round, 40 + (round as usize * 13) % 160)),
            Write::put(key((index + 71) % 150), value(round + 1, 20)),
        ]
    }
}

/// Opens `image`, checks the recovered checkpoint and state, and returns the engine's state.
async fn check_image(
    image: &Image,
    observer: &CrashAtEveryStep,
    new_count: u64,
    strategy: Strategy,
) {
    let step = image.step;
    let engine = open_on(image.vfs.clone(), &strategy_options(strategy))
        .await
        .unwrap_or_else(|error| {
            panic!("{strategy}: crash after {step:?}: recovery failed: {error}")
        });
    let report = engine.recovery_report().clone();
    let durable = strategy
        .step(durable_step(strategy))
        .expect("a durable step");
    let expected_count = if step.step.position >= durable.position {
        new_count
    } else {
        new_count - 1
    };
    assert_eq!(
        report.checkpoint_count, expected_count,
        "crash after {step:?}: recovered checkpoint {} (report {report:?})",
        report.checkpoint_count
    );
    let bound = report
        .last_commit_lsn
        .unwrap_or(Lsn(0))
        .max(report.checkpoint_lsn);
    for lsn in &image.acknowledged {
        assert!(
            *lsn <= bound,
            "crash after {step:?}: acknowledged commit {lsn} was lost (recovered through {bound}, report {report:?})"
        );
    }
    let replayed_through = observer
        .logged
        .lock()
        .unwrap()
        .iter()
        .filter(|(lsn, _)| *lsn <= bound)
        .count();
    assert!(
        replayed_through <= image.logged,
        "crash after {step:?}: recovery holds {replayed_through} commits but only {} were logged",
        image.logged
    );
    let found = engine
        .scan_all()
        .await
        .unwrap_or_else(|error| panic!("crash after {step:?}: scan failed: {error}"));
    assert_same(
        &found,
        &observer.model_through(bound),
        &format!("crash after {step:?}"),
    );
}

#[test]
fn a_crash_after_any_checkpoint_step_recovers_every_acknowledged_commit() {
    // Proves, for every strategy, a crash after each checkpoint step keeps all commits and recovers the new checkpoint iff its anchor was synced.
    for strategy in Strategy::ALL {
        crash_after_every_step(strategy);
    }
}

fn crash_after_every_step(strategy: Strategy) {
    let options = || strategy_options(strategy);
    block_on(async {
        let vfs = MemVfs::new();
        let observer = CrashAtEveryStep::new(vfs.clone());
        let engine = open_observed(vfs.clone(), &options(), observer.clone())
            .await
            .unwrap();
        for round in 0..300 {
            let info = engine.commit(writes_for(round)).await.unwrap();
            assert!(info.durable);
            observer.acknowledge(info.lsn);
            if round == 150 {
                engine.checkpoint().await.unwrap();
            }
        }
        observer.armed.store(true, Ordering::SeqCst);
        let count = engine.checkpoint().await.unwrap();
        observer.armed.store(false, Ordering::SeqCst);

        let images = std::mem::take(&mut *observer.images.lock().unwrap());
        let names: BTreeSet<&str> = images.iter().map(|image| image.step.name()).collect();
        assert_eq!(
            names,
            strategy
                .steps()
                .iter()
                .map(|step| step.name)
                .collect::<BTreeSet<_>>(),
            "{strategy}: every step was observed"
        );
        let pages_written = images
            .iter()
            .filter(|image| image.step.page.is_some())
            .count();
        assert!(
            pages_written >= 4,
            "{strategy}: the checkpoint wrote only {pages_written} pages; the test wants several"
        );
        for image in &images {
            check_image(image, &observer, count, strategy).await;
        }

        // A recovered image keeps working: more commits, another crash, and everything is there.
        let middle = images
            .iter()
            .find(|image| image.step.page.is_some_and(|page| page.index == 2))
            .expect("a third page write");
        let recovered = open_on(middle.vfs.clone(), &options()).await.unwrap();
        let mut model = observer.model_through(Lsn(u64::MAX));
        for round in 300..400 {
            let writes = writes_for(round);
            recovered.commit(writes.clone()).await.unwrap();
            apply(&mut model, &writes);
        }
        let again = open_on(middle.vfs.crash_image(), &options()).await.unwrap();
        assert_same(
            &again.scan_all().await.unwrap(),
            &model,
            "second crash after recovery",
        );
    });
}

#[test]
fn commits_during_a_checkpoint_survive_a_crash_at_any_step() {
    // Proves, for every strategy, commits that run inside the checkpoint window (copy-on-write of pending pages, writes in place over pages being flushed) are recovered after a crash at each step.
    for strategy in Strategy::ALL {
        commits_during_checkpoint(strategy);
    }
}

fn commits_during_checkpoint(strategy: Strategy) {
    let options = || strategy_options(strategy);
    block_on(async {
        let memory = MemVfs::new();
        let observer = CrashAtEveryStep::new(memory.clone());
        let vfs = YieldingVfs::new(memory.clone(), true);
        let engine = open_observed(vfs, &options(), observer.clone())
            .await
            .unwrap();
        for round in 0..200 {
            let info = engine.commit(writes_for(round)).await.unwrap();
            observer.acknowledge(info.lsn);
        }
        observer.armed.store(true, Ordering::SeqCst);
        let checkpoint = engine.checkpoint();
        let writers = futures::future::join_all((0..3u64).map(|writer| {
            let engine = &engine;
            let observer = &observer;
            async move {
                for round in 0..40u64 {
                    let info = engine
                        .commit(writes_for(1000 + writer * 100 + round))
                        .await
                        .unwrap();
                    observer.acknowledge(info.lsn);
                }
            }
        }));
        let (count, _) = futures::future::join(checkpoint, writers).await;
        let count = count.unwrap();
        observer.armed.store(false, Ordering::SeqCst);

        let images = std::mem::take(&mut *observer.images.lock().unwrap());
        let started = images.first().expect("a started image").logged;
        let finished = images.last().expect("a finished image").logged;
        assert!(
            finished > started,
            "no commit ran inside the checkpoint window ({started} logged at start and at finish)"
        );
        for image in &images {
            check_image(image, &observer, count, strategy).await;
        }
        let final_image = open_on(memory.crash_image(), &options()).await.unwrap();
        assert_same(
            &final_image.scan_all().await.unwrap(),
            &observer.model_through(Lsn(u64::MAX)),
            "crash after the checkpoint and all writers finished",
        );
    });
}

/// Commits `rounds` into `engine`, applying them to `model`; returns the last commit's LSN.
async fn commit_rounds(
    engine: &crashpoint::Engine<MemVfs, crashpoint::ManualClock>,
    model: &mut Model,
    rounds: std::ops::Range<u64>,
) -> Lsn {
    let mut last = Lsn(0);
    for round in rounds {
        let writes = writes_for(round);
        let info = engine.commit(writes.clone()).await.unwrap();
        assert!(info.durable);
        apply(model, &writes);
        last = info.lsn;
    }
    last
}

#[test]
fn garbage_after_the_last_log_record_is_cut_off_and_the_log_continues() {
    // Proves a garbage log tail is discarded and reported, and commits appended after the cut survive a second crash.
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        let mut model = Model::new();
        commit_rounds(&engine, &mut model, 0..60).await;
        drop(engine);
        let image = vfs.crash_image();
        let (start, name) = log_segments(&image).await.pop().expect("a log segment");
        let len = image.contents(&name).unwrap().len() as u64;
        image.poke(&name, len, &[0xA5; 40]);

        let engine = open_on(image.clone(), &options()).await.unwrap();
        let report = engine.recovery_report().clone();
        assert_eq!(report.discarded_log_bytes, 40, "report {report:?}");
        assert_eq!(report.log_end, Lsn(start + len), "report {report:?}");
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after cutting the garbage tail",
        );

        commit_rounds(&engine, &mut model, 60..120).await;
        drop(engine);
        let engine = open_on(image.crash_image(), &options()).await.unwrap();
        assert_eq!(engine.recovery_report().discarded_log_bytes, 0);
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "second crash after the cut",
        );
    });
}

#[test]
fn a_record_torn_mid_way_is_cut_off_and_the_log_continues() {
    // Proves a half-written last record is discarded (its commit lost, earlier ones kept) and new commits reuse its LSN safely.
    block_on(async {
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options()).await.unwrap();
        let mut model = Model::new();
        commit_rounds(&engine, &mut model, 0..59).await;
        let before_last = model.clone();
        let last = commit_rounds(&engine, &mut model, 59..60).await;
        drop(engine);

        // The segment holding the last commit; padding may follow the record, so its length
        // comes from the record format, not from the file's end.
        let (start, name) = log_segments(&vfs)
            .await
            .into_iter()
            .rfind(|(start, _)| *start <= last.0)
            .expect("a log segment holds the last commit");
        let record_len = encoded_len(&Record::Commit {
            txn_id: 0,
            writes: writes_for(59),
        }) as u64;
        let cut_len = last.0 - start + record_len / 2;
        let torn = copy_vfs(&vfs.crash_image(), |file, bytes| {
            if file == name {
                bytes.truncate(cut_len as usize);
            }
        })
        .await;

        let engine = open_on(torn.clone(), &options()).await.unwrap();
        let report = engine.recovery_report().clone();
        assert_eq!(
            report.discarded_log_bytes,
            record_len / 2,
            "report {report:?}"
        );
        assert_eq!(report.log_end, last, "report {report:?}");
        assert!(report.last_commit_lsn < Some(last), "report {report:?}");
        assert_same(
            &engine.scan_all().await.unwrap(),
            &before_last,
            "after cutting the torn record",
        );

        let mut model = before_last;
        let first_new = commit_rounds(&engine, &mut model, 200..201).await;
        assert_eq!(first_new, last, "the next commit continues at the cut");
        commit_rounds(&engine, &mut model, 201..260).await;
        drop(engine);
        let engine = open_on(torn.crash_image(), &options()).await.unwrap();
        assert_eq!(engine.recovery_report().discarded_log_bytes, 0);
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "second crash after the cut",
        );
    });
}

#[test]
fn an_unsynced_no_sync_tail_is_lost_whole_and_the_log_continues() {
    // Proves a crash drops exactly the unsynced no-sync commits and recovery appends after the synced prefix.
    block_on(async {
        let options = small_options(SyncMode::NoSync);
        let vfs = MemVfs::new();
        let engine = open_on(vfs.clone(), &options).await.unwrap();
        let mut model = Model::new();
        for round in 0..40 {
            let writes = writes_for(round);
            engine.commit(writes.clone()).await.unwrap();
            apply(&mut model, &writes);
        }
        engine.sync_log().await.unwrap();
        let synced = model.clone();
        for round in 40..80 {
            let writes = writes_for(round);
            let info = engine.commit(writes.clone()).await.unwrap();
            assert!(!info.durable);
            apply(&mut model, &writes);
        }
        let image = vfs.crash_image();
        drop(engine);

        let engine = open_on(image.clone(), &options).await.unwrap();
        assert_same(
            &engine.scan_all().await.unwrap(),
            &synced,
            "after losing the unsynced tail",
        );
        let mut model = synced;
        for round in 80..120 {
            let writes = writes_for(round);
            engine.commit(writes.clone()).await.unwrap();
            apply(&mut model, &writes);
        }
        engine.sync_log().await.unwrap();
        drop(engine);
        let engine = open_on(image.crash_image(), &options).await.unwrap();
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "second crash after the lost tail",
        );
    });
}
