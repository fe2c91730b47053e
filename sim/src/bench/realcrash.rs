//! Real-process crash testing of the same engine: the simulator's rival, measured beside it.
//!
//! A child process (this binary's hidden `realcrash-child` command) runs the engine on
//! [`crashpoint::StdVfs`] in a real directory, driven by the simulator's workload generator,
//! and reports on its standard output, one JSON line each and before the engine or the workload
//! goes on: every commit the engine logs (in log order, from the observer), every commit
//! returned to the workload as durable, and every checkpoint step. The parent kills it with
//! SIGKILL at a random moment, or holds it right after a chosen checkpoint step (the child
//! stops there until killed), recovers the directory itself, and checks the recovered state.
//!
//! Fault model, and what it is not: SIGKILL without power loss loses only what the process had
//! not yet handed to the kernel. The page cache survives, so unsynced writes are never lost or
//! torn here; the simulator's lost, reordered and torn writes cannot happen. What can go wrong
//! is what the engine keeps in memory, and the order of its writes relative to the kill.
//!
//! The check (independent of the simulator's oracle and of any engine decoder): every commit
//! the child acknowledged durable must be present, and the recovered state must equal the state
//! before the child ran plus some prefix of the logged commits, in log order, that includes every
//! acknowledged one (as `sim/src/oracle.rs` states it for the simulator).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crashpoint::{CheckpointStep, Engine, Lsn, NoopObserver, Observer, Options, StdVfs};
use crashpoint::{Strategy, SyncMode, SystemClock, Write};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::real_engine::{to_writes, YieldNow};
use crate::scenario::Scenario;

/// The state of the database: key to value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Planted bugs of the harness itself, to prove its check can fail (needs the `canary`
/// feature to be chosen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// The child runs the engine without syncing commits (no-sync) and still reports each as
    /// acknowledged durable: a commit buffered in its memory dies with it.
    AcknowledgeBeforeDurable,
}

impl Planted {
    pub const ALL: [Planted; 1] = [Planted::AcknowledgeBeforeDurable];

    pub fn name(self) -> &'static str {
        match self {
            Planted::AcknowledgeBeforeDurable => "acknowledge-before-durable",
        }
    }

    pub fn from_name(name: &str) -> Option<Planted> {
        Planted::ALL
            .into_iter()
            .find(|planted| planted.name() == name)
    }
}

/// A commit's writes as the child reports them: key, and value or None for a delete.
pub type ReportedWrites = Vec<(String, Option<String>)>;

/// One line of the child's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ChildEvent {
    /// The engine opened (recovered) and the workload starts.
    Ready,
    /// The engine appended a commit to its log at `lsn` (log order).
    Logged { lsn: u64, writes: ReportedWrites },
    /// A commit returned to the workload; `durable` as the engine said.
    Acknowledged { lsn: u64, durable: bool },
    /// A checkpoint step was done.
    Step { checkpoint: u64, name: String },
    /// The child stopped right after the step it was told to stop at, and waits to be killed.
    Holding,
    /// The engine failed; the child exits.
    Error { message: String },
}

/// Where the child stops, to be killed inside a checkpoint.
#[derive(Clone, Debug)]
pub struct Hold {
    pub step: String,
    /// Which occurrence of the step (from 1) since the child started.
    pub occurrence: u64,
}

/// What the hidden child command is told.
#[derive(Clone, Debug)]
pub struct ChildPlan {
    pub directory: PathBuf,
    pub scenario: Scenario,
    pub seed: u64,
    pub hold: Option<Hold>,
    pub planted: Option<Planted>,
}

/// Writes one event as a line to standard output, which is a pipe to the parent; the line is
/// in the kernel before this returns, so it survives a SIGKILL that follows.
fn report(event: &ChildEvent) {
    let mut line = serde_json::to_string(event).expect("events serialize");
    line.push('\n');
    let mut out = std::io::stdout().lock();
    // The parent may have killed us already; a broken pipe changes nothing then.
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

struct ChildObserver {
    hold: Option<Hold>,
    seen: Mutex<u64>,
}

impl Observer for ChildObserver {
    fn checkpoint_step(&self, count: u64, step: CheckpointStep) {
        report(&ChildEvent::Step {
            checkpoint: count,
            name: step.name().to_string(),
        });
        let Some(hold) = &self.hold else { return };
        if step.name() != hold.step {
            return;
        }
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *seen += 1;
        if *seen == hold.occurrence {
            report(&ChildEvent::Holding);
            // Stop the engine right here, inside its checkpoint, until the parent kills us.
            // Bounded: a parent that never kills (it died) must not leave us running forever.
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::process::exit(3);
        }
    }

    fn commit_logged(&self, lsn: Lsn, _end: Lsn, writes: &[Write]) {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        report(&ChildEvent::Logged {
            lsn: lsn.0,
            writes: writes
                .iter()
                .map(|write| (text(&write.key), write.value.as_deref().map(text)))
                .collect(),
        });
    }
}

/// The engine options of a realcrash run: the scenario's, with the planted bug's sync mode.
pub fn child_options(scenario: &Scenario, planted: Option<Planted>) -> anyhow::Result<Options> {
    let mut options = crate::driver::engine_options(scenario, None).map_err(anyhow::Error::msg)?;
    if planted == Some(Planted::AcknowledgeBeforeDurable) {
        options.sync_mode = SyncMode::NoSync;
    }
    Ok(options)
}

/// The child: opens the engine and commits the workload forever (until killed), reporting as
/// it goes. Returns only on an engine error.
pub fn run_child(plan: &ChildPlan) -> anyhow::Result<()> {
    let options = child_options(&plan.scenario, plan.planted)?;
    let periodic = options.sync_mode == SyncMode::Periodic;
    let observer = Arc::new(ChildObserver {
        hold: plan.hold.clone(),
        seen: Mutex::new(0),
    });
    let result = futures::executor::block_on(async {
        let vfs = StdVfs::new(&plan.directory)?;
        let engine = Engine::open(vfs, SystemClock::new(), options, observer).await?;
        report(&ChildEvent::Ready);
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let mut checkpoint_rng = ChaCha8Rng::seed_from_u64(plan.seed);
        checkpoint_rng.set_stream(1);
        let workload = &plan.scenario.workload;
        let client = async {
            // Bounded: the parent kills the child long before this many commits.
            for number in 0..10_000_000u32 {
                let operation = crate::workload::draw(&mut rng, workload, (0, 0, number));
                let crate::schedule::Operation::Commit { writes, .. } = operation else {
                    continue;
                };
                let info = engine.commit(to_writes(&writes)).await?;
                let durable = info.durable || plan.planted.is_some();
                report(&ChildEvent::Acknowledged {
                    lsn: info.lsn.0,
                    durable,
                });
                // A checkpoint now and then, as the simulator's checkpointer forces them, so
                // kills land inside checkpoints too.
                if checkpoint_rng.gen_bool(1.0 / 8.0) {
                    engine.checkpoint().await?;
                } else {
                    engine.checkpoint_if_due().await?;
                }
                YieldNow::default().await;
            }
            Ok::<(), anyhow::Error>(())
        };
        let done = std::cell::Cell::new(false);
        let syncer = async {
            while periodic && !done.get() {
                engine.sync_log().await?;
                YieldNow::default().await;
            }
            Ok::<(), anyhow::Error>(())
        };
        let client = async {
            let result = client.await;
            done.set(true);
            result
        };
        let (client, synced) = futures::future::join(client, syncer).await;
        client.and(synced)
    });
    if let Err(error) = &result {
        report(&ChildEvent::Error {
            message: format!("{error:#}"),
        });
    }
    result
}

/// How the parent runs a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub scenario: Scenario,
    /// The `crashpoint` binary to start as the child (normally this one).
    pub binary: PathBuf,
    pub seed: u64,
    /// The longest a child runs before a random kill.
    pub kill_delay_max: Duration,
    pub planted: Option<Planted>,
}

/// One session's figures.
#[derive(Clone, Debug, Default)]
pub struct SessionFigures {
    pub strategy: String,
    pub checks: u64,
    pub kills_inside_checkpoint: u64,
    pub acknowledged: u64,
    pub elapsed: Duration,
    /// The first failed check, with what reproduces it.
    pub failure: Option<String>,
}

impl SessionFigures {
    pub fn checks_per_second(&self) -> f64 {
        self.checks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One strategy's database: its directory and the state the parent last verified there.
pub struct Session {
    pub options: SessionOptions,
    directory: tempfile::TempDir,
    base: State,
    rng: ChaCha8Rng,
    pub figures: SessionFigures,
}

/// How one child run ended, as the parent saw it.
struct ChildRun {
    events: Vec<ChildEvent>,
    inside_checkpoint: bool,
}

impl Session {
    pub fn new(options: SessionOptions) -> anyhow::Result<Session> {
        let directory = tempfile::Builder::new()
            .prefix("crashpoint-realcrash-")
            .tempdir()?;
        let rng = ChaCha8Rng::seed_from_u64(options.seed);
        let figures = SessionFigures {
            strategy: options.scenario.engine.strategy.name().to_string(),
            ..SessionFigures::default()
        };
        Ok(Session {
            options,
            directory,
            base: State::new(),
            rng,
            figures,
        })
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// One kill, recovery and check. Returns false when the check failed (the failure is in
    /// the figures) and the session should stop.
    pub fn iterate(&mut self) -> anyhow::Result<bool> {
        let started = Instant::now();
        let iteration = self.figures.checks;
        let child_seed = self.rng.gen::<u64>();
        let hold = self.rng.gen_bool(0.5).then(|| {
            let steps = self.options.scenario.engine.strategy.steps();
            Hold {
                step: steps[self.rng.gen_range(0..steps.len())].name.to_string(),
                occurrence: self.rng.gen_range(1..=3),
            }
        });
        let delay = self
            .rng
            .gen_range(Duration::ZERO..=self.options.kill_delay_max);
        let run = self.run_child(child_seed, hold.as_ref(), delay)?;
        let recovered = recover(self.directory.path(), &self.options)?;
        let verdict = check(&self.base, &run.events, &recovered);
        self.figures.checks += 1;
        self.figures.kills_inside_checkpoint += u64::from(run.inside_checkpoint);
        self.figures.acknowledged += run
            .events
            .iter()
            .filter(|event| matches!(event, ChildEvent::Acknowledged { durable: true, .. }))
            .count() as u64;
        self.figures.elapsed += started.elapsed();
        match verdict {
            Ok(()) => {
                self.base = recovered;
                Ok(true)
            }
            Err(message) => {
                self.figures.failure = Some(format!(
                    "{} kill {iteration} (child seed {child_seed}, {}): {message}",
                    self.figures.strategy,
                    match &hold {
                        Some(hold) => format!("held at {} #{}", hold.step, hold.occurrence),
                        None => format!("killed after {delay:?}"),
                    }
                ));
                Ok(false)
            }
        }
    }

    /// Starts a child, kills it when told, and returns everything it reported.
    fn run_child(
        &self,
        seed: u64,
        hold: Option<&Hold>,
        delay: Duration,
    ) -> anyhow::Result<ChildRun> {
        let options = &self.options;
        let mut command = Command::new(&options.binary);
        command
            .arg("realcrash-child")
            .arg("--dir")
            .arg(self.directory.path())
            .arg("--scenario")
            .arg(&options.scenario.path)
            .arg("--strategy")
            .arg(options.scenario.engine.strategy.name())
            .arg("--seed")
            .arg(seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(hold) = hold {
            command
                .arg("--hold-at-step")
                .arg(&hold.step)
                .arg("--hold-at-occurrence")
                .arg(hold.occurrence.to_string());
        }
        if let Some(planted) = options.planted {
            command.arg("--planted").arg(planted.name());
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<ChildEvent>(&line) else {
                    break;
                };
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        let mut events = Vec::new();
        let mut ready_at: Option<Instant> = None;
        let mut inside_checkpoint = false;
        // A hold that never comes (no such checkpoint soon) falls back to a kill at this time.
        let hold_deadline = Instant::now() + options.kill_delay_max * 4 + Duration::from_secs(2);
        loop {
            let deadline = match (hold, ready_at) {
                (None, Some(ready)) => ready + delay,
                _ => hold_deadline,
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(event) => {
                    match &event {
                        ChildEvent::Ready => ready_at = Some(Instant::now()),
                        ChildEvent::Step { name, .. } => {
                            inside_checkpoint = name != crashpoint::strategy::steps::FINISHED;
                        }
                        ChildEvent::Holding => inside_checkpoint = true,
                        _ => {}
                    }
                    let stop = matches!(event, ChildEvent::Holding | ChildEvent::Error { .. });
                    events.push(event);
                    if stop {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                // The child exited on its own (an error it reported, or a panic).
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Std's kill is SIGKILL on Unix: no handler, no flush, no exit code of its own.
        let _ = child.kill();
        child.wait()?;
        reader.join().expect("the reader thread does not panic");
        events.extend(receiver.try_iter());
        if let Some(ChildEvent::Error { message }) = events
            .iter()
            .find(|event| matches!(event, ChildEvent::Error { .. }))
        {
            anyhow::bail!("the child's engine failed: {message}");
        }
        Ok(ChildRun {
            events,
            inside_checkpoint,
        })
    }
}

/// Recovers the directory in this process and reads every entry; the engine is dropped
/// without a close, as a crash would leave it.
fn recover(directory: &Path, options: &SessionOptions) -> anyhow::Result<State> {
    let engine_options = child_options(&options.scenario, options.planted)?;
    futures::executor::block_on(async {
        let engine = Engine::open(
            StdVfs::new(directory)?,
            SystemClock::new(),
            engine_options,
            Arc::new(NoopObserver),
        )
        .await?;
        let entries = engine.scan_all().await?;
        Ok(entries.into_iter().collect())
    })
}

fn apply(state: &mut State, writes: &[(String, Option<String>)]) {
    for (key, value) in writes {
        match value {
            Some(value) => state.insert(key.clone().into_bytes(), value.clone().into_bytes()),
            None => state.remove(key.as_bytes()),
        };
    }
}

/// The first key where two states differ, in words: the key, the expected and the found value.
pub fn first_difference(expected: &State, found: &State) -> Option<String> {
    let show = |value: Option<&Vec<u8>>| match value {
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
        None => "nothing".to_string(),
    };
    let keys: BTreeSet<&Vec<u8>> = expected.keys().chain(found.keys()).collect();
    keys.into_iter().find_map(|key| {
        let (want, got) = (expected.get(key), found.get(key));
        (want != got).then(|| {
            format!(
                "key {:?}: expected {}, found {}",
                String::from_utf8_lossy(key),
                show(want),
                show(got)
            )
        })
    })
}

/// The check: `recovered` must equal `base` plus a prefix of the logged commits, in log order,
/// that holds every commit acknowledged durable.
pub fn check(base: &State, events: &[ChildEvent], recovered: &State) -> Result<(), String> {
    let mut logged: Vec<(u64, &ReportedWrites)> = events
        .iter()
        .filter_map(|event| match event {
            ChildEvent::Logged { lsn, writes } => Some((*lsn, writes)),
            _ => None,
        })
        .collect();
    logged.sort_by_key(|(lsn, _)| *lsn);
    let acknowledged: BTreeSet<u64> = events
        .iter()
        .filter_map(|event| match event {
            ChildEvent::Acknowledged { lsn, durable: true } => Some(*lsn),
            _ => None,
        })
        .collect();
    if let Some(missing) = acknowledged.iter().find(|lsn| {
        logged
            .binary_search_by_key(*lsn, |(logged, _)| *logged)
            .is_err()
    }) {
        return Err(format!(
            "commit {missing} was acknowledged but never logged"
        ));
    }
    // The shortest prefix a recovery may keep: through the last acknowledged commit.
    let required = acknowledged
        .last()
        .map_or(0, |last| logged.partition_point(|(lsn, _)| lsn <= last));
    let mut state = base.clone();
    for (_, writes) in &logged[..required] {
        apply(&mut state, writes);
    }
    let at_required = state.clone();
    for prefix in required..=logged.len() {
        if &state == recovered {
            return Ok(());
        }
        if let Some((_, writes)) = logged.get(prefix) {
            apply(&mut state, writes);
        }
    }
    let difference = first_difference(&at_required, recovered)
        .unwrap_or_else(|| "no single key differs".to_string());
    Err(format!(
        "the recovered state ({} keys) equals no prefix of the {} logged commits that holds \
         all {} acknowledged durable; against the state after the last acknowledged commit \
         (lsn {}): {difference}",
        recovered.len(),
        logged.len(),
        acknowledged.len(),
        acknowledged
            .last()
            .map_or("none".to_string(), u64::to_string),
    ))
}

/// A session per strategy, iterated in turn until `iterations` kills each or `duration` is up.
pub fn run_sessions(
    options: &[SessionOptions],
    iterations: Option<u64>,
    duration: Option<Duration>,
) -> anyhow::Result<Vec<SessionFigures>> {
    let mut sessions = options
        .iter()
        .cloned()
        .map(Session::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut round = 0u64;
    'rounds: loop {
        if iterations.is_some_and(|limit| round >= limit)
            || duration.is_some_and(|limit| started.elapsed() >= limit)
        {
            break;
        }
        for session in &mut sessions {
            if !session.iterate()? {
                break 'rounds;
            }
        }
        round += 1;
    }
    Ok(sessions
        .into_iter()
        .map(|session| session.figures)
        .collect())
}

/// The strategies a session list covers, for messages.
pub fn strategy_names(strategies: &[Strategy]) -> String {
    strategies
        .iter()
        .map(|strategy| strategy.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(lsn: u64, key: &str, value: &str) -> ChildEvent {
        ChildEvent::Logged {
            lsn,
            writes: vec![(key.to_string(), Some(value.to_string()))],
        }
    }

    fn state(entries: &[(&str, &str)]) -> State {
        entries
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn any_prefix_through_the_last_acknowledged_commit_passes() {
        // Proves an unacknowledged tail may be kept or lost, as long as it is a prefix.
        let events = [
            logged(10, "a", "1"),
            ChildEvent::Acknowledged {
                lsn: 10,
                durable: true,
            },
            logged(20, "b", "2"),
            logged(30, "a", "3"),
        ];
        let base = state(&[("z", "0")]);
        assert!(check(&base, &events, &state(&[("z", "0"), ("a", "1")])).is_ok());
        assert!(check(
            &base,
            &events,
            &state(&[("z", "0"), ("a", "1"), ("b", "2")])
        )
        .is_ok());
        assert!(check(
            &base,
            &events,
            &state(&[("z", "0"), ("a", "3"), ("b", "2")])
        )
        .is_ok());
    }

    #[test]
    fn losing_an_acknowledged_commit_or_a_hole_fails() {
        // Proves a lost acknowledged commit and a non-prefix (a hole) are both caught, and the
        // message names the key with expected and found values.
        let events = [
            logged(10, "a", "1"),
            logged(20, "b", "2"),
            ChildEvent::Acknowledged {
                lsn: 20,
                durable: true,
            },
            logged(30, "c", "3"),
        ];
        let lost = check(&State::new(), &events, &state(&[("a", "1")])).unwrap_err();
        assert!(
            lost.contains("key \"b\": expected \"2\", found nothing"),
            "{lost}"
        );
        let hole = check(
            &State::new(),
            &events,
            &state(&[("a", "1"), ("b", "2"), ("d", "4")]),
        );
        assert!(hole.is_err());
        let skipped = check(&State::new(), &events, &state(&[("b", "2")]));
        assert!(skipped.is_err());
    }

    #[test]
    fn an_acknowledgement_without_a_logged_commit_fails() {
        // Proves the check refuses a durable claim for a commit the log order never saw.
        let events = [ChildEvent::Acknowledged {
            lsn: 5,
            durable: true,
        }];
        assert!(check(&State::new(), &events, &State::new()).is_err());
    }
}
