//! The canary: sim_structured with the planted `ignore-pending-bit` bug, the sharp strategy it
//! lives in, and no-sync commits.
//! It must crash within seconds; if it cannot, the fuzz oracle cannot fail and is broken.
//! Built only with `--features canary`.
#![no_main]

use crashpoint_fuzz::bounded::{AnyLength, Bounded};
use crashpoint_fuzz::plan::{run, Plan, SyncModePlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|plan: AnyLength<Plan>| {
    let mut plan = plan.0;
    plan.engine.sync_mode = SyncModePlan::NoSync;
    plan.engine.strategy = Bounded::new(0);
    run(&plan, "sim_canary", Some("ignore-pending-bit"));
});
