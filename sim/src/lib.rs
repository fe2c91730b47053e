//! crashpoint-sim: deterministic simulation and fault injection for the crashpoint engine.
//!
//! `fs` is the simulated disk, `scenario` the scenario files, `driver` runs one seed (workload,
//! crashes, recovery, checks against `model`), `cli` is the `crashpoint` command line.

pub mod bench;
pub mod chrome_trace;
pub mod cli;
pub mod driver;
pub mod explore;
pub mod fs;
pub mod hub;
pub mod junit;
pub mod log_names;
pub mod measures;
pub mod model;
pub mod oracle;
pub mod outcome;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod shrink;
pub mod subjects;
pub mod workload;
