//! What testing redb found, kept as tests that document upstream behaviour.
//!
//! Finding (expected: outside redb's documented assumptions). When a crash tears redb's header
//! write and one of its sectors holds garbage, as on a disk whose sector writes are not atomic,
//! redb refuses the whole database ("Not a redb database: magic number mismatch", "Both commit
//! slots are corrupted", "Expected file format version <= 3, found N") instead of falling back to
//! the older commit slot. redb rewrites the magic number, the god byte and both commit slots in
//! one header write and relies on single-byte writes being atomic (docs/design.md, "Assumptions
//! about underlying media", 1), so under that assumption the unchanged bytes read back as they
//! were. The redb scenarios therefore tear without garbage (`garbage = false`), where 10,500
//! seeds pass; this test shows the same scenario with garbage sectors does fail, and how.
//! The case kept is the first failing seed; `shrink --scenario <file> --seed <seed>` cuts it to
//! a short story for a report upstream.
//!
//! Finding (expected: redb promises nothing about rot). A release build of redb can panic on a
//! page whose bits rotted ("range end index 2099578 out of range for slice of length 4096",
//! redb-bit-rot seed 2237, 9 of 1,500 seeds) instead of returning `StorageError::Corrupted`; the
//! subject driver excuses a panic after faults outside the promise and logs it.

mod common;

use std::path::Path;

use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::outcome::FailureKind;
use crashpoint_sim::scenario::Scenario;

#[test]
fn redb_refuses_its_database_when_a_torn_header_holds_garbage() {
    // Proves the finding above: some seed fails within 50, at recovery, with redb reporting its
    // header unreadable; the same seed passes when torn sectors are only old or new.
    let scenario = Scenario::parse(
        common::REDB_TORN_WITH_GARBAGE,
        Path::new("redb-torn-garbage.toml"),
    )
    .unwrap();
    let (seed, failure) = (0..50)
        .find_map(|seed| {
            run_seed(&scenario, seed, &SeedOptions::default())
                .failure
                .map(|failure| (seed, failure))
        })
        .expect("a garbage-torn header fails some seed within 50");
    assert_eq!(
        failure.kind,
        FailureKind::UnexcusedCorruption,
        "{failure:?}"
    );
    let header = ["magic number", "commit slots", "file format version"];
    assert!(
        header.iter().any(|words| failure.message.contains(words)),
        "seed {seed}: {}",
        failure.message
    );
    let without_garbage = Scenario::parse(
        &common::REDB_TORN_WITH_GARBAGE.replace("garbage = true", "garbage = false"),
        Path::new("redb-torn.toml"),
    )
    .unwrap();
    let outcome = run_seed(&without_garbage, seed, &SeedOptions::default());
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
}
