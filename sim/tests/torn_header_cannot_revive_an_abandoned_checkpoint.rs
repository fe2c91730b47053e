//! A torn header write cannot bring back the header of a checkpoint a crash abandoned.
//!
//! Found by the CI soak on 2026-12-03 (`rot-at-rest`, sharp, seed 3436828806163881970, 1 of
//! 25,228 random seeds), with 128-byte sectors and a 512-byte header slot:
//! - Crash 0 tore checkpoint 2's header write into slot 0 (sectors new, garbage, new, new):
//!   recovery rejected the slot and used checkpoint 1 in slot 1, rightly, and the blocks of
//!   checkpoint 2 were free again.
//! - The recovered engine numbered its next checkpoint 2 as well and reused those blocks.
//! - Crash 1 tore the new header write into slot 0 (old, new, new, old). The two sectors that
//!   landed were zero padding, the same in both headers, so they repaired the garbage and slot
//!   0 held the first checkpoint 2's header whole, pointing at a translation since overwritten.
//!
//! The engine now fills a slot's padding with a stream drawn from its fields, so two headers
//! differ in every sector and no tear can complete an older one. The oracle needs no change:
//! it decides the durable checkpoint from the bytes that stand, and a mix of two headers is no
//! header's bytes.

use std::path::PathBuf;

use crashpoint::Strategy;
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::scenario::Scenario;

fn rot_at_rest(strategy: Strategy) -> Scenario {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::resolve("rot-at-rest", &directory)
        .expect("scenario loads")
        .with_strategy(strategy)
        .expect("takes the strategy")
}

#[test]
fn the_seed_that_revived_an_abandoned_header_now_passes() {
    // Proves the finding is fixed: the same torn writes, and recovery uses checkpoint 1 with
    // its log and matches the model after both crashes.
    let seed = 3_436_828_806_163_881_970;
    let outcome = run_seed(
        &rot_at_rest(Strategy::Sharp).for_seed(seed),
        seed,
        &SeedOptions::default(),
    );
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert!(outcome.recoveries >= 2, "{}", outcome.recoveries);
    assert!(
        outcome.faults.get("torn-write") >= Some(&2),
        "{:?}",
        outcome.faults
    );
}
