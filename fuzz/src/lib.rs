//! Shared code of the fuzz targets in `fuzz_targets/`, which stay thin: bounded `Arbitrary`
//! types, the `recover_image` input and its oracle, and the simulator plan of `sim_structured`
//! and `sim_canary`.

pub mod bounded;
pub mod image;
pub mod plan;
