//! The benchmark report: markdown tables for each part, the targets with how far each is met
//! or missed, and the growth plots as SVG files beside it.

use std::fmt::Write as _;
use std::path::Path;

use crashpoint::SyncMode;

use super::comparison::{Row, System};
use super::growth::Series;
use super::machine::Machine;
use super::realcrash::SessionFigures;
use super::simulator::SimulatorFigures;
use super::sqlite::Synchronous;
use super::stats::{ratio, show_ratio, LINEAR_R_SQUARED_MIN};
use super::svg::Plot;
use super::Sizes;

/// The simulator must check at least this many times more crash states per second than
/// real-process crash testing.
pub const SIMULATOR_RATIO_TARGET: f64 = 100.0;

pub struct Report {
    pub sizes: Sizes,
    pub machine: Machine,
    pub scenario: String,
    pub simulator: Vec<SimulatorFigures>,
    pub peak_memory_kib: u64,
    pub realcrash: Vec<SessionFigures>,
    pub comparison: Vec<Row>,
    pub recovery: Vec<Series>,
    pub checkpoint: Vec<Series>,
}

/// One target: what it asks, what was measured, and the verdict in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub verdict: String,
}

/// "met" or "missed by N%" for a ratio that must reach `goal`.
pub fn ratio_verdict(value: Option<f64>, goal: f64) -> String {
    match value {
        None => "not measured".to_string(),
        Some(value) if value >= goal => format!(
            "met ({} of {})",
            show_ratio(Some(value)),
            show_ratio(Some(goal))
        ),
        Some(value) => format!(
            "missed by {:.0}% ({} of {}; {} short)",
            (1.0 - value / goal) * 100.0,
            show_ratio(Some(value)),
            show_ratio(Some(goal)),
            show_ratio(Some(goal / value))
        ),
    }
}

/// "linear" or "missed" for a series' fit.
pub fn linear_verdict(series: &Series) -> String {
    match series.fit {
        None => "not measured".to_string(),
        Some(fit) if fit.r_squared >= LINEAR_R_SQUARED_MIN => {
            format!("met (R² {:.3} ≥ {LINEAR_R_SQUARED_MIN})", fit.r_squared)
        }
        Some(fit) => format!(
            "missed by {:.3} (R² {:.3} < {LINEAR_R_SQUARED_MIN})",
            LINEAR_R_SQUARED_MIN - fit.r_squared,
            fit.r_squared
        ),
    }
}

impl Report {
    fn rate(&self, system: System, clients: u32) -> Option<f64> {
        self.comparison
            .iter()
            .find(|row| row.system == system && row.clients == clients)
            .map(|row| row.commits_per_second)
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        for simulated in &self.simulator {
            let real = self
                .realcrash
                .iter()
                .find(|session| session.strategy == simulated.strategy);
            // `run` checks a few crash states per seed; `explore` checks every state of a
            // seed's checkpoint windows. Both are the simulator's checks, so both are shown.
            for (mode, rate) in [
                ("run", simulated.checks_per_second),
                ("explore", simulated.explore_states_per_second),
            ] {
                let value = real.and_then(|real| ratio(rate, real.checks_per_second()));
                targets.push(Target {
                    name: format!(
                        "simulator {mode} ≥ 100x realcrash checks/s ({})",
                        simulated.strategy
                    ),
                    measured: show_ratio(value),
                    verdict: ratio_verdict(value, SIMULATOR_RATIO_TARGET),
                });
            }
        }
        for row in &self.comparison {
            let System::Crashpoint(strategy, SyncMode::Periodic) = row.system else {
                continue;
            };
            let sqlite = self.rate(System::Sqlite(Synchronous::Normal), row.clients);
            let value = sqlite.and_then(|sqlite| ratio(row.commits_per_second, sqlite));
            targets.push(Target {
                name: format!(
                    "group commit ≥ SQLite WAL NORMAL commits/s ({}, {} clients)",
                    strategy.name(),
                    row.clients
                ),
                measured: show_ratio(value),
                verdict: ratio_verdict(value, 1.0),
            });
        }
        for (kind, list) in [
            ("recovery time linear in redo", &self.recovery),
            ("checkpoint time linear in dirty pages", &self.checkpoint),
        ] {
            for series in list {
                targets.push(Target {
                    name: format!("{kind} ({})", series.strategy),
                    measured: series
                        .fit
                        .map_or("n/a".to_string(), |fit| format!("R² {:.3}", fit.r_squared)),
                    verdict: linear_verdict(series),
                });
            }
        }
        targets
    }

    /// The ratios, one line each, for the terminal.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "machine: {}", self.machine.line());
        for target in self.targets() {
            let _ = writeln!(
                text,
                "{:<70} {:>10}  {}",
                target.name, target.measured, target.verdict
            );
        }
        text
    }

    pub fn markdown(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "# crashpoint bench ({})\n", self.sizes.name);
        let _ = writeln!(text, "Machine: {}.\n", self.machine.line());
        let _ = writeln!(
            text,
            "Medians of {} runs per measurement; ratios compare runs of one invocation.\n",
            self.sizes.repetitions
        );
        self.simulator_section(&mut text);
        self.realcrash_section(&mut text);
        self.comparison_section(&mut text);
        self.growth_section(&mut text);
        let _ = writeln!(text, "## Targets\n");
        let _ = writeln!(text, "| target | measured | verdict |\n|---|---:|---|");
        for target in self.targets() {
            let _ = writeln!(
                text,
                "| {} | {} | {} |",
                target.name, target.measured, target.verdict
            );
        }
        text
    }

    fn simulator_section(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "## 1. Simulator throughput (`{}`, one thread)\n\n\
             `run`: crash-recover-check cycles per second over {} seeds; `explore`: crash states \
             per second of seed 1 (at most {}); floor: the bare reference model replaying the \
             same commits and comparing. Peak resident memory: {} MiB.\n",
            self.scenario,
            self.sizes.simulator_seeds,
            self.sizes.explore_states,
            self.peak_memory_kib / 1024
        );
        let _ = writeln!(
            text,
            "| strategy | run checks/s | explore states/s | floor checks/s | harness overhead | failed seeds |\n|---|---:|---:|---:|---:|---:|"
        );
        for figures in &self.simulator {
            let _ = writeln!(
                text,
                "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
                figures.strategy,
                figures.checks_per_second,
                figures.explore_states_per_second,
                figures.floor_checks_per_second,
                show_ratio(ratio(
                    figures.floor_checks_per_second,
                    figures.checks_per_second
                )),
                figures.failed_seeds
            );
        }
        text.push('\n');
    }

    fn realcrash_section(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "## 2. Real-process crash testing of the same engine (`crashpoint realcrash`)\n\n\
             A child process on the real filesystem, killed with SIGKILL at a random moment or \
             held inside a checkpoint step (half the kills each; a child runs at most 50 ms \
             before a random kill); the parent recovers and checks every acknowledged commit \
             and the prefix rule. Parent and child are two processes, so this side may use two \
             cores where the simulator uses one.\n"
        );
        let _ = writeln!(
            text,
            "| strategy | kills checked | inside a checkpoint | acknowledged commits | checks/s | simulator run / realcrash | simulator explore / realcrash | failure |\n|---|---:|---:|---:|---:|---:|---:|---|"
        );
        for session in &self.realcrash {
            let simulated = self
                .simulator
                .iter()
                .find(|figures| figures.strategy == session.strategy);
            let versus = |rate: Option<f64>| {
                show_ratio(rate.and_then(|rate| ratio(rate, session.checks_per_second())))
            };
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {} |",
                session.strategy,
                session.checks,
                session.kills_inside_checkpoint,
                session.acknowledged,
                session.checks_per_second(),
                versus(simulated.map(|figures| figures.checks_per_second)),
                versus(simulated.map(|figures| figures.explore_states_per_second)),
                session.failure.as_deref().unwrap_or("none")
            );
        }
        text.push('\n');
    }

    fn comparison_section(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "## 3. Engine against SQLite (real filesystem)\n\n\
             The same drawn transactions (1 to 4 writes of 16 to 128 bytes over 10,000 keys) for \
             every system; {} commits per client. Ratios are to SQLite WAL `synchronous=NORMAL` \
             with as many clients.\n",
            self.sizes.commits_per_client
        );
        let _ = writeln!(
            text,
            "| system | clients | commits/s | p99 commit latency (ms) | vs SQLite NORMAL | vs SQLite FULL |\n|---|---:|---:|---:|---:|---:|"
        );
        for row in &self.comparison {
            let normal = self.rate(System::Sqlite(Synchronous::Normal), row.clients);
            let full = self.rate(System::Sqlite(Synchronous::Full), row.clients);
            let _ = writeln!(
                text,
                "| {} | {} | {:.0} | {:.2} | {} | {} |",
                row.system.name(),
                row.clients,
                row.commits_per_second,
                row.p99_latency_us / 1000.0,
                show_ratio(normal.and_then(|rate| ratio(row.commits_per_second, rate))),
                show_ratio(full.and_then(|rate| ratio(row.commits_per_second, rate))),
            );
        }
        let _ = writeln!(
            text,
            "\nSQLite's `NORMAL` in WAL mode does not fsync at commit (only at WAL checkpoints): \
             its commits survive a process crash but not a power loss. crashpoint's instant and \
             group commit return only after an fsync covers the commit.\n"
        );
    }

    fn growth_section(&self, text: &mut String) {
        let _ = writeln!(text, "## 4. How cost grows\n");
        for (title, unit, list, prefix) in [
            (
                "Recovery time against redo since the checkpoint",
                "redo KiB",
                &self.recovery,
                "recovery",
            ),
            (
                "Checkpoint time against dirty pages written",
                "pages",
                &self.checkpoint,
                "checkpoint",
            ),
        ] {
            let _ = writeln!(text, "### {title}\n");
            let _ = writeln!(text, "| strategy | points ({unit}, ms) | ms per 1000 {unit} | R² | plot |\n|---|---|---:|---:|---|");
            for series in list {
                let points: Vec<String> = series
                    .points
                    .iter()
                    .map(|(x, y)| format!("({x:.0}, {y:.1})"))
                    .collect();
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} | [{prefix}-{}.svg]({prefix}-{}.svg) |",
                    series.strategy,
                    points.join(" "),
                    series.fit.map_or("n/a".to_string(), |fit| format!(
                        "{:.2}",
                        fit.slope * 1000.0
                    )),
                    series
                        .fit
                        .map_or("n/a".to_string(), |fit| format!("{:.3}", fit.r_squared)),
                    series.strategy,
                    series.strategy
                );
            }
            text.push('\n');
        }
    }

    /// Writes `report.md` and the plots into `out`.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("report.md"), self.markdown())?;
        for (list, prefix, x_label) in [
            (
                &self.recovery,
                "recovery",
                "redo since the checkpoint (KiB)",
            ),
            (&self.checkpoint, "checkpoint", "pages the checkpoint wrote"),
        ] {
            for series in list {
                let title = format!("{prefix} time, {}", series.strategy);
                let svg = Plot {
                    title: &title,
                    x_label,
                    y_label: "milliseconds",
                    points: &series.points,
                    fit: series.fit,
                }
                .render();
                std::fs::write(out.join(format!("{prefix}-{}.svg", series.strategy)), svg)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::linear_fit;

    #[test]
    fn a_missed_ratio_says_by_how_much() {
        // Proves the verdict of a missed target names the shortfall and a met one says so.
        assert_eq!(
            ratio_verdict(Some(50.0), 100.0),
            "missed by 50% (50.0x of 100x; 2.00x short)"
        );
        assert!(ratio_verdict(Some(150.0), 100.0).starts_with("met"));
        assert_eq!(ratio_verdict(None, 1.0), "not measured");
    }

    #[test]
    fn linearity_is_judged_by_r_squared() {
        // Proves a straight series meets the linearity target and a steep curve misses it.
        let line: Vec<(f64, f64)> = (0..6).map(|x| (x as f64, 2.0 * x as f64 + 1.0)).collect();
        let straight = Series {
            strategy: "sharp".into(),
            fit: linear_fit(&line),
            points: line,
        };
        assert!(linear_verdict(&straight).starts_with("met"));
        let curve: Vec<(f64, f64)> = (0..6).map(|x| (x as f64, 10f64.powi(x))).collect();
        let bent = Series {
            strategy: "sharp".into(),
            fit: linear_fit(&curve),
            points: curve,
        };
        assert!(linear_verdict(&bent).starts_with("missed by"));
    }
}
