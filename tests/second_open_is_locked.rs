//! One engine per directory: a second open of a directory another engine holds, in this
//! process or another, fails with `Error::Locked` naming the directory, and succeeds once the
//! first engine is closed, dropped or its process killed. A crash image is a new directory with
//! no stale lock.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{open_on, small_options};
use crashpoint::{Error, MemVfs, Options, StdVfs, SyncMode, Write};
use futures::executor::block_on;

fn options() -> Options {
    small_options(SyncMode::Instant)
}

/// Held by the tests that take real directory locks. A `flock` belongs to the open file, and a
/// process forked to spawn the cross-process test's child shares every open file until it
/// execs, so a lock dropped in that window stays held a moment longer: the tests that drop a
/// lock and open again must not run while another test forks.
static REAL_LOCKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn real_locks() -> std::sync::MutexGuard<'static, ()> {
    REAL_LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Set in the environment of the child process that holds a directory for the cross-process
/// test; names the directory.
const CHILD_DIRECTORY: &str = "CRASHPOINT_TEST_LOCK_HOLDER_DIR";

fn assert_locked<T>(result: crashpoint::Result<T>, directory: &str) {
    match result {
        Err(Error::Locked { directory: found }) => assert_eq!(found, directory),
        Err(error) => panic!("expected Locked, got {error}"),
        Ok(_) => panic!("a second engine opened a directory another engine holds"),
    }
}

#[test]
fn a_second_open_of_one_mem_vfs_is_locked_until_close_or_drop() {
    // Proves MemVfs refuses two engines on one directory and frees it on close and on drop, while a crash image opens at once.
    block_on(async {
        let vfs = MemVfs::new();
        let first = open_on(vfs.clone(), &options()).await.unwrap();
        first
            .commit(vec![Write::put(b"k".to_vec(), b"v".to_vec())])
            .await
            .unwrap();
        assert_locked(
            open_on(vfs.clone(), &options()).await,
            &crashpoint::Vfs::location(&vfs),
        );
        let image = open_on(vfs.crash_image(), &options()).await.unwrap();
        assert_eq!(image.get(b"k").await.unwrap(), Some(b"v".to_vec()));
        first.close().await.unwrap();
        let second = open_on(vfs.clone(), &options()).await.unwrap();
        drop(second);
        drop(first);
        open_on(vfs.clone(), &options()).await.unwrap();
    });
}

#[test]
fn a_second_open_of_one_real_directory_is_locked_until_drop() {
    // Proves two engines in one process on one real directory exclude each other, the error names the directory, and drop releases it.
    let _forks = real_locks();
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    block_on(async {
        let first = open_on(StdVfs::new(dir.path()).unwrap(), &options())
            .await
            .unwrap();
        let error = open_on(StdVfs::new(dir.path()).unwrap(), &options())
            .await
            .err()
            .expect("locked");
        assert!(error.to_string().contains(&location), "{error}");
        assert_locked(Err::<(), _>(error), &location);
        drop(first);
        open_on(StdVfs::new(dir.path()).unwrap(), &options())
            .await
            .unwrap();
    });
}

/// The child process's part of the cross-process test: open the directory, say so, and hold
/// it until the parent closes our standard input or kills us.
fn hold_the_directory(directory: std::ffi::OsString) {
    let engine = block_on(open_on(StdVfs::new(directory).unwrap(), &options())).unwrap();
    println!("holding the lock");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(engine);
}

#[test]
fn another_process_holding_the_directory_locks_it_out_until_it_is_killed() {
    // Proves the lock works across processes and a killed process leaves no stale lock (the test binary reruns this test as the child).
    if let Some(directory) = std::env::var_os(CHILD_DIRECTORY) {
        return hold_the_directory(directory);
    }
    let _forks = real_locks();
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "another_process_holding_the_directory_locks_it_out_until_it_is_killed",
            "--nocapture",
        ])
        .env(CHILD_DIRECTORY, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines.any(|line| line.is_ok_and(|line| line.contains("holding the lock")));
    assert!(held, "the child process did not open the database");
    assert_locked(
        block_on(open_on(StdVfs::new(dir.path()).unwrap(), &options())),
        &location,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    block_on(open_on(StdVfs::new(dir.path()).unwrap(), &options()))
        .expect("a killed process's lock is gone");
}
