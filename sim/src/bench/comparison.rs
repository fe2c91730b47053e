//! Engine against SQLite on one transactional workload on the real filesystem: crashpoint with
//! instant and group commit (per strategy), SQLite in WAL mode with `synchronous=FULL` and
//! `NORMAL`, each with 1 and 4 concurrent committers. Every configuration runs the same drawn
//! transactions, in a fresh directory, `repetitions` times; the row holds medians.

use std::path::Path;

use crashpoint::{Strategy, SyncMode};

use super::real_engine::{
    comparison_options, comparison_workload, draw_transactions, run_committers, CommitRun,
};
use super::sqlite::{run_sqlite, Synchronous};
use super::stats::{median, percentile};

/// The system under test in one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Crashpoint(Strategy, SyncMode),
    Sqlite(Synchronous),
}

impl System {
    pub fn name(self) -> String {
        match self {
            System::Crashpoint(strategy, SyncMode::Periodic) => {
                format!("crashpoint {} group commit", strategy.name())
            }
            System::Crashpoint(strategy, mode) => {
                format!("crashpoint {} {mode:?}", strategy.name()).to_lowercase()
            }
            System::Sqlite(synchronous) => format!("SQLite WAL synchronous={}", synchronous.name()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    pub system: System,
    pub clients: u32,
    pub commits_per_second: f64,
    pub p99_latency_us: f64,
}

pub fn systems(strategies: &[Strategy]) -> Vec<System> {
    let mut systems = Vec::new();
    for &strategy in strategies {
        systems.push(System::Crashpoint(strategy, SyncMode::Instant));
        systems.push(System::Crashpoint(strategy, SyncMode::Periodic));
    }
    systems.push(System::Sqlite(Synchronous::Full));
    systems.push(System::Sqlite(Synchronous::Normal));
    systems
}

/// Measures every system with 1 and 4 clients, `commits_per_client` commits each.
pub fn measure(
    directory: &Path,
    strategies: &[Strategy],
    commits_per_client: u32,
    repetitions: usize,
) -> anyhow::Result<Vec<Row>> {
    let workload = comparison_workload();
    let mut rows = Vec::new();
    for clients in [1u32, 4] {
        let transactions = draw_transactions(&workload, 12, clients, commits_per_client);
        for system in systems(strategies) {
            let mut rates = Vec::new();
            let mut latencies = Vec::new();
            for repetition in 0..repetitions {
                let path = directory.join(format!("compare-{clients}-{repetition}"));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path)?;
                let run: CommitRun = match system {
                    System::Crashpoint(strategy, mode) => {
                        run_committers(&path, comparison_options(strategy, mode), &transactions)?
                    }
                    System::Sqlite(synchronous) => run_sqlite(&path, synchronous, &transactions)?,
                };
                rates.push(run.commits_per_second());
                latencies.push(percentile(&run.latencies_us, 99.0));
                let _ = std::fs::remove_dir_all(&path);
            }
            rows.push(Row {
                system,
                clients,
                commits_per_second: median(&rates),
                p99_latency_us: median(&latencies),
            });
        }
    }
    Ok(rows)
}
