//! A log segment missing from the middle of the log, with later segments still holding
//! records, is corruption naming the gap, as a bad record at the same place is; it is never
//! taken as the end of the log (that would drop acknowledged commits), and the refused open
//! deletes nothing. Runs on the real filesystem and on `MemVfs`.

mod common;

use common::{assert_same, commit_many, corruption_of, open_on, small_options, snapshot, Model};
use crashpoint::log::{
    parse_prefixed_segment_name, parse_segment_name, prefixed_segment_name, segment_name,
    PHYSICAL_LOG_PREFIX,
};
use crashpoint::{MemVfs, Options, StdVfs, Structure, SyncMode, Vfs};
use futures::executor::block_on;

fn options() -> Options {
    small_options(SyncMode::Instant)
}

/// Log segments after the last checkpoint's, ascending, in a database dropped (not closed)
/// after acknowledged commits.
async fn segments_after_commits<V: Vfs + Clone>(vfs: &V) -> (Vec<u64>, Model) {
    let engine = open_on(vfs.clone(), &options()).await.expect("creates");
    let mut model = Model::new();
    commit_many(&engine, 0, 80, &mut model).await;
    drop(engine);
    let segments: Vec<u64> = vfs
        .list()
        .await
        .unwrap()
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .collect();
    (segments, model)
}

async fn missing_middle_segment_case<V: Vfs + Clone>(vfs: V) {
    let (segments, model) = segments_after_commits(&vfs).await;
    assert!(
        segments.len() >= 3,
        "the commits span segments: {segments:?}"
    );
    // Intact, the database opens with every acknowledged commit, the last segment's too.
    let engine = open_on(vfs.clone(), &options()).await.unwrap();
    assert_same(&engine.scan_all().await.unwrap(), &model, "intact log");
    drop(engine);

    let (before, missing, after) = (segments[0], segments[1], segments[2]);
    vfs.remove(&segment_name(missing)).await.unwrap();
    vfs.sync_dir().await.unwrap();
    let files = snapshot(&vfs).await;
    let error = match open_on(vfs.clone(), &options()).await {
        Ok(engine) => panic!(
            "opened with a missing segment: {:?}",
            engine.recovery_report()
        ),
        Err(error) => error,
    };
    let (file, _, detail) = corruption_of(&error, Structure::LogRecord);
    assert_eq!(file, segment_name(before), "{error}");
    assert!(detail.contains(&segment_name(missing)), "{detail}");
    assert!(detail.contains(&segment_name(after)), "{detail}");
    assert!(
        files == snapshot(&vfs).await,
        "the refused open changed files"
    );
}

#[test]
fn a_missing_middle_segment_is_corruption_not_the_end_of_the_log() {
    // Proves a gap in segment LSNs before a segment holding acknowledged commits fails the open typed, naming the gap, and deletes nothing.
    let dir = tempfile::tempdir().unwrap();
    block_on(missing_middle_segment_case(
        StdVfs::new(dir.path()).unwrap(),
    ));
    block_on(missing_middle_segment_case(MemVfs::new()));
}

async fn missing_last_segment_case<V: Vfs + Clone>(vfs: V) {
    let (segments, _) = segments_after_commits(&vfs).await;
    let last = *segments.last().unwrap();
    vfs.remove(&segment_name(last)).await.unwrap();
    let engine = open_on(vfs.clone(), &options())
        .await
        .expect("a log that ends at a segment's end opens");
    assert_eq!(engine.recovery_report().log_end.0, last);
}

#[test]
fn a_log_ending_where_no_segment_follows_is_a_clean_end() {
    // Proves only a gap with more log after it is corruption: without the last segment the log ends where it stops.
    let dir = tempfile::tempdir().unwrap();
    block_on(missing_last_segment_case(StdVfs::new(dir.path()).unwrap()));
    block_on(missing_last_segment_case(MemVfs::new()));
}

async fn missing_first_physical_log_segment_case<V: Vfs + Clone>(vfs: V) {
    let options = Options {
        strategy: crashpoint::Strategy::PhysicalLog,
        // Pages written in place must hold two of the largest entries.
        page_size_bytes: 1024,
        ..options()
    };
    let engine = open_on(vfs.clone(), &options).await.expect("creates");
    let mut model = Model::new();
    commit_many(&engine, 0, 300, &mut model).await;
    // Pages the checkpoint wrote get a before-image when first written again after it.
    engine.checkpoint().await.expect("checkpoint");
    commit_many(&engine, 300, 300, &mut model).await;
    drop(engine);
    let physical: Vec<u64> = vfs
        .list()
        .await
        .unwrap()
        .iter()
        .filter_map(|name| parse_prefixed_segment_name(PHYSICAL_LOG_PREFIX, name))
        .collect();
    assert!(
        physical.len() >= 2,
        "the before-images span segments: {physical:?}"
    );
    // No checkpoint ran after the forced one (the clock stands still), so every segment but the
    // last belongs to its interval, the first of them holding where it starts.
    let last = *physical.last().unwrap();
    for &segment in &physical[..physical.len() - 1] {
        vfs.remove(&prefixed_segment_name(PHYSICAL_LOG_PREFIX, segment))
            .await
            .unwrap();
    }
    vfs.sync_dir().await.unwrap();
    let files = snapshot(&vfs).await;
    let error = match open_on(vfs.clone(), &options).await {
        Ok(engine) => panic!(
            "opened without the physical log's first segment: {:?}",
            engine.recovery_report()
        ),
        Err(error) => error,
    };
    let (file, _, detail) = corruption_of(&error, Structure::PhysicalLogRecord);
    assert_eq!(
        file,
        prefixed_segment_name(PHYSICAL_LOG_PREFIX, last),
        "{error}"
    );
    assert!(detail.contains("no physical log segment holds"), "{detail}");
    assert!(
        files == snapshot(&vfs).await,
        "the refused open changed files"
    );
}

#[test]
fn a_physical_log_missing_its_first_segment_is_corruption() {
    // Proves a physical log whose interval's first segment is gone, while a later one holds
    // before-images, fails the open typed instead of restoring nothing, and deletes nothing.
    let dir = tempfile::tempdir().unwrap();
    block_on(missing_first_physical_log_segment_case(
        StdVfs::new(dir.path()).unwrap(),
    ));
    block_on(missing_first_physical_log_segment_case(MemVfs::new()));
}
