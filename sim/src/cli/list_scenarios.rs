//! `crashpoint list-scenarios`: every scenario in the scenario directory, with whether a
//! scenario-less `run` includes it and what it is for.

use super::{shown_path, EXIT_SUCCESS};
use crate::scenario::{default_directory, Scenario, SCENARIO_DIRECTORY_VARIABLE};

pub fn list_scenarios() -> anyhow::Result<i32> {
    let directory = default_directory();
    let scenarios = Scenario::all(&directory)?;
    let width = scenarios
        .iter()
        .map(|scenario| scenario.name.len())
        .max()
        .unwrap_or(0)
        .max("name".len());
    println!("{:<width$}  default  description", "name");
    for scenario in &scenarios {
        let default = if scenario.default { "yes" } else { "no" };
        println!(
            "{:<width$}  {default:<7}  {}",
            scenario.name, scenario.description
        );
    }
    println!(
        "({} scenarios in the directory {}; {SCENARIO_DIRECTORY_VARIABLE} names another)",
        scenarios.len(),
        shown_path(&directory).display()
    );
    Ok(EXIT_SUCCESS)
}
