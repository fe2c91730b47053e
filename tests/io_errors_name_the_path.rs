//! I/O errors on the real filesystem name the path they concern, the directory and the file,
//! not only the file's name inside the database directory.

mod common;

use common::{open_on, small_options};
use crashpoint::{Error, StdVfs, SyncMode};
use futures::executor::block_on;

#[test]
fn an_unreadable_data_file_error_names_its_path() {
    // Proves an I/O error opening the data file (here a directory in its place) names the full path of the data file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let vfs = StdVfs::new(dir.path()).unwrap();
    let error = block_on(open_on(vfs, &small_options(SyncMode::Instant)))
        .err()
        .expect("a directory is no data file");
    assert!(matches!(error, Error::Io { op: "open", .. }), "{error}");
    let path = dir.path().join("data").display().to_string();
    assert!(error.to_string().contains(&path), "{error}");
}

#[test]
fn a_vanished_directory_error_names_the_directory() {
    // Proves an I/O error listing a database directory that is gone names that directory.
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new(dir.path().join("db")).unwrap();
    std::fs::remove_dir(dir.path().join("db")).unwrap();
    let error = block_on(open_on(vfs, &small_options(SyncMode::Instant)))
        .err()
        .expect("the directory is gone");
    let path = dir.path().join("db").display().to_string();
    assert!(error.to_string().contains(&path), "{error}");
}
