//! Fuzzes the whole engine through the simulator: a bounded plan (seed, workload, engine
//! settings, fault rates, crash mode) runs one seed, and any failed check against the model is
//! a crash. See `crashpoint_fuzz::plan`.
#![no_main]

use crashpoint_fuzz::bounded::AnyLength;
use crashpoint_fuzz::plan::{run, Plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|plan: AnyLength<Plan>| run(&plan.0, "sim_structured", None));
