//! Shrinking a failing seed to a small, replayable case.
//!
//! The failing run is recorded as an explicit [`Schedule`] (client operations with think times,
//! faults by disk call, crash triggers and fates) and replayed once to confirm it reproduces the
//! failure. Then decisions are removed and simplified, delta-debugging style, keeping each
//! change only while the same kind of check still fails: whole crash phases, the quiet phase's
//! work, whole clients, operations, writes within a commit, faults, think times, value lengths,
//! and crash fates (everything vanishes, or everything survives). The result is a scenario file
//! plus its schedule that replays deterministically with `replay`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::driver::{run_seed_full, SeedOptions};
use crate::outcome::{Failure, FailureKind};
use crate::scenario::Scenario;
use crate::schedule::{Fates, Operation, Schedule, ScheduleSize};

/// Replays a shrink may spend by default.
pub const RUNS_DEFAULT: u64 = 4000;

#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("seed {seed} of {scenario} passes: there is nothing to shrink")]
    Passes { scenario: String, seed: u64 },
    #[error("the recorded schedule of seed {seed} did not reproduce its {expected} failure (replay gave {found})")]
    NotReproduced {
        seed: u64,
        expected: &'static str,
        found: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rendering the shrunk scenario: {0}")]
    Render(String),
}

/// What a shrink did.
#[derive(Debug)]
pub struct Shrunk {
    pub failure: Failure,
    pub schedule: Schedule,
    pub before: ScheduleSize,
    pub after: ScheduleSize,
    pub io_before: u64,
    pub io_after: u64,
    /// Replays spent.
    pub runs: usize,
}

struct Search<'a> {
    scenario: &'a Scenario,
    seed: u64,
    canary: Option<String>,
    kind: FailureKind,
    runs: usize,
    budget: usize,
}

impl Search<'_> {
    /// Replays `schedule`; true if it fails with the kind being shrunk.
    fn fails(&mut self, schedule: &Schedule) -> bool {
        if self.runs >= self.budget {
            return false;
        }
        self.runs += 1;
        let outcome = self.replay(schedule).outcome;
        outcome
            .failure
            .is_some_and(|failure| failure.kind == self.kind)
    }

    fn replay(&self, schedule: &Schedule) -> crate::driver::SeedRun {
        let options = SeedOptions {
            canary: self.canary.clone(),
            schedule: Some(Arc::new(schedule.clone())),
            ..SeedOptions::default()
        };
        run_seed_full(self.scenario, self.seed, &options)
    }

    fn exhausted(&self) -> bool {
        self.runs >= self.budget
    }
}

/// Removes as many items as possible while `fails` holds (ddmin: chunks halve until single
/// items, and every accepted removal restarts at coarser chunks).
fn minimize<T: Clone>(items: Vec<T>, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    if items.is_empty() {
        return items;
    }
    if fails(&[]) {
        return Vec::new();
    }
    let mut items = items;
    let mut chunks = 2usize;
    // Each pass either removes at least one item or doubles the chunk count up to the item
    // count, so it ends after O(n log n) passes.
    while items.len() >= 2 {
        let size = items.len().div_ceil(chunks).max(1);
        let mut removed = false;
        let mut start = 0;
        while start < items.len() {
            let end = (start + size).min(items.len());
            let candidate: Vec<T> = items[..start]
                .iter()
                .chain(&items[end..])
                .cloned()
                .collect();
            if fails(&candidate) {
                items = candidate;
                removed = true;
                chunks = (chunks - 1).max(2);
                break;
            }
            start = end;
        }
        if !removed {
            if size == 1 {
                break;
            }
            chunks = (chunks * 2).min(items.len());
        }
    }
    items
}

pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    canary: Option<String>,
    budget: usize,
) -> Result<Shrunk, ShrinkError> {
    let scenario = scenario.for_seed(seed);
    let recording = SeedOptions {
        canary: canary.clone(),
        record_schedule: true,
        ..SeedOptions::default()
    };
    let original = run_seed_full(&scenario, seed, &recording);
    let Some(failure) = original.outcome.failure.clone() else {
        return Err(ShrinkError::Passes {
            scenario: scenario.name.clone(),
            seed,
        });
    };
    let mut schedule = original.schedule.clone().unwrap_or_default();
    let mut search = Search {
        scenario: &scenario,
        seed,
        canary,
        kind: failure.kind,
        runs: 0,
        budget,
    };
    if !search.fails(&schedule) {
        let found = search
            .replay(&schedule)
            .outcome
            .failure
            .map_or("a pass".to_string(), |f| f.kind.name().to_string());
        return Err(ShrinkError::NotReproduced {
            seed,
            expected: failure.kind.name(),
            found,
        });
    }
    let before = schedule.size();

    // Passes repeat until one changes nothing (or the budget runs out).
    loop {
        let start = schedule.clone();
        shrink_phases(&mut search, &mut schedule);
        shrink_quiet(&mut search, &mut schedule);
        shrink_clients(&mut search, &mut schedule);
        pin_rot_to_the_disk(&mut search, &mut schedule);
        shrink_faults(&mut search, &mut schedule);
        simplify_operations(&mut search, &mut schedule);
        simplify_fates(&mut search, &mut schedule);
        if schedule == start || search.exhausted() {
            break;
        }
    }

    let last = search.replay(&schedule);
    let failure = last.outcome.failure.clone().unwrap_or(failure);
    Ok(Shrunk {
        failure,
        after: schedule.size(),
        schedule,
        before,
        io_before: original.outcome.io_ops,
        io_after: last.outcome.io_ops,
        runs: search.runs,
    })
}

fn shrink_phases(search: &mut Search<'_>, schedule: &mut Schedule) {
    let phases = minimize(schedule.phases.clone(), |phases| {
        !phases.is_empty()
            && search.fails(&Schedule {
                phases: phases.to_vec(),
                ..schedule.clone()
            })
    });
    schedule.phases = phases;
}

fn shrink_quiet(search: &mut Search<'_>, schedule: &mut Schedule) {
    let quiet = minimize(schedule.quiet.clone(), |quiet| {
        search.fails(&Schedule {
            quiet: quiet.to_vec(),
            ..schedule.clone()
        })
    });
    schedule.quiet = quiet;
    for client in 0..schedule.quiet.len() {
        let operations = minimize(schedule.quiet[client].clone(), |operations| {
            let mut candidate = schedule.clone();
            candidate.quiet[client] = operations.to_vec();
            search.fails(&candidate)
        });
        schedule.quiet[client] = operations;
    }
}

fn shrink_clients(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        let clients = minimize(schedule.phases[phase].clients.clone(), |clients| {
            let mut candidate = schedule.clone();
            candidate.phases[phase].clients = clients.to_vec();
            search.fails(&candidate)
        });
        schedule.phases[phase].clients = clients;
        for client in 0..schedule.phases[phase].clients.len() {
            let operations = minimize(
                schedule.phases[phase].clients[client].clone(),
                |operations| {
                    let mut candidate = schedule.clone();
                    candidate.phases[phase].clients[client] = operations.to_vec();
                    search.fails(&candidate)
                },
            );
            schedule.phases[phase].clients[client] = operations;
        }
    }
}

fn shrink_faults(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        let faults = minimize(schedule.phases[phase].faults.clone(), |faults| {
            let mut candidate = schedule.clone();
            candidate.phases[phase].faults = faults.to_vec();
            search.fails(&candidate)
        });
        schedule.phases[phase].faults = faults;
        let damage = minimize(schedule.phases[phase].damage.clone(), |damage| {
            let mut candidate = schedule.clone();
            candidate.phases[phase].damage = damage.to_vec();
            search.fails(&candidate)
        });
        schedule.phases[phase].damage = damage;
    }
}

/// Bit rot recorded against a disk call moves when work before it is removed; the same flips
/// applied to the crash image stay put. Each rot is moved to its phase's crash image if the
/// failure survives that.
fn pin_rot_to_the_disk(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        let mut index = 0;
        while index < schedule.phases[phase].faults.len() {
            let Some(rot) = schedule.phases[phase].faults[index].rot.clone() else {
                index += 1;
                continue;
            };
            let mut candidate = schedule.clone();
            candidate.phases[phase].faults.remove(index);
            candidate.phases[phase].damage.push(rot);
            if search.fails(&candidate) {
                *schedule = candidate;
            } else {
                index += 1;
            }
        }
    }
}

/// Every operation of the schedule, as (phase or None for quiet, client, index) addresses.
fn operation_addresses(schedule: &Schedule) -> Vec<(Option<usize>, usize, usize)> {
    let mut addresses = Vec::new();
    for (phase, entry) in schedule.phases.iter().enumerate() {
        for (client, operations) in entry.clients.iter().enumerate() {
            addresses.extend((0..operations.len()).map(|index| (Some(phase), client, index)));
        }
    }
    for (client, operations) in schedule.quiet.iter().enumerate() {
        addresses.extend((0..operations.len()).map(|index| (None, client, index)));
    }
    addresses
}

fn operation_mut(
    schedule: &mut Schedule,
    (phase, client, index): (Option<usize>, usize, usize),
) -> &mut Operation {
    match phase {
        Some(phase) => &mut schedule.phases[phase].clients[client][index],
        None => &mut schedule.quiet[client][index],
    }
}

/// Fewer writes per commit, shorter values, no think time: each kept only if it still fails.
fn simplify_operations(search: &mut Search<'_>, schedule: &mut Schedule) {
    for address in operation_addresses(schedule) {
        if search.exhausted() {
            return;
        }
        if let Operation::Commit { writes, .. } = operation_mut(schedule, address).clone() {
            let kept = minimize(writes, |writes| {
                if writes.is_empty() {
                    return false;
                }
                let mut candidate = schedule.clone();
                if let Operation::Commit { writes: slot, .. } =
                    operation_mut(&mut candidate, address)
                {
                    *slot = writes.to_vec();
                }
                search.fails(&candidate)
            });
            if let Operation::Commit { writes, .. } = operation_mut(schedule, address) {
                *writes = kept;
            }
            let mut candidate = schedule.clone();
            if let Operation::Commit { writes, .. } = operation_mut(&mut candidate, address) {
                for write in writes.iter_mut() {
                    if let Some(value) = &mut write.value {
                        value.truncate(value.find('-').map_or(1, |dash| dash + 1));
                    }
                }
            }
            if candidate != *schedule && search.fails(&candidate) {
                *schedule = candidate;
            }
        }
        if operation_mut(schedule, address).think_us() > 0 {
            let mut candidate = schedule.clone();
            operation_mut(&mut candidate, address).set_think_us(0);
            if search.fails(&candidate) {
                *schedule = candidate;
            }
        }
    }
}

fn simplify_fates(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        for fates in [Fates::AllVanish, Fates::AllSurvive] {
            if schedule.phases[phase].fates == fates
                || schedule.phases[phase].fates == Fates::AllVanish
            {
                continue;
            }
            let mut candidate = schedule.clone();
            candidate.phases[phase].fates = fates;
            if search.fails(&candidate) {
                *schedule = candidate;
            }
        }
    }
}

/// Writes `<directory>/<name>.toml` (the scenario as drawn for this seed, pointing at the
/// schedule) and `<directory>/<name>.schedule.json`. Returns the scenario path.
pub fn write_case(
    scenario: &Scenario,
    seed: u64,
    canary: Option<&str>,
    shrunk: &Shrunk,
    directory: &Path,
) -> Result<PathBuf, ShrinkError> {
    let name = format!("{}-seed{seed}-shrunk", scenario.name);
    let scenario_path = directory.join(format!("{name}.toml"));
    let schedule_file = format!("{name}.schedule.json");
    let write = |path: PathBuf, text: String| {
        std::fs::create_dir_all(directory)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| ShrinkError::Write { path, source })
    };
    let schedule_text = serde_json::to_string_pretty(&shrunk.schedule)
        .map_err(|error| ShrinkError::Render(error.to_string()))?;
    write(directory.join(&schedule_file), schedule_text + "\n")?;

    let drawn = scenario.for_seed(seed);
    let mut table = match toml::Value::try_from(&drawn)
        .map_err(|error| ShrinkError::Render(error.to_string()))?
    {
        toml::Value::Table(table) => table,
        _ => return Err(ShrinkError::Render("a scenario renders as a table".into())),
    };
    table.remove("path");
    table.insert("name".into(), toml::Value::String(name.clone()));
    table.insert("default".into(), toml::Value::Boolean(false));
    table.insert("swarm".into(), toml::Value::Boolean(false));
    table.insert(
        "crashes_per_seed".into(),
        toml::Value::Integer(shrunk.schedule.phases.len().max(1) as i64),
    );
    table.insert("schedule".into(), toml::Value::String(schedule_file));
    table.insert(
        "description".into(),
        toml::Value::String(format!(
            "Shrunk from {} seed {seed}: {} ({})",
            scenario.name,
            shrunk.failure.kind.name(),
            shrunk.failure.message.chars().take(120).collect::<String>()
        )),
    );
    let text = toml::to_string(&table).map_err(|error| ShrinkError::Render(error.to_string()))?;
    let header = format!(
        "# Written by `crashpoint shrink --scenario {} --seed {seed}`; replay it with\n#   {}\n",
        scenario.path.display(),
        replay_command(&scenario_path, seed, canary)
    );
    write(scenario_path.clone(), header + &text)?;
    Ok(scenario_path)
}

/// The one line that replays a shrunk case with full logging.
pub fn replay_command(scenario_path: &Path, seed: u64, canary: Option<&str>) -> String {
    let features = if canary.is_some() {
        " --features canary"
    } else {
        ""
    };
    let canary = canary.map_or(String::new(), |name| format!(" --canary {name}"));
    format!(
        "cargo run --release -p crashpoint-sim{features} -- replay --scenario {} --seed {seed} -v{canary}",
        scenario_path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::minimize;

    #[test]
    fn minimize_finds_the_one_item_that_matters() {
        // Proves ddmin keeps exactly the items the predicate needs.
        let items: Vec<u32> = (0..40).collect();
        let kept = minimize(items, |items| items.contains(&17) && items.contains(&31));
        assert_eq!(kept, vec![17, 31]);
    }

    #[test]
    fn minimize_empties_a_list_nothing_depends_on() {
        // Proves an irrelevant list shrinks to nothing in one try.
        let mut tries = 0;
        let kept = minimize(vec![1, 2, 3], |_| {
            tries += 1;
            true
        });
        assert!(kept.is_empty());
        assert_eq!(tries, 1);
    }
}
