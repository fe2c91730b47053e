//! A no-sync commit returns before its record reaches the disk, but the records waiting in
//! memory are bounded: once 64 KiB pile up they are written out (unsynced), so a process crash
//! loses at most that much of the log, and memory does not grow with the commits.

mod common;

use common::{commit_many, key, log_segments, open_on, small_options, value, Model};
use crashpoint::{MemVfs, Options, SyncMode, Vfs, VfsFile, Write};
use futures::executor::block_on;

/// Bytes a no-sync engine may hold in memory before it writes them out.
const BUFFER_BOUND_BYTES: u64 = 64 << 10;

#[test]
fn no_sync_commits_reach_the_file_in_bounded_batches() {
    // Proves at most 64 KiB of committed log is only in memory at any time: after each batch of
    // commits (no checkpoint, no eviction and no fsync in between), the log files hold all but
    // at most that much.
    block_on(async {
        let vfs = MemVfs::new();
        let options = Options {
            // Nothing but the buffer bound writes the log out: no eviction flushes it first.
            cache_pages: 4096,
            log_segment_bytes: 1 << 20,
            ..small_options(SyncMode::NoSync)
        };
        let engine = open_on(vfs.clone(), &options).await.expect("creates");
        let mut model = Model::new();
        let mut written_max = 0;
        for batch in 0..8u32 {
            commit_many(&engine, batch * 100, 100, &mut model).await;
            let last = vec![Write::put(key(batch), value(u64::from(batch), 200))];
            // Where the batch's last record starts: all before it was committed.
            let end = engine.commit(last).await.expect("commit").lsn.0;
            let mut written = 0;
            for (_, name) in log_segments(&vfs).await {
                let file = vfs.open(&name).await.unwrap();
                written += file.len().await.unwrap();
            }
            assert!(
                end - written <= BUFFER_BOUND_BYTES,
                "batch {batch}: the log ends at {end} but its files hold {written} bytes"
            );
            written_max = written_max.max(written);
        }
        assert!(written_max > BUFFER_BOUND_BYTES, "{written_max}");
    });
}
