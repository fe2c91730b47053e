//! GBase 8t's log space trigger: with `log_capacity_bytes` set, a writer that finds the log
//! since the last checkpoint at 90% of the capacity waits for a checkpoint before it logs,
//! instead of failing or growing the log past it. So committing several capacities' worth of
//! log takes log-space checkpoints, the log a recovery replays stays within the capacity, and
//! nothing is lost.

mod common;

use std::sync::Arc;

use common::{assert_same, commit_many, open_observed, open_on, small_options, Model, TriggerLog};
use crashpoint::{MemVfs, Options, Strategy, SyncMode, Trigger};
use futures::executor::block_on;

const CAPACITY: u64 = 16 << 10;

fn options(strategy: Strategy) -> Options {
    Options {
        strategy,
        page_size_bytes: 1024,
        log_capacity_bytes: Some(CAPACITY),
        ..small_options(SyncMode::Instant)
    }
}

#[test]
fn a_full_log_makes_the_writer_wait_for_a_checkpoint() {
    block_on(async {
        for strategy in [Strategy::Sharp, Strategy::Fuzzy, Strategy::PhysicalLog] {
            let vfs = MemVfs::new();
            let triggers = Arc::new(TriggerLog::default());
            let engine = open_observed(vfs.clone(), &options(strategy), triggers.clone())
                .await
                .unwrap();
            let mut model = Model::new();
            // About 200 bytes a commit: 5 capacities' worth of log.
            let commits = (5 * CAPACITY / 200) as u32;
            commit_many(&engine, 0, commits, &mut model).await;
            drop(engine);
            let log_space = triggers
                .triggers()
                .iter()
                .filter(|&&trigger| trigger == Trigger::LogSpace)
                .count();
            assert!(
                log_space >= 4,
                "{strategy}: {log_space} log-space checkpoints for 5 capacities of log"
            );

            let engine = open_on(vfs.crash_image(), &options(strategy))
                .await
                .unwrap();
            let report = engine.recovery_report().clone();
            let replayed = report.log_end.0 - report.checkpoint_lsn.0;
            assert!(
                replayed <= CAPACITY,
                "{strategy}: recovery replayed {replayed} bytes of log, over the {CAPACITY} \
                 capacity: {report:?}"
            );
            assert_same(
                &engine.scan_all().await.unwrap(),
                &model,
                &format!("{strategy} after recovery"),
            );
        }
    });
}
