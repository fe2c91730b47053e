//! The engine on the real filesystem (`StdVfs` in a temporary directory): a seeded workload of
//! commits, checkpoints, reads and scans, a clean close and reopen, then a drop without close
//! and a reopen. The OS keeps written data across a process-level drop, so every commit must
//! be there. A failure names the seed.

mod common;

use std::ops::Bound;

use common::{apply, assert_same, key, model_scan, open_on, small_options, value, Model};
use crashpoint::{Engine, ManualClock, Options, StdVfs, SyncMode, Write};
use futures::executor::block_on;

/// A small deterministic generator (xorshift64*), so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const KEYS: u64 = 120;

type StdEngine = Engine<StdVfs, ManualClock>;

async fn open(dir: &std::path::Path, options: &Options) -> StdEngine {
    open_on(StdVfs::new(dir).unwrap(), options).await.unwrap()
}

/// Runs `operations` random operations against `engine` and `model`.
async fn workload(
    engine: &StdEngine,
    model: &mut Model,
    rng: &mut Rng,
    operations: u32,
    seed: u64,
) {
    for step in 0..operations {
        match rng.below(20) {
            0 => {
                engine.checkpoint().await.unwrap();
            }
            1..=2 => {
                let index = rng.below(KEYS) as u32;
                let found = engine.get(&key(index)).await.unwrap();
                assert_eq!(
                    found.as_ref(),
                    model.get(&key(index)),
                    "seed {seed} step {step}: get of key {index}"
                );
            }
            3 => {
                let (start, end) = (key(rng.below(KEYS) as u32), key(rng.below(KEYS) as u32));
                let limit = 1 + rng.below(50) as usize;
                let found = engine
                    .scan(&start, Bound::Excluded(&end), limit)
                    .await
                    .unwrap();
                let expected = model_scan(model, &start, Bound::Excluded(&end), limit);
                assert_eq!(found, expected, "seed {seed} step {step}: scan");
            }
            _ => {
                let writes: Vec<Write> = (0..1 + rng.below(5))
                    .map(|_| {
                        let index = rng.below(KEYS) as u32;
                        if rng.below(5) == 0 {
                            Write::delete(key(index))
                        } else {
                            let len = rng.below(220) as usize;
                            Write::put(key(index), value(rng.next(), len))
                        }
                    })
                    .collect();
                let mut txn = engine.begin();
                for write in &writes {
                    match &write.value {
                        Some(value) => txn.put(write.key.clone(), value.clone()),
                        None => txn.delete(write.key.clone()),
                    }
                }
                let info = txn.commit().await.unwrap();
                assert!(
                    info.durable,
                    "seed {seed} step {step}: an instant commit returned not durable"
                );
                apply(model, &writes);
            }
        }
    }
}

#[test]
fn std_vfs_workload_survives_close_and_an_unclosed_drop() {
    // Proves on the real filesystem that close/reopen and drop-without-close/reopen both keep every commit.
    let options = small_options(SyncMode::Instant);
    for seed in 1..=2u64 {
        block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = Rng::new(seed);
            let mut model = Model::new();

            let engine = open(dir.path(), &options).await;
            assert!(engine.recovery_report().created);
            workload(&engine, &mut model, &mut rng, 200, seed).await;
            engine.close().await.unwrap();
            drop(engine);

            let engine = open(dir.path(), &options).await;
            let report = engine.recovery_report().clone();
            assert!(!report.created, "seed {seed}: {report:?}");
            assert_eq!(
                report.replayed_commits, 0,
                "seed {seed}: a clean close leaves nothing to replay"
            );
            assert_same(
                &engine.scan_all().await.unwrap(),
                &model,
                &format!("seed {seed}: after close and reopen"),
            );
            workload(&engine, &mut model, &mut rng, 200, seed).await;
            drop(engine);

            let engine = open(dir.path(), &options).await;
            assert_same(
                &engine.scan_all().await.unwrap(),
                &model,
                &format!("seed {seed}: after a drop without close"),
            );
            workload(&engine, &mut model, &mut rng, 100, seed).await;
            engine.close().await.unwrap();
            drop(engine);

            let engine = open(dir.path(), &options).await;
            assert_same(
                &engine.scan_all().await.unwrap(),
                &model,
                &format!("seed {seed}: at the end"),
            );
        });
    }
}

#[test]
fn std_vfs_periodic_commits_survive_a_drop_after_sync_log() {
    // Proves on the real filesystem that periodic commits acknowledged by sync_log are all there after a drop.
    block_on(async {
        let options = small_options(SyncMode::Periodic);
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), &options).await;
        let mut model = Model::new();
        for round in 0..20u32 {
            let batch: Vec<Vec<Write>> = (0..8)
                .map(|item| {
                    vec![Write::put(
                        key((round * 8 + item) % 90),
                        value(u64::from(round * 8 + item), 90),
                    )]
                })
                .collect();
            let commits =
                futures::future::join_all(batch.iter().map(|writes| engine.commit(writes.clone())));
            let syncer = async {
                common::yield_now().await;
                engine.sync_log().await.unwrap();
            };
            let (results, ()) = futures::future::join(commits, syncer).await;
            for (writes, result) in batch.iter().zip(results) {
                assert!(result.unwrap().durable);
                apply(&mut model, writes);
            }
        }
        drop(engine);
        let engine = open(dir.path(), &options).await;
        assert_same(
            &engine.scan_all().await.unwrap(),
            &model,
            "after a drop following group commits",
        );
    });
}
