//! The simulated disk keeps one engine per directory, as the real one does, and a disk booted
//! from a crash image starts unlocked, as a killed process's `flock` is gone: recovery after a
//! simulated crash never sees a stale lock, even while the crashed engine still exists.

use std::sync::Arc;

use crashpoint::{Engine, Error, NoopObserver, Options, Write};
use crashpoint_sim::fs::{FsConfig, SimFs};
use crashpoint_sim::hub::SimClock;

#[test]
fn a_crash_image_opens_while_the_crashed_engine_holds_the_old_disk() {
    // Proves a second open of one SimFs is Locked, and a SimFs built from its crash image opens.
    madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
        let fs = SimFs::new(FsConfig::default());
        let open = |fs: SimFs| {
            Engine::open(
                fs,
                SimClock::new(),
                Options::default(),
                Arc::new(NoopObserver),
            )
        };
        let first = open(fs.clone()).await.expect("creates");
        first
            .commit(vec![Write::put(b"key".to_vec(), b"value".to_vec())])
            .await
            .unwrap();
        match open(fs.clone()).await {
            Err(Error::Locked { directory }) => assert_eq!(directory, "simulated disk"),
            Err(error) => panic!("expected Locked, got {error}"),
            Ok(_) => panic!("two engines opened one simulated disk"),
        }
        let point = fs.crash();
        let (image, _) = point.materialize(&point.all_vanish());
        let recovered = open(SimFs::from_image(image, FsConfig::default()))
            .await
            .expect("the crash image is not locked");
        assert_eq!(
            recovered.get(b"key").await.unwrap(),
            Some(b"value".to_vec())
        );
        drop(first);
    });
}
