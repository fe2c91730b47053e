use std::future::Future;

use crashpoint::vfs::{read_all, Vfs, VfsFile};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn simulate<F: Future>(seed: u64, test: F) -> F::Output {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(test)
}

fn config_with(faults: FaultConfig) -> FsConfig {
    FsConfig {
        faults,
        ..FsConfig::default()
    }
}

/// A disk holding `name` with `bytes`, durable.
fn disk_with(name: &str, bytes: &[u8], config: FsConfig) -> SimFs {
    let mut image = DiskImage::default();
    image.files.insert(name.to_string(), bytes.to_vec());
    SimFs::from_image(image, config)
}

fn kinds(faults: &[FaultRecord]) -> Vec<FaultKind> {
    faults.iter().map(|fault| fault.kind).collect()
}

#[test]
fn honest_sync_makes_data_durable() {
    // Proves an honest sync and sync_dir survive a crash that loses everything unsynced.
    simulate(1, async {
        let fs = SimFs::new(FsConfig::default());
        let file = fs.create("a").await.unwrap();
        file.write_at(0, b"synced").await.unwrap();
        file.sync().await.unwrap();
        fs.sync_dir().await.unwrap();
        file.write_at(6, b" and lost").await.unwrap();
        assert_eq!(fs.file_bytes("a").unwrap(), b"synced and lost");
        let point = fs.crash();
        let (image, faults) = point.materialize(&point.all_vanish());
        assert_eq!(image.files["a"], b"synced");
        assert_eq!(image, fs.durable_image());
        assert_eq!(kinds(&faults), vec![FaultKind::LostWrite]);
        let rebooted = SimFs::from_image(image, FsConfig::default());
        let file = rebooted.open("a").await.unwrap();
        assert_eq!(read_all(&file).await.unwrap(), b"synced");
    });
}

#[test]
fn unsynced_write_vanishes_survives_or_tears_by_sector() {
    // Proves the three fates of an unsynced write, sector by sector, with exact bytes.
    simulate(2, async {
        let config = FsConfig {
            faults: FaultConfig {
                sector_size_bytes: 4,
                ..FaultConfig::none()
            },
            ..FsConfig::default()
        };
        let fs = disk_with("a", b"AAAAAAAAAAAA", config);
        let file = fs.open("a").await.unwrap();
        file.write_at(2, b"BBBBBBBB").await.unwrap();
        let point = fs.crash_point();
        assert_eq!(point.pending.len(), 1);
        assert_eq!(point.pending[0].op.sectors_touched(4), 0..3);

        let vanish = point.all_vanish();
        assert_eq!(point.materialize(&vanish).0.files["a"], b"AAAAAAAAAAAA");
        let survive = point.all_survive();
        assert_eq!(point.materialize(&survive).0.files["a"], b"AABBBBBBBBAA");

        let torn = CrashDecisions {
            fates: vec![WriteFate::Torn(vec![
                SectorFate::New,
                SectorFate::Old,
                SectorFate::Garbage(7),
            ])],
            namespace_applied: vec![],
            order: vec![0],
        };
        let (image, faults) = point.materialize(&torn);
        let mut garbage = [0u8; 4];
        ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut garbage);
        let mut expected = b"AABBAAAA".to_vec();
        expected.extend_from_slice(&garbage);
        assert_eq!(image.files["a"], expected);
        assert_eq!(kinds(&faults), vec![FaultKind::TornWrite]);
        assert_eq!(faults[0].detail, "sectors [new, old, garbage]");
    });
}

#[test]
fn torn_extending_write_keeps_the_new_length() {
    // Proves a torn write past the end extends the file and leaves zeros in its old sectors.
    simulate(3, async {
        let config = FsConfig {
            faults: FaultConfig {
                sector_size_bytes: 4,
                ..FaultConfig::none()
            },
            ..FsConfig::default()
        };
        let fs = disk_with("a", b"AAAA", config);
        let file = fs.open("a").await.unwrap();
        file.write_at(4, b"BBBBCCCC").await.unwrap();
        let point = fs.crash_point();
        let torn = CrashDecisions {
            fates: vec![WriteFate::Torn(vec![SectorFate::Old, SectorFate::New])],
            namespace_applied: vec![],
            order: vec![0],
        };
        assert_eq!(point.materialize(&torn).0.files["a"], b"AAAA\0\0\0\0CCCC");
    });
}

#[test]
fn a_file_can_end_inside_an_appended_write() {
    // Proves a cut write leaves its file ending at the first missing sector (its earlier
    // sectors landed), that missing sectors keep old bytes where the file was already longer,
    // and that the crash reports a cut write.
    simulate(23, async {
        let config = FsConfig {
            faults: FaultConfig {
                sector_size_bytes: 4,
                ..FaultConfig::none()
            },
            ..FsConfig::default()
        };
        let fs = disk_with("a", b"AAAAAA", config);
        let file = fs.open("a").await.unwrap();
        file.write_at(2, b"BBBBBBBBBB").await.unwrap();
        let point = fs.crash_point();
        let cut = |fates: Vec<SectorFate>| CrashDecisions {
            fates: vec![WriteFate::Torn(fates)],
            namespace_applied: vec![],
            order: vec![0],
        };
        let (image, faults) = point.materialize(&cut(vec![
            SectorFate::New,
            SectorFate::New,
            SectorFate::Missing,
        ]));
        assert_eq!(
            image.files["a"], b"AABBBBBB",
            "ends at the first missing sector"
        );
        assert_eq!(kinds(&faults), vec![FaultKind::CutWrite]);
        assert_eq!(faults[0].detail, "sectors [new, new, missing]");
        let (image, _) = point.materialize(&cut(vec![
            SectorFate::New,
            SectorFate::Missing,
            SectorFate::Missing,
        ]));
        assert_eq!(image.files["a"], b"AABBAA", "the file was already longer");
        let (image, _) = point.materialize(&cut(vec![SectorFate::Missing; 3]));
        assert_eq!(image.files["a"], b"AAAAAA");
    });
}

#[test]
fn random_cuts_end_files_only_inside_writes_that_land() {
    // Proves the cut draw leaves vanished writes alone, cuts landing ones at one sector with
    // everything after it missing, and never cuts with a rate of 0.
    let config = CrashConfig {
        cut: 1.0,
        ..CrashConfig::default()
    };
    simulate(24, async {
        let fs = SimFs::new(FsConfig {
            faults: FaultConfig {
                sector_size_bytes: 4,
                ..FaultConfig::none()
            },
            ..FsConfig::default()
        });
        let file = fs.create("a").await.unwrap();
        for round in 0..6u64 {
            file.write_at(round * 16, &[1u8; 16]).await.unwrap();
        }
        let point = fs.crash_point();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut decisions = point.all_survive();
        decisions.fates[1] = WriteFate::Vanishes;
        point.random_cuts(&mut decisions, &mut rng, &config);
        assert_eq!(decisions.fates[1], WriteFate::Vanishes);
        for (index, fate) in decisions.fates.iter().enumerate().filter(|(i, _)| *i != 1) {
            let WriteFate::Torn(sectors) = fate else {
                panic!("write {index} was not cut: {fate:?}");
            };
            assert!(sectors.contains(&SectorFate::Missing) && missing_is_a_suffix(sectors));
        }
        let mut untouched = point.all_survive();
        let none = CrashConfig {
            cut: 0.0,
            ..CrashConfig::default()
        };
        point.random_cuts(&mut untouched, &mut rng, &none);
        assert_eq!(untouched, point.all_survive());
    });
}

#[test]
fn surviving_writes_may_land_out_of_order() {
    // Proves a reordered crash lets an older write overwrite a newer one, and reports it.
    simulate(4, async {
        let fs = disk_with("a", b"", FsConfig::default());
        let file = fs.open("a").await.unwrap();
        file.write_at(0, b"old").await.unwrap();
        file.write_at(0, b"new").await.unwrap();
        let point = fs.crash_point();
        let mut decisions = point.all_survive();
        assert_eq!(point.materialize(&decisions).0.files["a"], b"new");
        decisions.order = vec![1, 0];
        let (image, faults) = point.materialize(&decisions);
        assert_eq!(image.files["a"], b"old");
        assert_eq!(kinds(&faults), vec![FaultKind::ReorderedWrite]);
    });
}

#[test]
fn lying_fsync_persists_nothing_and_is_recorded() {
    // Proves a lying fsync returns Ok, leaves the durable image unchanged, and a crash loses
    // the write; a later honest sync still persists it.
    simulate(5, async {
        let fs = disk_with(
            "a",
            b"before",
            config_with(FaultConfig {
                lying_fsync: 1.0,
                ..FaultConfig::none()
            }),
        );
        let file = fs.open("a").await.unwrap();
        file.write_at(0, b"after!").await.unwrap();
        file.sync().await.unwrap();
        assert_eq!(fs.durable_image().files["a"], b"before");
        assert_eq!(kinds(&fs.faults()), vec![FaultKind::LyingFsync]);
        assert!(FaultKind::LyingFsync.damages_durable_data());
        let point = fs.crash_point();
        assert!(point.pending[0].acknowledged);
        let (image, faults) = point.materialize(&point.all_vanish());
        assert_eq!(image.files["a"], b"before");
        assert!(faults[0].detail.contains("lying fsync"));

        fs.set_faults_enabled(false);
        file.sync().await.unwrap();
        assert_eq!(fs.durable_image().files["a"], b"after!");
    });
}

#[test]
fn failed_fsync_leaves_out_what_a_lying_fsync_acknowledged() {
    // Proves a failed fsync records as not durable only what the engine was never told was
    // durable: a write an earlier lying fsync acknowledged is that lie's loss, not the
    // failure's (found by the fuzzer: a commit acknowledged by the lying fsync was blamed on
    // the later failure).
    simulate(7, async {
        let fs = disk_with("a", &[0u8; 8], config_with(FaultConfig::none()));
        let file = fs.open("a").await.unwrap();
        file.write_at(0, b"lie").await.unwrap();
        let mut plan = std::collections::BTreeMap::new();
        plan.insert(fs.io_count() + 1, FaultKind::LyingFsync);
        plan.insert(fs.io_count() + 3, FaultKind::FsyncError);
        fs.set_fault_plan(Some(plan));
        file.sync().await.unwrap();
        file.write_at(4, b"fail").await.unwrap();
        assert!(file.sync().await.is_err());
        assert_eq!(
            kinds(&fs.faults())[..2],
            [FaultKind::LyingFsync, FaultKind::FsyncError]
        );
        let failed = fs.failed_syncs();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].unsynced, vec![(4, 8)]);
        assert_eq!(failed[0].len, 8);
    });
}

#[test]
fn fsync_error_returns_err_and_drops_unsynced_writes() {
    // Proves an fsync error is reported and recorded, reads still see every write, and the
    // dropped writes never become durable even after an honest sync (fsyncgate).
    simulate(6, async {
        let config = config_with(FaultConfig {
            fsync_error: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", &[0u8; 20], config);
        let file = fs.open("a").await.unwrap();
        for byte in 0..20u8 {
            file.write_at(u64::from(byte), &[byte + 1]).await.unwrap();
        }
        let written: Vec<u8> = (1..=20).collect();
        assert!(file.sync().await.is_err());
        assert_eq!(kinds(&fs.faults()), vec![FaultKind::FsyncError]);
        assert_eq!(fs.file_bytes("a").unwrap(), written);
        let kept = fs.crash_point().pending.len();
        assert!(kept < 20, "the fault stream dropped none of 20 writes");
        // The record names exactly the dropped bytes; the failed sync every unsynced one.
        let fault = &fs.faults()[0];
        assert_eq!(fault.damaged.len(), 20 - kept);
        assert!(fault.is_damage());
        let kept_bytes: Vec<u64> = fs
            .crash_point()
            .pending
            .iter()
            .map(|pending| pending.op.range().0)
            .collect();
        assert!(fault
            .damaged
            .iter()
            .all(|(start, _)| !kept_bytes.contains(start)));
        let failed = fs.failed_syncs();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].len, failed[0].unsynced.len()), (20, 20));

        fs.set_faults_enabled(false);
        file.sync().await.unwrap();
        let durable = &fs.durable_image().files["a"];
        assert_ne!(durable, &written);
        let landed = durable
            .iter()
            .zip(&written)
            .filter(|(found, wanted)| found == wanted)
            .count();
        assert_eq!(landed, kept);
        assert_eq!(
            fs.file_bytes("a").unwrap(),
            written,
            "reads still see the dropped writes"
        );
    });
}

#[test]
fn misdirected_write_lands_sector_aligned_elsewhere() {
    // Proves a misdirected write returns Ok, leaves its intended range unchanged, and lands
    // whole at another sector-aligned offset of the same file.
    simulate(7, async {
        let config = config_with(FaultConfig {
            misdirected_write: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", &[0x11; 2048], config);
        let file = fs.open("a").await.unwrap();
        file.write_at(512, &[0xee; 512]).await.unwrap();
        let bytes = fs.file_bytes("a").unwrap();
        assert!(
            bytes[512..1024].iter().all(|&byte| byte == 0x11),
            "intended range changed"
        );
        let target = bytes
            .iter()
            .position(|&byte| byte == 0xee)
            .expect("the write landed");
        assert_eq!(target % 512, 0);
        assert_ne!(target, 512);
        assert!(bytes[target..target + 512].iter().all(|&byte| byte == 0xee));
        assert_eq!(bytes.iter().filter(|&&byte| byte == 0xee).count(), 512);
        let faults = fs.faults();
        assert_eq!(kinds(&faults), vec![FaultKind::MisdirectedWrite]);
        assert_eq!(faults[0].detail, format!("landed at offset {target}"));
    });
}

#[test]
fn bit_rot_stays_flipped_on_every_read() {
    // Proves bit rot flips 1 to 8 bits of one durable sector, and every later read (and the
    // durable image) sees the same flipped bytes.
    simulate(8, async {
        let config = config_with(FaultConfig {
            bit_rot: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", &[0u8; 2048], config);
        let file = fs.open("a").await.unwrap();
        let first = read_all(&file).await.unwrap();
        fs.set_faults_enabled(false);
        let faults = fs.faults();
        assert_eq!(kinds(&faults), vec![FaultKind::BitRot]);
        let flipped: u32 = first.iter().map(|byte| byte.count_ones()).sum();
        assert!((1..=8).contains(&flipped), "{flipped} bits flipped");
        let sector = faults[0].offset as usize;
        assert_eq!(sector % 512, 0);
        assert!(first
            .iter()
            .enumerate()
            .all(|(at, &byte)| byte == 0 || (sector..sector + 512).contains(&at)));
        for _ in 0..3 {
            assert_eq!(read_all(&file).await.unwrap(), first);
        }
        assert_eq!(fs.durable_image().files["a"], first);
    });
}

#[test]
fn short_read_returns_at_least_one_byte() {
    // Proves a short read returns between 1 and fewer than asked, and read_exact_at copes.
    simulate(9, async {
        let config = config_with(FaultConfig {
            short_read: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", b"0123456789", config);
        let file = fs.open("a").await.unwrap();
        let mut buf = [0u8; 10];
        let read = file.read_at(0, &mut buf).await.unwrap();
        assert!((1..10).contains(&read));
        assert_eq!(read_all(&file).await.unwrap(), b"0123456789");
        assert!(fs
            .faults()
            .iter()
            .all(|fault| fault.kind == FaultKind::ShortRead));
        assert!(!FaultKind::ShortRead.damages_durable_data());
    });
}

#[test]
fn write_error_and_no_space_write_nothing() {
    // Proves a write error and an out-of-space error write nothing and are recorded.
    simulate(10, async {
        let config = config_with(FaultConfig {
            write_error: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", b"abc", config);
        let file = fs.open("a").await.unwrap();
        assert!(file.write_at(0, b"x").await.is_err());
        assert_eq!(fs.file_bytes("a").unwrap(), b"abc");

        let config = config_with(FaultConfig {
            no_space: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", b"abc", config);
        let file = fs.open("a").await.unwrap();
        file.write_at(0, b"x").await.unwrap();
        let error = file.write_at(3, b"d").await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(fs.file_bytes("a").unwrap(), b"xbc");
        assert_eq!(kinds(&fs.faults()), vec![FaultKind::NoSpace]);
    });
}

#[test]
fn unsynced_create_vanishes_without_sync_dir() {
    // Proves a created and fsynced file vanishes in a crash unless sync_dir ran, and survives
    // with its synced bytes if the create is applied or was made durable.
    simulate(11, async {
        let fs = SimFs::new(FsConfig::default());
        let file = fs.create("new").await.unwrap();
        file.write_at(0, b"data").await.unwrap();
        file.sync().await.unwrap();
        let point = fs.crash_point();
        let (image, faults) = point.materialize(&point.all_vanish());
        assert!(image.files.is_empty());
        assert_eq!(kinds(&faults), vec![FaultKind::UndoneNamespaceOp]);
        assert_eq!(
            point.materialize(&point.all_survive()).0.files["new"],
            b"data"
        );

        fs.sync_dir().await.unwrap();
        let point = fs.crash_point();
        assert!(point.is_settled());
        assert_eq!(
            point.materialize(&point.all_vanish()).0.files["new"],
            b"data"
        );
    });
}

#[test]
fn unsynced_rename_and_remove_are_undone_without_sync_dir() {
    // Proves renames and removes are undone by a crash before sync_dir, applied by one after,
    // and that a write follows its inode across a rename.
    simulate(12, async {
        let mut image = DiskImage::default();
        image.files.insert("a".to_string(), b"A".to_vec());
        image.files.insert("b".to_string(), b"B".to_vec());
        let fs = SimFs::from_image(image.clone(), FsConfig::default());
        let file = fs.open("a").await.unwrap();
        fs.rename("a", "c").await.unwrap();
        fs.remove("b").await.unwrap();
        file.write_at(1, b"!").await.unwrap();
        assert_eq!(fs.list().await.unwrap(), vec!["c".to_string()]);
        let point = fs.crash_point();
        assert_eq!(point.pending[0].file, "c");

        assert_eq!(point.materialize(&point.all_vanish()).0, image);
        let survived = point.materialize(&point.all_survive()).0;
        assert_eq!(survived.files.keys().collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(survived.files["c"], b"A!");
        // Rename undone, write kept: the write lands in the inode under its old name.
        let mut decisions = point.all_survive();
        decisions.namespace_applied = vec![false, true];
        assert_eq!(point.materialize(&decisions).0.files["a"], b"A!");

        fs.sync_dir().await.unwrap();
        let point = fs.crash_point();
        let after = point.materialize(&point.all_vanish()).0;
        assert_eq!(after.files.keys().collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(after.files["c"], b"A");
    });
}

/// A small workload under faults and latency; returns the trace digest and the trace.
async fn workload(seed: u64) -> (u64, Vec<TraceEvent>, CrashPoint) {
    let config = FsConfig {
        faults: FaultConfig {
            write_error: 0.1,
            no_space: 0.1,
            misdirected_write: 0.1,
            lying_fsync: 0.1,
            fsync_error: 0.1,
            short_read: 0.3,
            bit_rot: 0.05,
            latency_min_us: 10,
            latency_max_us: 5_000,
            ..FaultConfig::none()
        },
        fault_seed: seed,
        latency_seed: seed.wrapping_add(1),
        record_trace: true,
    };
    let fs = SimFs::new(config);
    let mut handles = Vec::new();
    for task in 0..3u8 {
        let fs = fs.clone();
        handles.push(madsim::task::spawn(async move {
            let name = format!("file{task}");
            let file = fs.create(&name).await.unwrap();
            for round in 0..20u64 {
                let _ = file.write_at(round * 100, &[task; 700]).await;
                if round % 4 == 0 {
                    let _ = file.sync().await;
                }
                let mut buf = [0u8; 300];
                let _ = file.read_at(round * 50, &mut buf).await;
            }
            let _ = fs.sync_dir().await;
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    (fs.trace_digest(), fs.take_trace(), fs.crash_point())
}

#[test]
fn same_seed_same_trace_and_decisions() {
    // Proves determinism: one seed gives one trace digest, trace and set of crash decisions;
    // another seed gives another.
    let (digest, trace, point) = simulate(13, workload(13));
    let (again, trace_again, point_again) = simulate(13, workload(13));
    assert_eq!(digest, again);
    assert_eq!(trace, trace_again);
    assert!(trace
        .windows(2)
        .all(|pair| pair[0].time_nanos <= pair[1].time_nanos));
    assert!(trace.iter().any(|event| event.fault.is_some()));
    assert_eq!(point, point_again);
    let config = CrashConfig::default();
    let decisions = point.random_decisions(&mut ChaCha8Rng::seed_from_u64(5), &config);
    let decisions_again = point.random_decisions(&mut ChaCha8Rng::seed_from_u64(5), &config);
    assert_eq!(decisions, decisions_again);
    assert_eq!(
        point.materialize(&decisions),
        point.materialize(&decisions_again)
    );

    let (other, _, _) = simulate(14, workload(14));
    assert_ne!(digest, other);
    let other_decisions = point.random_decisions(&mut ChaCha8Rng::seed_from_u64(6), &config);
    assert_ne!(decisions, other_decisions);
}

#[test]
fn random_decisions_always_fit_their_crash_point() {
    // Proves every drawn decision set materializes (no panics) for a crash point with writes,
    // set_lens and namespace operations.
    simulate(15, async {
        let fs = disk_with("a", &[7u8; 3000], FsConfig::default());
        let file = fs.open("a").await.unwrap();
        file.write_at(100, &[1u8; 1500]).await.unwrap();
        file.set_len(1200).await.unwrap();
        let created = fs.create("b").await.unwrap();
        created.write_at(0, &[2u8; 700]).await.unwrap();
        fs.rename("b", "c").await.unwrap();
        file.write_at(5000, &[3u8; 10]).await.unwrap();
        let point = fs.crash_point();
        let config = CrashConfig::default();
        for seed in 0..200 {
            let decisions = point.random_decisions(&mut ChaCha8Rng::seed_from_u64(seed), &config);
            let (image, _) = point.materialize(&decisions);
            assert!(image.files.len() <= 3);
        }
    });
}

#[test]
fn every_call_fails_after_crash() {
    // Proves a crashed disk refuses every call and changes nothing.
    simulate(16, async {
        let fs = disk_with("a", b"abc", FsConfig::default());
        let file = fs.open("a").await.unwrap();
        fs.crash();
        assert!(fs.is_crashed());
        let crashed = |error: std::io::Error| assert_eq!(error.to_string(), "simulated crash");
        crashed(fs.create("b").await.err().unwrap());
        crashed(fs.open("a").await.err().unwrap());
        crashed(fs.remove("a").await.unwrap_err());
        crashed(fs.rename("a", "b").await.unwrap_err());
        crashed(fs.list().await.unwrap_err());
        crashed(fs.sync_dir().await.unwrap_err());
        crashed(file.write_at(0, b"x").await.unwrap_err());
        crashed(file.read_at(0, &mut [0u8; 3]).await.unwrap_err());
        crashed(file.sync().await.unwrap_err());
        crashed(file.len().await.unwrap_err());
        crashed(file.set_len(0).await.unwrap_err());
        assert_eq!(fs.file_bytes("a").unwrap(), b"abc");
        assert_eq!(fs.io_count(), 12);
    });
}

#[test]
fn armed_crash_fires_after_exactly_three_calls() {
    // Proves arm_crash_after_ops(3) lets three calls take effect and crashes right after the
    // third.
    simulate(17, async {
        let fs = SimFs::new(FsConfig::default());
        fs.arm_crash_after_ops(3);
        let file = fs.create("a").await.unwrap();
        file.write_at(0, b"x").await.unwrap();
        assert!(!fs.is_crashed());
        file.sync().await.unwrap();
        assert!(fs.is_crashed());
        assert!(file.write_at(0, b"y").await.is_err());
        let point = fs.crashed_at().unwrap();
        assert_eq!(point.namespace.len(), 1);
        assert!(
            point.pending.is_empty(),
            "the third call, the sync, took effect"
        );
        assert_eq!(point.materialize(&point.all_survive()).0.files["a"], b"x");
    });
}

#[test]
fn faults_off_draws_nothing() {
    // Proves that with faults disabled no fault is injected even at rate 1.
    simulate(18, async {
        let config = config_with(FaultConfig {
            write_error: 1.0,
            lying_fsync: 1.0,
            short_read: 1.0,
            bit_rot: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_with("a", b"abc", config);
        fs.set_faults_enabled(false);
        let file = fs.open("a").await.unwrap();
        file.write_at(0, b"xyz").await.unwrap();
        file.sync().await.unwrap();
        assert_eq!(read_all(&file).await.unwrap(), b"xyz");
        assert!(fs.faults().is_empty());
    });
}

/// A disk holding `files`, all durable.
fn disk_of(files: &[(&str, &[u8])], config: FsConfig) -> SimFs {
    let mut image = DiskImage::default();
    for (name, bytes) in files {
        image.files.insert(name.to_string(), bytes.to_vec());
    }
    SimFs::from_image(image, config)
}

#[test]
fn rot_reaches_files_nobody_reads() {
    // Proves bit rot drawn on reads of one file also lands in the durable bytes of another
    // (a log only recovery reads), and names the file it hit.
    simulate(19, async {
        let config = config_with(FaultConfig {
            bit_rot: 1.0,
            ..FaultConfig::none()
        });
        let fs = disk_of(&[("data", &[0u8; 512]), ("log", &[0u8; 4096])], config);
        let data = fs.open("data").await.unwrap();
        let mut buf = [0u8; 16];
        for _ in 0..40 {
            data.read_at(0, &mut buf).await.unwrap();
        }
        let rotted: std::collections::BTreeSet<String> =
            fs.faults().into_iter().map(|fault| fault.file).collect();
        assert!(rotted.contains("log"), "{rotted:?}");
        let log = &fs.durable_image().files["log"];
        assert!(log.iter().any(|&byte| byte != 0));
        let faults = fs.faults();
        let fault = faults.iter().find(|fault| fault.file == "log").unwrap();
        assert!(fault.is_damage());
        let (start, _) = fault.damaged[0];
        assert_ne!(log[start as usize], 0, "damaged names a flipped byte");
    });
}

#[test]
fn latent_sector_errors_fail_reads_until_rewritten() {
    // Proves a latent sector error fails every read that needs the sector from the platter,
    // even with faults off, survives into a crash image, is masked by an unsynced write
    // over it and is cleared once a rewrite of the sector is durable.
    simulate(20, async {
        let config = FsConfig {
            faults: FaultConfig {
                latent_sector_error: 1.0,
                sector_size_bytes: 4,
                ..FaultConfig::none()
            },
            ..FsConfig::default()
        };
        let fs = disk_of(&[("a", b"abcd")], config);
        let file = fs.open("a").await.unwrap();
        let mut buf = [0u8; 4];
        let error = file.read_at(0, &mut buf).await.unwrap_err();
        assert!(error.to_string().contains("latent sector error"), "{error}");
        assert_eq!(kinds(&fs.faults()), vec![FaultKind::LatentSectorError]);
        fs.set_faults_enabled(false);
        assert!(file.read_at(0, &mut buf).await.is_err(), "it stays");
        let image = fs.durable_image();
        assert_eq!(image.unreadable["a"], [0].into_iter().collect());
        let rebooted = SimFs::from_image(image, FsConfig::default());
        let again = rebooted.open("a").await.unwrap();
        assert!(
            again.read_at(0, &mut buf).await.is_err(),
            "at rest across a crash"
        );
        again.write_at(0, b"wxyz").await.unwrap();
        assert_eq!(
            again.read_at(0, &mut buf).await.unwrap(),
            4,
            "the cache covers it"
        );
        again.sync().await.unwrap();
        assert!(rebooted.durable_image().unreadable.is_empty());
    });
}

#[test]
fn misdirected_reads_return_another_sector_once() {
    // Proves a misdirected read returns the bytes of another sector of the same file (zeros
    // past its end), names the range it corrupted, and leaves the disk as it was.
    simulate(21, async {
        let config = config_with(FaultConfig {
            misdirected_read: 1.0,
            sector_size_bytes: 4,
            ..FaultConfig::none()
        });
        let fs = disk_of(&[("a", b"aaaabbbbcccc")], config);
        let file = fs.open("a").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(file.read_at(4, &mut buf).await.unwrap(), 4);
        assert_ne!(&buf, b"bbbb");
        assert!([*b"aaaa", *b"cccc", [0; 4]].contains(&buf), "{buf:?}");
        let fault = &fs.faults()[0];
        assert_eq!(fault.kind, FaultKind::MisdirectedRead);
        assert_eq!(fault.damaged, vec![(4, 8)]);
        assert!(fault.explains_reads() && !fault.is_damage());
        assert_eq!(fs.durable_image().files["a"], b"aaaabbbbcccc");
    });
}

#[test]
fn a_reads_scope_draws_only_read_faults_from_its_own_stream() {
    // Proves the recovery scope injects read faults but no write or sync faults, and draws
    // from a stream of its own: the faults of a later full scope are those it would have had.
    simulate(22, async {
        let faults = FaultConfig {
            write_error: 0.5,
            short_read: 0.5,
            ..FaultConfig::none()
        };
        let mut later = Vec::new();
        for reads_first in [true, false] {
            let fs = disk_of(&[("a", &[7u8; 64])], config_with(faults.clone()));
            let file = fs.open("a").await.unwrap();
            let mut buf = [0u8; 64];
            if reads_first {
                fs.set_fault_scope(FaultScope::Reads);
                for _ in 0..8 {
                    file.read_at(0, &mut buf).await.unwrap();
                }
                for _ in 0..8 {
                    assert!(file.write_at(0, b"x").await.is_ok(), "no write faults");
                }
                assert!(fs.faults().iter().all(|fault| fault.kind.hits_reads()));
                assert!(!fs.faults().is_empty());
                fs.set_fault_scope(FaultScope::All);
            }
            let before = fs.faults().len();
            for _ in 0..8 {
                let _ = file.read_at(0, &mut buf).await;
                let _ = file.write_at(0, b"y").await;
            }
            let shown: Vec<(FaultKind, String)> = fs.faults()[before..]
                .iter()
                .map(|fault| (fault.kind, fault.detail.clone()))
                .collect();
            later.push(shown);
        }
        assert!(!later[1].is_empty());
        assert_eq!(later[0], later[1]);
    });
}
