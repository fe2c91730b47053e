//! Shrinking a failing seed to a small, replayable case.
//!
//! The failing run is recorded as an explicit [`Schedule`] (client operations with think times,
//! faults by disk call, crash triggers and fates) and replayed once to confirm it reproduces the
//! failure. Then decisions are removed and simplified, delta-debugging style, keeping each
//! change only while the same kind of check still fails: whole crash phases, the quiet phase's
//! work, whole clients, operations, writes within a commit, faults, think times, value lengths,
//! crash fates (everything vanishes, or everything survives) and crash times (the crash comes
//! when the clients finish). The result is a scenario file plus its schedule that replays
//! deterministically with `replay`.
//!
//! Bit rot, of a phase or of the recovery after it, is first pinned to the crash image (a file
//! offset, not a disk call); rot that hit a commit record of the log is pinned to that record,
//! counted back from the log's last one, wherever the log then lies. Removing work moves pages
//! and records around, so a removal that stops the failure only because the rot now lands on
//! bytes nobody reads is retried with the rot moved: onto each of the last few commit records,
//! or onto bytes that candidate's recovery did read (a few offsets spread over them). Without
//! that, a rot-driven failure such as a skipped page or record checksum barely shrinks: nearly
//! every removal shifts the page or record the rot must hit.
//!
//! A torn or cut log record is a crash fate of a write still unsynced at the crash. Recorded
//! fates that no longer fit (work was removed, so other writes are pending) are refitted file
//! by file from the last write back, so the log's tail keeps its tear; and a removal that
//! stops the failure is retried with the last crash a call or two earlier or later in its
//! checkpoint window, where the log write is still unsynced.
//!
//! Any subject shrinks, not only crashpoint: the seam's driver ([`crate::subjects::driver`])
//! records and replays the same schedule. Its `io` crash counts every disk call of the phase,
//! so a removed commit moves it by all of that commit's calls, and a removal that loses the
//! failure is retried with the crash up to eight calls either way. A subject reports no
//! checkpoint steps, so the step simplifications find nothing to act on there, and rot stays
//! pinned to file offsets unless the subject keeps crashpoint's log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::driver::{run_seed_full, SeedOptions, SeedRun};
use crate::fs::TraceEvent;
use crate::outcome::{Failure, FailureKind};
use crate::scenario::Scenario;
use crate::schedule::{
    Fates, Operation, PhaseSchedule, PlannedCrash, PlannedDamage, PlannedFault, Schedule,
    ScheduleSize, ScheduledWrite,
};

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

/// How many other places on the disk a pinned rot is tried at when a candidate stops failing.
const RETARGETS: usize = 8;
/// How many of the last commit records rot pinned to a log record is tried on instead: the
/// last few are the ones recovery replays.
const RECORD_RETARGETS: u32 = 4;
/// Where a crash at an I/O call inside a checkpoint window is tried instead, when a removal
/// stops the failure.
const CRASH_SHIFTS: [i64; 4] = [-1, 1, -2, 2];
/// The same for a subject other than crashpoint, whose `io` crash counts every disk call of
/// the phase: a removed commit moves it by all of that commit's calls (redb makes five to
/// eight), not by the one or two a checkpoint window's calls move.
const SUBJECT_CRASH_SHIFTS: [i64; 16] = [-1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8];

impl Search<'_> {
    /// Replays `schedule` (with its trace when asked); the run, and whether it failed with the
    /// kind being shrunk. None once the budget is spent.
    fn judge(&mut self, schedule: &Schedule, record_trace: bool) -> Option<(SeedRun, bool)> {
        if self.exhausted() {
            return None;
        }
        self.runs += 1;
        let run = self.replay(schedule, record_trace);
        let failed = run
            .outcome
            .failure
            .as_ref()
            .is_some_and(|failure| failure.kind == self.kind);
        Some((run, failed))
    }

    /// Replays `schedule`; true if it fails with the kind being shrunk.
    fn fails(&mut self, schedule: &Schedule) -> bool {
        self.judge(schedule, false)
            .is_some_and(|(_, failed)| failed)
    }

    /// `candidate` if it still fails with the kind being shrunk. If it passes and carries rot
    /// pinned to a crash image, the rot may simply have stopped landing on data recovery
    /// reads: removing work moves every page and every log record. Then the rot is moved onto
    /// data recovery did read: rot pinned to a log record to each of the last few commit
    /// records, other rot one flip at a time onto bytes that candidate's recovery read of its
    /// file. The first such candidate that fails is returned. The bug is the same; only where
    /// the disk rotted changed.
    fn reproduce(&mut self, candidate: Schedule) -> Option<Schedule> {
        let damaged = candidate
            .phases
            .iter()
            .any(|phase| !phase.damage.is_empty());
        let (run, failed) = self.judge(&candidate, damaged)?;
        if failed {
            return Some(candidate);
        }
        for phase in 0..candidate.phases.len() {
            let Some(first) = candidate.phases[phase].damage.first() else {
                continue;
            };
            let tries: Vec<PlannedDamage> = match first.record {
                Some(_) => (0..RECORD_RETARGETS)
                    .map(|back| PlannedDamage {
                        record: Some(back),
                        ..first.clone()
                    })
                    .collect(),
                None => {
                    let mask = first.flips.first().map_or(1, |flip| flip.1);
                    let reads = recovery_reads(&run.trace, phase as u32 + 1, &first.file);
                    spread(&reads, RETARGETS)
                        .into_iter()
                        .map(|offset| PlannedDamage {
                            file: first.file.clone(),
                            flips: vec![(offset, mask)],
                            record: None,
                        })
                        .collect()
                }
            };
            for damage in tries {
                let damage = vec![damage];
                if candidate.phases[phase].damage == damage {
                    continue;
                }
                let mut moved = candidate.clone();
                moved.phases[phase].damage = damage;
                if self.fails(&moved) {
                    return Some(moved);
                }
            }
        }
        self.move_last_crash(&candidate)
    }

    /// `candidate` with its last phase's crash moved a few I/O calls earlier or later inside
    /// its checkpoint window, if that fails. Removing work shifts which call the crash lands
    /// on, and a failure that needs a write still unsynced at the crash (a torn or cut log
    /// record) needs the crash between that write and its sync.
    fn move_last_crash(&mut self, candidate: &Schedule) -> Option<Schedule> {
        let last = candidate.phases.len().checked_sub(1)?;
        let PlannedCrash::Io { operations } = candidate.phases[last].crash else {
            return None;
        };
        let shifts: &[i64] = if self.scenario.subject.is_dedicated() {
            &CRASH_SHIFTS
        } else {
            &SUBJECT_CRASH_SHIFTS
        };
        for &shift in shifts {
            let Some(moved_to) = operations.checked_add_signed(shift).filter(|&at| at > 0) else {
                continue;
            };
            let mut moved = candidate.clone();
            moved.phases[last].crash = PlannedCrash::Io {
                operations: moved_to,
            };
            if self.fails(&moved) {
                return Some(moved);
            }
        }
        None
    }

    fn replay(&self, schedule: &Schedule, record_trace: bool) -> SeedRun {
        let options = SeedOptions {
            canary: self.canary.clone(),
            schedule: Some(Arc::new(schedule.clone())),
            record_trace,
            ..SeedOptions::default()
        };
        run_seed_full(self.scenario, self.seed, &options)
    }

    fn exhausted(&self) -> bool {
        self.runs >= self.budget
    }

    /// Tries `candidate`; keeps it (or its retargeted form) in `schedule` if it still fails.
    fn accept(&mut self, schedule: &mut Schedule, candidate: Schedule) -> bool {
        match self.reproduce(candidate) {
            Some(kept) => {
                *schedule = kept;
                true
            }
            None => false,
        }
    }

    /// Delta-debugs one list of the schedule, read by `get` and written by `set`, keeping every
    /// accepted candidate whole (a retargeted rot included). An empty list is tried only when
    /// `empty_allowed`.
    fn minimize_part<T: Clone>(
        &mut self,
        schedule: &mut Schedule,
        get: impl Fn(&Schedule) -> Vec<T>,
        set: impl Fn(&mut Schedule, &[T]),
        empty_allowed: bool,
    ) {
        let items = get(schedule);
        minimize(items, |items| {
            if items.is_empty() && !empty_allowed {
                return false;
            }
            let mut candidate = schedule.clone();
            set(&mut candidate, items);
            self.accept(schedule, candidate)
        });
    }
}

/// The byte ranges of `file` that the recovery opening phase `phase`'s disk read before
/// anything wrote to that file, merged and in offset order.
fn recovery_reads(trace: &[(u32, TraceEvent)], phase: u32, file: &str) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (_, event) in trace.iter().filter(|(number, _)| *number == phase) {
        if event.file != file {
            continue;
        }
        match (event.op, &event.result) {
            ("write" | "set_len", _) => break,
            ("read", Ok(count)) if *count > 0 => {
                ranges.push((event.offset, event.offset + count));
            }
            _ => {}
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `count` offsets spread evenly over the bytes of `ranges` (the middle of each of `count`
/// equal shares), so the tries cover every structure recovery read.
fn spread(ranges: &[(u64, u64)], count: usize) -> Vec<u64> {
    let total: u64 = ranges.iter().map(|(start, end)| end - start).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut offsets = Vec::new();
    for share in 0..count as u64 {
        let mut position = total * (2 * share + 1) / (2 * count as u64);
        for &(start, end) in ranges {
            if position < end - start {
                offsets.push(start + position);
                break;
            }
            position -= end - start;
        }
    }
    offsets.dedup();
    offsets
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
            .replay(&schedule, false)
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

    // Passes repeat until one changes nothing (or the budget runs out). Rot is pinned to the
    // disk first, so that every later removal can move it where recovery still reads.
    loop {
        let start = schedule.clone();
        pin_rot_to_the_disk(&mut search, &mut schedule);
        shrink_phases(&mut search, &mut schedule);
        shrink_quiet(&mut search, &mut schedule);
        shrink_clients(&mut search, &mut schedule);
        shrink_faults(&mut search, &mut schedule);
        simplify_operations(&mut search, &mut schedule);
        simplify_crashes(&mut search, &mut schedule);
        if schedule == start || search.exhausted() {
            break;
        }
    }

    let last = search.replay(&schedule, false);
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
    search.minimize_part(
        schedule,
        |schedule| schedule.phases.clone(),
        |schedule, phases| schedule.phases = phases.to_vec(),
        false,
    );
}

fn shrink_quiet(search: &mut Search<'_>, schedule: &mut Schedule) {
    search.minimize_part(
        schedule,
        |schedule| schedule.quiet.clone(),
        |schedule, quiet| schedule.quiet = quiet.to_vec(),
        true,
    );
    for client in 0..schedule.quiet.len() {
        search.minimize_part(
            schedule,
            |schedule| schedule.quiet[client].clone(),
            |schedule, operations| schedule.quiet[client] = operations.to_vec(),
            true,
        );
    }
}

fn shrink_clients(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        search.minimize_part(
            schedule,
            |schedule| schedule.phases[phase].clients.clone(),
            |schedule, clients| schedule.phases[phase].clients = clients.to_vec(),
            true,
        );
        for client in 0..schedule.phases[phase].clients.len() {
            search.minimize_part(
                schedule,
                |schedule| schedule.phases[phase].clients[client].clone(),
                |schedule, operations| {
                    schedule.phases[phase].clients[client] = operations.to_vec();
                },
                true,
            );
        }
    }
}

fn shrink_faults(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        search.minimize_part(
            schedule,
            |schedule| schedule.phases[phase].faults.clone(),
            |schedule, faults| schedule.phases[phase].faults = faults.to_vec(),
            true,
        );
        search.minimize_part(
            schedule,
            |schedule| schedule.phases[phase].damage.clone(),
            |schedule, damage| schedule.phases[phase].damage = damage.to_vec(),
            true,
        );
        search.minimize_part(
            schedule,
            |schedule| schedule.phases[phase].recovery_faults.clone(),
            |schedule, faults| schedule.phases[phase].recovery_faults = faults.to_vec(),
            true,
        );
    }
}

/// Bit rot recorded against a disk call moves when work before it is removed; the same flips
/// applied to the crash image stay put, and rot that hit a log record stays on that record
/// (counted from the log's end) wherever the log moved. Each rot, of the phase or of the
/// recovery after it, is moved to its phase's crash image if the failure survives that.
fn pin_rot_to_the_disk(search: &mut Search<'_>, schedule: &mut Schedule) {
    type Faults = fn(&mut PhaseSchedule) -> &mut Vec<PlannedFault>;
    let lists: [Faults; 2] = [
        |phase| &mut phase.faults,
        |phase| &mut phase.recovery_faults,
    ];
    for phase in 0..schedule.phases.len() {
        for list in lists {
            let mut index = 0;
            while index < list(&mut schedule.phases[phase]).len() {
                let Some(rot) = list(&mut schedule.phases[phase])[index].rot.clone() else {
                    index += 1;
                    continue;
                };
                let mut candidate = schedule.clone();
                list(&mut candidate.phases[phase]).remove(index);
                candidate.phases[phase].damage.push(rot);
                if !search.accept(schedule, candidate) {
                    index += 1;
                }
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

fn operation(
    schedule: &Schedule,
    (phase, client, index): (Option<usize>, usize, usize),
) -> &Operation {
    match phase {
        Some(phase) => &schedule.phases[phase].clients[client][index],
        None => &schedule.quiet[client][index],
    }
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

/// The writes of the commit at `address` (nothing for a read).
fn writes_at(
    schedule: &mut Schedule,
    address: (Option<usize>, usize, usize),
) -> Option<&mut Vec<ScheduledWrite>> {
    match operation_mut(schedule, address) {
        Operation::Commit { writes, .. } => Some(writes),
        _ => None,
    }
}

/// Fewer writes per commit, shorter values, no think time: each kept only if it still fails.
/// Think time goes first for all operations at once (the failure often needs only the order
/// of commits and checkpoints, and no pauses make a shorter story), then one at a time.
fn simplify_operations(search: &mut Search<'_>, schedule: &mut Schedule) {
    let addresses = operation_addresses(schedule);
    if addresses
        .iter()
        .any(|&address| operation(schedule, address).think_us() > 0)
    {
        let mut candidate = schedule.clone();
        for &address in &addresses {
            operation_mut(&mut candidate, address).set_think_us(0);
        }
        search.accept(schedule, candidate);
    }
    for address in operation_addresses(schedule) {
        if search.exhausted() {
            return;
        }
        if writes_at(schedule, address).is_some() {
            search.minimize_part(
                schedule,
                |schedule| match operation(schedule, address) {
                    Operation::Commit { writes, .. } => writes.clone(),
                    _ => Vec::new(),
                },
                |schedule, kept| {
                    if let Some(writes) = writes_at(schedule, address) {
                        *writes = kept.to_vec();
                    }
                },
                false,
            );
            let mut candidate = schedule.clone();
            for write in writes_at(&mut candidate, address).into_iter().flatten() {
                if let Some(value) = &mut write.value {
                    value.truncate(value.find('-').map_or(1, |dash| dash + 1));
                }
            }
            if candidate != *schedule {
                search.accept(schedule, candidate);
            }
        }
        if operation_mut(schedule, address).think_us() > 0 {
            let mut candidate = schedule.clone();
            operation_mut(&mut candidate, address).set_think_us(0);
            search.accept(schedule, candidate);
        }
    }
}

/// Crash fates reduced to all-vanish or all-survive, and a crash at a time turned into a crash
/// when the clients finish (the simpler story, when the failure survives it).
fn simplify_crashes(search: &mut Search<'_>, schedule: &mut Schedule) {
    for phase in 0..schedule.phases.len() {
        if matches!(schedule.phases[phase].crash, PlannedCrash::Time { .. }) {
            let mut candidate = schedule.clone();
            candidate.phases[phase].crash = PlannedCrash::EndOfPhase;
            search.accept(schedule, candidate);
        }
        // A crash at an earlier checkpoint's step: each checkpoint skipped is a screen of log.
        if let PlannedCrash::Step { name, skip, then } = schedule.phases[phase].crash.clone() {
            for earlier in 0..skip {
                let mut candidate = schedule.clone();
                candidate.phases[phase].crash = PlannedCrash::Step {
                    name: name.clone(),
                    skip: earlier,
                    then,
                };
                if search.accept(schedule, candidate) {
                    break;
                }
            }
        }
        // A crash at the step itself rather than at an I/O call after it.
        if let PlannedCrash::Step {
            name,
            skip,
            then: 1..,
        } = schedule.phases[phase].crash.clone()
        {
            let mut candidate = schedule.clone();
            candidate.phases[phase].crash = PlannedCrash::Step {
                name,
                skip,
                then: 0,
            };
            search.accept(schedule, candidate);
        }
        for fates in [Fates::AllVanish, Fates::AllSurvive] {
            if schedule.phases[phase].fates == fates
                || schedule.phases[phase].fates == Fates::AllVanish
            {
                continue;
            }
            let mut candidate = schedule.clone();
            candidate.phases[phase].fates = fates;
            search.accept(schedule, candidate);
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
    use std::io;

    use super::{minimize, recovery_reads, spread};
    use crate::fs::TraceEvent;

    fn call(
        op: &'static str,
        file: &str,
        offset: u64,
        result: Result<u64, io::ErrorKind>,
    ) -> TraceEvent {
        TraceEvent {
            index: 0,
            time_nanos: 0,
            op,
            file: file.to_string(),
            offset,
            len: result.unwrap_or(0),
            result,
            fault: None,
        }
    }

    #[test]
    fn recovery_reads_are_the_phase_reads_before_the_first_write() {
        // Proves the rot targets come only from the given phase's recovery of the given file:
        // overlapping reads merge, failed reads and other files are ignored, and a write ends
        // the list (past it the bytes are no longer the crash image's).
        let trace = vec![
            (1, call("read", "data", 0, Ok(512))),
            (2, call("read", "data", 4096, Ok(512))),
            (2, call("read", "log-0", 0, Ok(4096))),
            (2, call("read", "data", 8192, Ok(100))),
            (2, call("read", "data", 8150, Ok(60))),
            (2, call("read", "data", 9000, Err(io::ErrorKind::Other))),
            (2, call("read", "data", 0, Ok(512))),
            (2, call("write", "data", 12288, Ok(0))),
            (2, call("read", "data", 20000, Ok(512))),
        ];
        assert_eq!(
            recovery_reads(&trace, 2, "data"),
            vec![(0, 512), (4096, 4608), (8150, 8292)]
        );
        assert!(recovery_reads(&trace, 3, "data").is_empty());
    }

    #[test]
    fn spread_covers_every_range_in_order() {
        // Proves the tries land inside the ranges, one per equal share, across all of them.
        let ranges = [(0, 100), (1000, 1100)];
        assert_eq!(spread(&ranges, 4), vec![25, 75, 1025, 1075]);
        assert_eq!(spread(&ranges, 1), vec![1000]);
        assert!(spread(&[], 8).is_empty());
        let many = spread(&[(10, 13)], 8);
        assert!(many.iter().all(|offset| (10..13).contains(offset)) && many.len() <= 3);
    }

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
