//! What the harness found in our own engine and is not fixed yet, kept as tests that show the
//! failure is still caught (so a fix turns each into a pass to assert instead).
//!
//! Open bug, found by the CI soak on 2026-12-03 (`rot-at-rest`, sharp, seed
//! 3436828806163881970, 1 of 25,228 random seeds): a torn header write can resurrect the header
//! of a checkpoint that never finished.
//! - Crash 0 tears checkpoint 2's header write into slot 0: recovery rejects the slot
//!   (checksum mismatch) and uses checkpoint 1 in slot 1, rightly. Checkpoint 2's blocks (its
//!   translation at offset 13824) are free again.
//! - The recovered engine numbers its next checkpoint 2 as well and reuses those blocks: an
//!   evicted page, then the new translation, land at 13824 and are synced.
//! - Crash 1 tears the new checkpoint 2's header write into slot 0 again. The sectors it
//!   landed are the ones the first tear had not, and they hold the same bytes in both
//!   headers, so slot 0 now holds the first checkpoint 2's header whole, with a valid checksum,
//!   pointing at a translation that was overwritten: recovery reports the translation's
//!   checksum mismatch and opens nothing, though checkpoint 1 and the log from it are intact.
//!
//! The oracle cannot excuse it (no fault damaged data at rest: two torn unsynced writes). A fix
//! needs both sides: the engine must not let an abandoned checkpoint's header come back (a
//! header that names the recovery it follows, or a slot rewritten whole before it is reused),
//! or must fall back to the older slot when the newer one's structures fail their checksums
//! and the log still reaches back; and the oracle's anchor rule must drop the anchor writes of
//! a checkpoint a recovery abandoned. The CI soak runs from a fixed seed until it is fixed.

use std::path::PathBuf;

use crashpoint::Strategy;
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::outcome::FailureKind;
use crashpoint_sim::scenario::Scenario;

#[test]
fn a_torn_header_can_resurrect_an_abandoned_checkpoint() {
    // Proves the open bug above is still caught, as unexcused corruption after the second
    // crash, with no damage at rest injected.
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenario = Scenario::resolve("rot-at-rest", &directory)
        .expect("scenario loads")
        .with_strategy(Strategy::Sharp)
        .expect("takes the strategy");
    let seed = 3_436_828_806_163_881_970;
    let outcome = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
    let failure = outcome.failure.expect("the finding still fails");
    assert_eq!(failure.kind, FailureKind::UnexcusedCorruption);
    assert_eq!(failure.crash_index, Some(1));
    assert!(
        failure.message.contains("block translation table"),
        "{}",
        failure.message
    );
    assert_eq!(outcome.faults.get("bit-rot"), None, "{:?}", outcome.faults);
}
