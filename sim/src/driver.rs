//! Runs one seed of a scenario. (Being written by the lead; this stub fixes the signature.)

use crate::outcome::SeedOutcome;
use crate::scenario::Scenario;

/// How to run a seed beyond what the scenario says.
#[derive(Clone, Debug, Default)]
pub struct SeedOptions {
    /// Keep the full I/O trace (for `replay --trace`).
    pub record_trace: bool,
    /// A planted bug to enable (engine built with the `canary` feature), by name.
    pub canary: Option<String>,
}

pub fn run_seed(scenario: &Scenario, seed: u64, options: &SeedOptions) -> SeedOutcome {
    let _ = (options,);
    SeedOutcome {
        scenario: scenario.name.clone(),
        seed,
        ..SeedOutcome::default()
    }
}
