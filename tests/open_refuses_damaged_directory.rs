//! Open never creates a database over one it cannot read. A data file with no header (emptied,
//! or both slots zeroed) and a directory with log segments or other files but no data file are
//! refused with typed corruption that names the directory and what it found, and the refused
//! open deletes nothing. Only an empty directory, or a creation that crashed before it
//! finished, is created into. Every case runs on the real filesystem and on `MemVfs`.

mod common;

use std::sync::{Arc, Mutex};

use common::{commit_many, corruption_of, open_observed, open_on, small_options, snapshot, Model};
use crashpoint::format::control::CONTROL_FILE;
use crashpoint::format::header::{HEADER_BYTES, HEADER_SLOT_OFFSETS};
use crashpoint::{
    CheckpointStep, Error, MemVfs, Observer, Options, StdVfs, Strategy, Structure, SyncMode, Vfs,
    VfsFile,
};
use futures::executor::block_on;

fn options() -> Options {
    small_options(SyncMode::Instant)
}

/// A database whose log holds acknowledged commits after its last checkpoint (the engine is
/// dropped without a clean close, as a killed process would leave it).
async fn database_with_commits_in_the_log<V: Vfs + Clone>(vfs: &V) -> Model {
    database_with_commits_as(vfs, &options()).await
}

async fn database_with_commits_as<V: Vfs + Clone>(vfs: &V, options: &Options) -> Model {
    let engine = open_on(vfs.clone(), options).await.expect("creates");
    let mut model = Model::new();
    commit_many(&engine, 0, 40, &mut model).await;
    model
}

/// Runs `case` on a fresh temporary directory of the real filesystem and on a fresh `MemVfs`.
fn on_both<F, G>(case_std: F, case_mem: G)
where
    F: FnOnce(StdVfs),
    G: FnOnce(MemVfs),
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    case_std(StdVfs::new(dir.path()).expect("StdVfs"));
    case_mem(MemVfs::new());
}

/// Opens `vfs`, expects corruption of `structure`, and checks the open changed no file.
async fn expect_refused<V: Vfs + Clone>(vfs: &V, structure: Structure) -> (String, String) {
    expect_refused_as(vfs, &options(), structure).await
}

/// `expect_refused`, opening with `options`.
async fn expect_refused_as<V: Vfs + Clone>(
    vfs: &V,
    options: &Options,
    structure: Structure,
) -> (String, String) {
    let before = snapshot(vfs).await;
    let error = match open_on(vfs.clone(), options).await {
        Ok(_) => panic!("opened a damaged directory as a database: {before:?}"),
        Err(error) => error,
    };
    let (file, _, detail) = corruption_of(&error, structure);
    let after = snapshot(vfs).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a refused open added or deleted files"
    );
    assert!(before == after, "a refused open changed a file's bytes");
    (file.to_string(), detail.to_string())
}

async fn empty_data_file_case<V: Vfs + Clone>(vfs: V) {
    database_with_commits_in_the_log(&vfs).await;
    let data = vfs.open("data").await.unwrap();
    data.set_len(0).await.unwrap();
    data.sync().await.unwrap();
    let (file, detail) = expect_refused(&vfs, Structure::Headers).await;
    assert_eq!(file, "data");
    assert!(detail.contains(&vfs.location()), "{detail}");
    assert!(detail.contains("log-0000"), "{detail}");
}

#[test]
fn an_empty_data_file_beside_log_segments_is_refused() {
    // Proves an emptied data file is corruption naming the directory and its segments, not a new database, and nothing is deleted.
    on_both(
        |vfs| block_on(empty_data_file_case(vfs)),
        |vfs| block_on(empty_data_file_case(vfs)),
    );
}

async fn zeroed_slots_case<V: Vfs + Clone>(vfs: V) {
    database_with_commits_in_the_log(&vfs).await;
    let data = vfs.open("data").await.unwrap();
    for offset in HEADER_SLOT_OFFSETS {
        data.write_at(offset, &[0; HEADER_BYTES]).await.unwrap();
    }
    data.sync().await.unwrap();
    let (file, detail) = expect_refused(&vfs, Structure::Headers).await;
    assert_eq!(file, "data");
    assert!(detail.contains("both header slots are empty"), "{detail}");
}

#[test]
fn zeroed_header_slots_beside_log_segments_are_refused() {
    // Proves a data file whose two header slots are zeros is corruption, not a new database.
    on_both(
        |vfs| block_on(zeroed_slots_case(vfs)),
        |vfs| block_on(zeroed_slots_case(vfs)),
    );
}

async fn deleted_data_file_case<V: Vfs + Clone>(vfs: V) {
    database_with_commits_in_the_log(&vfs).await;
    vfs.remove("data").await.unwrap();
    vfs.sync_dir().await.unwrap();
    let (file, detail) = expect_refused(&vfs, Structure::Directory).await;
    assert_eq!(file, vfs.location(), "the error names the directory");
    assert!(detail.contains("log-00000000000000000000"), "{detail}");
    assert!(detail.contains("log segments"), "{detail}");
}

#[test]
fn a_deleted_data_file_beside_log_segments_is_refused() {
    // Proves log segments without a data file are corruption of the directory, naming it and the segments, and none is deleted.
    on_both(
        |vfs| block_on(deleted_data_file_case(vfs)),
        |vfs| block_on(deleted_data_file_case(vfs)),
    );
}

async fn deleted_control_file_case<V: Vfs + Clone>(vfs: V) {
    let fuzzy = Options {
        strategy: Strategy::Fuzzy,
        page_size_bytes: 1024,
        ..options()
    };
    database_with_commits_as(&vfs, &fuzzy).await;
    vfs.remove(CONTROL_FILE).await.unwrap();
    vfs.sync_dir().await.unwrap();
    let (file, detail) = expect_refused_as(&vfs, &fuzzy, Structure::ControlFile).await;
    assert_eq!(file, CONTROL_FILE);
    assert!(detail.contains("log-0000"), "{detail}");
}

#[test]
fn a_deleted_control_file_is_refused() {
    // Proves a fuzzy database whose control file is gone is corruption of the control file
    // (its anchor), not an I/O error or a new database, and nothing is deleted.
    on_both(
        |vfs| block_on(deleted_control_file_case(vfs)),
        |vfs| block_on(deleted_control_file_case(vfs)),
    );
}

async fn foreign_file_case<V: Vfs + Clone>(vfs: V) {
    let notes = vfs.create("notes.txt").await.unwrap();
    notes.write_at(0, b"not a database").await.unwrap();
    notes.sync().await.unwrap();
    let (file, detail) = expect_refused(&vfs, Structure::Directory).await;
    assert_eq!(file, vfs.location());
    assert!(detail.contains("notes.txt"), "{detail}");
    assert!(
        detail.contains("files that are not a database's"),
        "{detail}"
    );
}

async fn creation_leftover_beside_a_foreign_file_case<V: Vfs + Clone>(vfs: V) {
    vfs.create("data.creating")
        .await
        .unwrap()
        .sync()
        .await
        .unwrap();
    let notes = vfs.create("notes.txt").await.unwrap();
    notes.write_at(0, b"not a database").await.unwrap();
    notes.sync().await.unwrap();
    vfs.sync_dir().await.unwrap();
    let (_, detail) = expect_refused(&vfs, Structure::Directory).await;
    assert!(detail.contains("notes.txt"), "{detail}");
}

#[test]
fn an_unfinished_creation_beside_a_foreign_file_is_refused() {
    // Proves only files a creation writes mark an unfinished creation: with a stray file
    // beside `data.creating`, open refuses instead of creating over (and deleting) it.
    on_both(
        |vfs| block_on(creation_leftover_beside_a_foreign_file_case(vfs)),
        |vfs| block_on(creation_leftover_beside_a_foreign_file_case(vfs)),
    );
}

#[test]
fn a_directory_holding_other_files_is_not_created_into() {
    // Proves open creates a database only in an empty directory: a file it did not expect is reported, and kept.
    on_both(
        |vfs| block_on(foreign_file_case(vfs)),
        |vfs| block_on(foreign_file_case(vfs)),
    );
}

#[test]
fn a_subdirectory_is_not_created_into() {
    // Proves the real filesystem's listing shows subdirectories too, so a directory holding one is not taken for empty.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keep")).unwrap();
    let vfs = StdVfs::new(dir.path()).unwrap();
    let error = block_on(open_on(vfs, &options())).err().expect("refused");
    assert!(
        matches!(&error, Error::Corruption { structure: Structure::Directory, detail, .. } if detail.contains("keep")),
        "{error}"
    );
    assert!(dir.path().join("keep").is_dir());
}

/// Takes a crash image of a `MemVfs` at every step of every checkpoint.
struct ImageAtEveryStep {
    vfs: MemVfs,
    images: Mutex<Vec<(CheckpointStep, MemVfs)>>,
}

impl Observer for ImageAtEveryStep {
    fn checkpoint_step(&self, _count: u64, step: CheckpointStep) {
        self.images
            .lock()
            .unwrap()
            .push((step, self.vfs.crash_image()));
    }
}

/// Copies every file of `image` into the real directory of `vfs`.
async fn copy_into(image: &MemVfs, vfs: &StdVfs) {
    for (name, bytes) in snapshot(image).await {
        let file = vfs.create(&name).await.unwrap();
        file.write_at(0, &bytes).await.unwrap();
        file.sync().await.unwrap();
    }
    vfs.sync_dir().await.unwrap();
}

/// Opens `vfs` and checks it was created as a new, empty database.
async fn opens_as_new<V: Vfs>(vfs: V, step: CheckpointStep) {
    let engine = open_on(vfs, &options())
        .await
        .unwrap_or_else(|error| panic!("{step:?}: {error}"));
    assert!(
        engine.recovery_report().created,
        "{step:?}: not created again"
    );
    let entries = engine.scan_all().await.unwrap();
    assert!(entries.is_empty(), "{step:?}: {entries:?}");
}

#[test]
fn a_crash_during_creation_is_created_again() {
    // Proves a directory left by a creation that crashed at any step (no commit acknowledged yet) opens as a new, empty database, on both Vfs.
    block_on(async {
        let vfs = MemVfs::new();
        let observer = Arc::new(ImageAtEveryStep {
            vfs: vfs.clone(),
            images: Mutex::new(Vec::new()),
        });
        let engine = open_observed(vfs.clone(), &options(), observer.clone())
            .await
            .unwrap();
        drop(engine);
        let images = std::mem::take(&mut *observer.images.lock().unwrap());
        assert!(images.len() > 5, "creation's checkpoint has steps");
        for (step, image) in images {
            let names = image.list().await.unwrap();
            assert!(!names.contains(&"data".to_string()), "{step:?}: {names:?}");
            let dir = tempfile::tempdir().unwrap();
            let real = StdVfs::new(dir.path()).unwrap();
            copy_into(&image, &real).await;
            opens_as_new(image, step).await;
            opens_as_new(real, step).await;
        }
    });
}
