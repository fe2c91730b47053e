//! A picture of one seed's run: the Chrome trace-event JSON that `replay --trace FILE.json`
//! writes, for Perfetto (<https://ui.perfetto.dev>) and `chrome://tracing`.
//!
//! This module owns only the rendering; the driver records what happened
//! ([`SeedRun::trace`], [`SeedRun::faults`], [`SeedRun::timeline`]). Every timestamp is simulated
//! time since the runtime started, in microseconds (`ts = nanos / 1000.0`); one run has one
//! timeline, so the crash phases, each on a fresh disk, follow one another on the same tracks,
//! and the harness track shows where each phase begins and ends.
//!
//! # Layout
//!
//! - Process 1, "tasks": one thread per client ("client 0", …) with a "commit" span per
//!   transaction (args: writes, lsn and durable, or the error) and a "read" span per read; a
//!   "checkpointer" thread with a "checkpoint N" span per checkpoint, from `started` to
//!   `finished`, holding the spans of its parts, each holding one span per step that runs from
//!   the previous step's report to this one's. Parts and span titles come from the strategy's
//!   step list (`crashpoint::strategy::steps`): for the sharp checkpoint the parts are begin,
//!   pages, translation, header and end, the spans "page write" per page, "data fsync",
//!   "header write", …; the fuzzy and physical-log checkpoints bring their own; and a
//!   "harness" thread with a "phase N" span per phase, a "crash: cause" instant per crash and a
//!   "check passed" or "check failed" instant per check (the message in args).
//! - Process 2, "disk": one thread per file name (the data file, each log segment, and
//!   "directory" for `list`, `sync_dir` and `rename`) with a span per I/O call named after the
//!   call (args: offset, len, result, fault) and an instant per injected fault (category
//!   "fault", named after its kind, the record's detail in args).
//!
//! A checkpoint a crash interrupts has no `finished`: its span, and the part it was in, end at
//! the next checkpoint's `started`, at the crash, or at the end of the run, whichever comes
//! first, with `finished: false` in args.
//!
//! # What is approximate
//!
//! The trace records when each I/O call took effect, not when it was issued. Every call first
//! sleeps a latency drawn from `[latency_min_us, latency_max_us]`, which madsim rounds up to
//! 1 ms, so a call takes at least `max(latency_min_us, 1 ms)` (nothing when `latency_max_us`
//! is 0). An I/O span ends when the call took effect and starts that minimum earlier: exact
//! for the default latencies (at most 1 ms, so every call takes exactly 1 ms), short of the
//! truth for calls that drew more. Calls from different tasks on one file can overlap, and
//! Perfetto drops slices on one track that overlap without nesting, so a span is shortened to
//! start no earlier than the previous call on its file took effect. Faults injected at a crash
//! (torn, lost and reordered writes, undone namespace operations) are placed at that crash,
//! not at the call that issued the damaged write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::time::Duration;

use crashpoint::CheckpointStep;
use serde_json::{json, Map, Value};

use crate::driver::SeedRun;
use crate::fs::{FaultKind, FaultRecord, TraceEvent};
use crate::hub::TimelineEvent;
use crate::scenario::Scenario;

/// The process holding the client, checkpointer and harness threads.
pub const TASKS_PROCESS: u32 = 1;
/// The process holding one thread per file.
pub const DISK_PROCESS: u32 = 2;
/// Client `n` is thread `n + 1` of the tasks process; these two come after every client.
pub const CHECKPOINTER_THREAD: u32 = 100_000;
pub const HARNESS_THREAD: u32 = 100_001;
/// The disk track of calls on the directory rather than on one file.
pub const DIRECTORY_TRACK: &str = "directory";
/// madsim sleeps at least this long for any non-zero sleep.
const SLEEP_MIN: Duration = Duration::from_millis(1);

/// What a trace event draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A complete event (`"X"`): a span with a start and a duration.
    Span { duration_nanos: u64 },
    /// An instant event (`"i"`) on its thread.
    Instant,
    /// A metadata event (`"M"`): a process or thread name or sort index.
    Metadata,
}

/// One trace event, in nanoseconds until it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub category: &'static str,
    pub kind: EventKind,
    pub nanos: u64,
    pub process: u32,
    pub thread: u32,
    pub args: Map<String, Value>,
}

impl Event {
    fn span(name: impl Into<String>, category: &'static str, start: u64, end: u64) -> Self {
        debug_assert!(
            start <= end,
            "a span of {start}..{end} ends before it starts"
        );
        Event {
            name: name.into(),
            category,
            kind: EventKind::Span {
                duration_nanos: end.saturating_sub(start),
            },
            nanos: start,
            process: TASKS_PROCESS,
            thread: CHECKPOINTER_THREAD,
            args: Map::new(),
        }
    }

    fn instant(name: impl Into<String>, category: &'static str, nanos: u64) -> Self {
        Event {
            name: name.into(),
            category,
            kind: EventKind::Instant,
            nanos,
            process: TASKS_PROCESS,
            thread: HARNESS_THREAD,
            args: Map::new(),
        }
    }

    fn metadata(name: &str, process: u32, thread: u32, args: Value) -> Self {
        Event {
            name: name.to_string(),
            category: "__metadata",
            kind: EventKind::Metadata,
            nanos: 0,
            process,
            thread,
            args: match args {
                Value::Object(map) => map,
                _ => unreachable!("metadata args are an object"),
            },
        }
    }

    fn on(mut self, process: u32, thread: u32) -> Self {
        self.process = process;
        self.thread = thread;
        self
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.args.insert(key.to_string(), value.into());
        self
    }

    /// The end of a span, or the time of any other event.
    pub fn end_nanos(&self) -> u64 {
        match self.kind {
            EventKind::Span { duration_nanos } => self.nanos + duration_nanos,
            _ => self.nanos,
        }
    }

    /// The event as Chrome's JSON object.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".into(), self.name.clone().into());
        object.insert("cat".into(), self.category.into());
        let ph = match self.kind {
            EventKind::Span { .. } => "X",
            EventKind::Instant => "i",
            EventKind::Metadata => "M",
        };
        object.insert("ph".into(), ph.into());
        object.insert("ts".into(), micros(self.nanos));
        if let EventKind::Span { duration_nanos } = self.kind {
            object.insert("dur".into(), micros(duration_nanos));
        }
        if self.kind == EventKind::Instant {
            object.insert("s".into(), "t".into());
        }
        object.insert("pid".into(), self.process.into());
        object.insert("tid".into(), self.thread.into());
        if !self.args.is_empty() {
            object.insert("args".into(), Value::Object(self.args.clone()));
        }
        Value::Object(object)
    }
}

fn micros(nanos: u64) -> Value {
    // Whole microseconds stay integers in the file; the rest keep their nanoseconds.
    if nanos.is_multiple_of(1000) {
        (nanos / 1000).into()
    } else {
        (nanos as f64 / 1000.0).into()
    }
}

/// The events of a run, metadata first, then sorted by time, and the run's metadata.
#[derive(Clone, Debug)]
pub struct ChromeTrace {
    pub events: Vec<Event>,
    pub metadata: Map<String, Value>,
}

impl ChromeTrace {
    /// Writes the JSON object format: `{"traceEvents": [...], "displayTimeUnit": "ms",
    /// "metadata": {...}}`.
    pub fn write_json(&self, out: impl Write) -> io::Result<()> {
        let document = json!({
            "traceEvents": self.events.iter().map(Event::to_json).collect::<Vec<_>>(),
            "displayTimeUnit": "ms",
            "metadata": self.metadata,
        });
        serde_json::to_writer(out, &document).map_err(io::Error::from)
    }
}

/// Renders `run` (recorded with `record_trace`) of `scenario` and `seed` and writes it to `out`;
/// returns the number of trace events written.
pub fn write(run: &SeedRun, scenario: &Scenario, seed: u64, out: impl Write) -> io::Result<usize> {
    let trace = build(run, scenario, seed);
    trace.write_json(out)?;
    Ok(trace.events.len())
}

/// Renders `run` of `scenario` (as the file gives it; swarm draws are redone from `seed`).
pub fn build(run: &SeedRun, scenario: &Scenario, seed: u64) -> ChromeTrace {
    let scenario = scenario.for_seed(seed);
    let call_nanos = call_duration_min(&scenario).as_nanos() as u64;
    let crashes = crash_times(&run.timeline);
    let run_end_nanos = run_end_nanos(run);

    let mut events = Vec::new();
    events.extend(task_events(&run.timeline));
    events.extend(checkpoint_spans(&run.timeline, run_end_nanos));
    events.extend(harness_events(run));
    let mut disk = DiskTracks::default();
    events.extend(io_spans(&run.trace, call_nanos, &mut disk));
    events.extend(fault_instants(&run.faults, &run.trace, &crashes, &mut disk));

    let mut clients: BTreeSet<u32> = (0..scenario.workload.clients).collect();
    clients.extend(run.timeline.iter().filter_map(|event| match event {
        TimelineEvent::Transaction { client, .. } | TimelineEvent::Read { client, .. } => {
            Some(*client)
        }
        _ => None,
    }));
    let mut all = track_names(&clients, &disk);
    // Stable: events at one time keep the order they were made in, which puts a parent span
    // before the children that start with it, as the viewers need to nest them.
    events.sort_by_key(|event| event.nanos);
    all.extend(events);

    let mut metadata = Map::new();
    metadata.insert("scenario".into(), scenario.name.clone().into());
    metadata.insert(
        "scenario_path".into(),
        scenario.path.display().to_string().into(),
    );
    metadata.insert("seed".into(), seed.into());
    metadata.insert(
        "clock".into(),
        "simulated time since the run started".into(),
    );
    metadata.insert(
        "io_span_duration_us".into(),
        (call_nanos as f64 / 1000.0).into(),
    );
    metadata.insert("io_calls".into(), run.trace.len().into());
    metadata.insert("faults".into(), run.faults.len().into());
    metadata.insert(
        "failure".into(),
        run.outcome.failure.as_ref().map_or(Value::Null, |failure| {
            format!("{}: {}", failure.kind.name(), failure.message).into()
        }),
    );
    ChromeTrace {
        events: all,
        metadata,
    }
}

/// The least time an I/O call of `scenario` takes: its minimum latency as madsim sleeps it.
pub fn call_duration_min(scenario: &Scenario) -> Duration {
    let faults = &scenario.faults;
    if faults.latency_max_us.max(faults.latency_min_us) == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(faults.latency_min_us).max(SLEEP_MIN)
}

/// The time of each phase's crash.
fn crash_times(timeline: &[TimelineEvent]) -> BTreeMap<u32, u64> {
    timeline
        .iter()
        .filter_map(|event| match event {
            TimelineEvent::Crash { phase, nanos, .. } => Some((*phase, *nanos)),
            _ => None,
        })
        .collect()
}

/// The last time anything in the run happened.
fn run_end_nanos(run: &SeedRun) -> u64 {
    let timeline = run.timeline.iter().map(|event| match event {
        TimelineEvent::Transaction { end_nanos, .. } | TimelineEvent::Read { end_nanos, .. } => {
            *end_nanos
        }
        TimelineEvent::CheckpointStep { nanos, .. }
        | TimelineEvent::Crash { nanos, .. }
        | TimelineEvent::Check { nanos, .. } => *nanos,
    });
    let io = run.trace.iter().map(|(_, event)| event.time_nanos);
    timeline.chain(io).max().unwrap_or(0)
}

fn client_thread(client: u32) -> u32 {
    client + 1
}

/// Process and thread names and sort indexes.
fn track_names(clients: &BTreeSet<u32>, disk: &DiskTracks) -> Vec<Event> {
    let mut events = vec![
        Event::metadata("process_name", TASKS_PROCESS, 0, json!({ "name": "tasks" })),
        Event::metadata(
            "process_sort_index",
            TASKS_PROCESS,
            0,
            json!({ "sort_index": 1 }),
        ),
        Event::metadata("process_name", DISK_PROCESS, 0, json!({ "name": "disk" })),
        Event::metadata(
            "process_sort_index",
            DISK_PROCESS,
            0,
            json!({ "sort_index": 2 }),
        ),
    ];
    let tasks = clients
        .iter()
        .map(|&client| (client_thread(client), format!("client {client}")))
        .chain([
            (CHECKPOINTER_THREAD, "checkpointer".to_string()),
            (HARNESS_THREAD, "harness".to_string()),
        ])
        .map(|(thread, name)| (TASKS_PROCESS, thread, name));
    let files = disk
        .threads
        .iter()
        .map(|(name, &thread)| (DISK_PROCESS, thread, name.clone()));
    for (process, thread, name) in tasks.chain(files) {
        events.push(Event::metadata(
            "thread_name",
            process,
            thread,
            json!({ "name": name }),
        ));
        events.push(Event::metadata(
            "thread_sort_index",
            process,
            thread,
            json!({ "sort_index": thread }),
        ));
    }
    events
}

/// Commit and read spans on their clients' threads.
fn task_events(timeline: &[TimelineEvent]) -> Vec<Event> {
    let mut events = Vec::new();
    for event in timeline {
        match event {
            TimelineEvent::Transaction {
                phase,
                client,
                start_nanos,
                end_nanos,
                writes,
                result,
            } => {
                let span = Event::span("commit", "transaction", *start_nanos, *end_nanos)
                    .on(TASKS_PROCESS, client_thread(*client))
                    .with("phase", *phase)
                    .with("writes", *writes);
                events.push(match result {
                    Ok((lsn, durable)) => span.with("lsn", lsn.0).with("durable", *durable),
                    Err(error) => span.with("error", error.clone()),
                });
            }
            TimelineEvent::Read {
                phase,
                client,
                start_nanos,
                end_nanos,
                ok,
            } => events.push(
                Event::span("read", "read", *start_nanos, *end_nanos)
                    .on(TASKS_PROCESS, client_thread(*client))
                    .with("phase", *phase)
                    .with("ok", *ok),
            ),
            _ => {}
        }
    }
    events
}

/// A checkpoint whose `finished` step has not arrived yet.
struct OpenCheckpoint {
    count: u64,
    steps: Vec<(u64, CheckpointStep)>,
}

/// Checkpoint spans on the checkpointer thread. The steps of one checkpoint arrive in order;
/// one without `finished` is closed at the next `started`, the next crash, or `run_end_nanos`.
pub fn checkpoint_spans(timeline: &[TimelineEvent], run_end_nanos: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut open: Option<OpenCheckpoint> = None;
    for event in timeline {
        match event {
            TimelineEvent::CheckpointStep { nanos, count, step } => {
                let continues = open
                    .as_ref()
                    .is_some_and(|checkpoint| checkpoint.count == *count)
                    && !step.is_start();
                if !continues {
                    if let Some(interrupted) = open.take() {
                        events.extend(close_checkpoint(interrupted, *nanos, false));
                    }
                    open = Some(OpenCheckpoint {
                        count: *count,
                        steps: Vec::new(),
                    });
                }
                let checkpoint = open.as_mut().expect("opened above");
                checkpoint.steps.push((*nanos, *step));
                if step.is_finish() {
                    let finished = open.take().expect("opened above");
                    events.extend(close_checkpoint(finished, *nanos, true));
                }
            }
            TimelineEvent::Crash { nanos, .. } => {
                if let Some(interrupted) = open.take() {
                    events.extend(close_checkpoint(interrupted, *nanos, false));
                }
            }
            _ => {}
        }
    }
    if let Some(interrupted) = open.take() {
        let end = run_end_nanos.max(interrupted.steps.last().map_or(0, |(nanos, _)| *nanos));
        events.extend(close_checkpoint(interrupted, end, false));
    }
    events
}

/// The spans of one checkpoint, outermost first: the checkpoint, then each part followed by
/// the step spans inside it.
fn close_checkpoint(checkpoint: OpenCheckpoint, end_nanos: u64, finished: bool) -> Vec<Event> {
    let steps = &checkpoint.steps;
    let Some(&(start_nanos, _)) = steps.first() else {
        return Vec::new();
    };
    let (_, last_step) = *steps.last().expect("not empty");
    debug_assert!(
        end_nanos >= start_nanos,
        "a checkpoint closed before it started"
    );
    let page_writes = steps.iter().filter(|(_, step)| step.page.is_some()).count();
    let mut events = vec![Event::span(
        format!("checkpoint {}", checkpoint.count),
        "checkpoint",
        start_nanos,
        end_nanos,
    )
    .with("count", checkpoint.count)
    .with("finished", finished)
    .with("last_step", last_step.name())
    .with("page_writes", page_writes)];

    // Each step after the first closes a span from the previous step; consecutive spans of one
    // part make up that part's span.
    let mut parts: Vec<(&'static str, u64, u64, Vec<Event>)> = Vec::new();
    for pair in steps.windows(2) {
        let ((from, _), (to, step)) = (pair[0], pair[1]);
        let mut span = Event::span(step.step.label, "checkpoint", from, to)
            .with("step", step.name())
            .with("count", checkpoint.count);
        if let Some(page) = step.page {
            span = span.with("page_id", page.page_id).with("index", page.index);
        }
        let part = step.step.part;
        match parts.last_mut() {
            Some((name, _, part_end, spans)) if *name == part => {
                *part_end = to;
                spans.push(span);
            }
            _ => parts.push((part, from, to, vec![span])),
        }
    }
    if !finished {
        // The part the checkpoint was in when it stopped runs on to where it was closed.
        if let Some(part) = last_step.step.part_after() {
            let (last_nanos, _) = *steps.last().expect("not empty");
            match parts.last_mut() {
                Some((name, _, part_end, _)) if *name == part => *part_end = end_nanos,
                _ => parts.push((part, last_nanos, end_nanos, Vec::new())),
            }
        }
    }
    let parts_count = parts.len();
    for (position, (name, from, to, spans)) in parts.into_iter().enumerate() {
        let interrupted = !finished && position + 1 == parts_count;
        events.push(
            Event::span(name, "checkpoint", from, to)
                .with("count", checkpoint.count)
                .with("interrupted", interrupted),
        );
        events.extend(spans);
    }
    events
}

/// Phase spans, crash and check instants on the harness thread.
fn harness_events(run: &SeedRun) -> Vec<Event> {
    let mut events = Vec::new();
    // A phase runs from its first recorded moment to its last; phases follow one another.
    let mut phases: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut widen = |phase: u32, from: u64, to: u64| {
        let bounds = phases.entry(phase).or_insert((from, to));
        bounds.0 = bounds.0.min(from);
        bounds.1 = bounds.1.max(to);
    };
    for (phase, event) in &run.trace {
        widen(*phase, event.time_nanos, event.time_nanos);
    }
    for event in &run.timeline {
        match event {
            TimelineEvent::Transaction {
                phase,
                start_nanos,
                end_nanos,
                ..
            }
            | TimelineEvent::Read {
                phase,
                start_nanos,
                end_nanos,
                ..
            } => widen(*phase, *start_nanos, *end_nanos),
            TimelineEvent::Crash { phase, nanos, .. }
            | TimelineEvent::Check { phase, nanos, .. } => widen(*phase, *nanos, *nanos),
            TimelineEvent::CheckpointStep { .. } => {}
        }
    }
    let mut previous_end = 0;
    for (phase, (from, to)) in phases {
        let from = from.max(previous_end);
        let to = to.max(from);
        previous_end = to;
        events.push(
            Event::span(format!("phase {phase}"), "phase", from, to)
                .on(TASKS_PROCESS, HARNESS_THREAD)
                .with("phase", phase),
        );
    }
    for event in &run.timeline {
        match event {
            TimelineEvent::Crash {
                phase,
                nanos,
                cause,
            } => events.push(
                Event::instant(format!("crash: {cause}"), "crash", *nanos)
                    .with("phase", *phase)
                    .with("cause", cause.clone()),
            ),
            TimelineEvent::Check {
                phase,
                nanos,
                passed,
                message,
            } => events.push(
                Event::instant(
                    if *passed {
                        "check passed"
                    } else {
                        "check failed"
                    },
                    "check",
                    *nanos,
                )
                .with("phase", *phase)
                .with("passed", *passed)
                .with("message", message.clone()),
            ),
            _ => {}
        }
    }
    events
}

/// The disk process's threads, one per file name, numbered in order of first use.
#[derive(Default)]
struct DiskTracks {
    threads: BTreeMap<String, u32>,
}

impl DiskTracks {
    fn thread(&mut self, file: &str) -> u32 {
        let name = track_name(file);
        let next = self.threads.len() as u32 + 1;
        *self.threads.entry(name.to_string()).or_insert(next)
    }
}

/// The track of a traced file name: calls on the directory (no name, or a rename's
/// `from -> to`) share one.
fn track_name(file: &str) -> &str {
    if file.is_empty() || file.contains(" -> ") {
        DIRECTORY_TRACK
    } else {
        file
    }
}

/// One span per I/O call on its file's thread, ending when the call took effect and lasting
/// `call_nanos`, cut short so as not to start before the previous call on that file ended.
fn io_spans(trace: &[(u32, TraceEvent)], call_nanos: u64, disk: &mut DiskTracks) -> Vec<Event> {
    let mut previous_end: HashMap<u32, u64> = HashMap::new();
    let mut events = Vec::with_capacity(trace.len());
    for (phase, call) in trace {
        let thread = disk.thread(&call.file);
        let end = call.time_nanos;
        let earliest = previous_end.get(&thread).copied().unwrap_or(0).min(end);
        let start = end.saturating_sub(call_nanos).max(earliest);
        previous_end.insert(thread, end);
        let result: Value = match &call.result {
            Ok(count) => format!("ok {count}").into(),
            Err(kind) => format!("error {kind:?}").into(),
        };
        let mut span = Event::span(call.op, "io", start, end)
            .on(DISK_PROCESS, thread)
            .with("phase", *phase)
            .with("index", call.index)
            .with("offset", call.offset)
            .with("len", call.len)
            .with("result", result)
            .with(
                "fault",
                call.fault.map_or(Value::Null, |kind| kind.name().into()),
            );
        if track_name(&call.file) == DIRECTORY_TRACK && !call.file.is_empty() {
            span = span.with("file", call.file.clone());
        }
        events.push(span);
    }
    events
}

/// Faults a crash image chose rather than the running disk.
fn chosen_at_crash(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::TornWrite
            | FaultKind::LostWrite
            | FaultKind::ReorderedWrite
            | FaultKind::UndoneNamespaceOp
    )
}

/// An instant per injected fault on its file's thread: at the call it hit, or, for damage a
/// crash image chose, at that crash.
fn fault_instants(
    faults: &[(u32, FaultRecord)],
    trace: &[(u32, TraceEvent)],
    crashes: &BTreeMap<u32, u64>,
    disk: &mut DiskTracks,
) -> Vec<Event> {
    let call_times: HashMap<(u32, u64), u64> = trace
        .iter()
        .map(|(phase, call)| ((*phase, call.index), call.time_nanos))
        .collect();
    let mut events = Vec::with_capacity(faults.len());
    for (phase, fault) in faults {
        let at_call = call_times.get(&(*phase, fault.index)).copied();
        let at_crash = crashes.get(phase).copied();
        // The trace keeps a bounded number of calls; a fault past it goes to the crash.
        let nanos = if chosen_at_crash(fault.kind) {
            at_crash.or(at_call)
        } else {
            at_call.or(at_crash)
        };
        let Some(nanos) = nanos else { continue };
        events.push(
            Event::instant(fault.kind.name(), "fault", nanos)
                .on(DISK_PROCESS, disk.thread(&fault.file))
                .with("phase", *phase)
                .with("index", fault.index)
                .with("file", fault.file.clone())
                .with("offset", fault.offset)
                .with("len", fault.len)
                .with("detail", fault.detail.clone()),
        );
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(nanos: u64, count: u64, step: CheckpointStep) -> TimelineEvent {
        TimelineEvent::CheckpointStep { nanos, count, step }
    }

    fn page(index: u32) -> CheckpointStep {
        CheckpointStep::page(
            &crashpoint::strategy::steps::sharp::PAGE_WRITTEN,
            10 + u64::from(index),
            index,
        )
    }

    /// The sharp step called `name`.
    fn sharp(name: &str) -> CheckpointStep {
        CheckpointStep::new(
            crashpoint::Strategy::Sharp
                .step(name)
                .expect("a sharp step"),
        )
    }

    fn spans_named<'a>(events: &'a [Event], name: &str) -> Vec<&'a Event> {
        events.iter().filter(|event| event.name == name).collect()
    }

    fn full_checkpoint(count: u64, base: u64) -> Vec<TimelineEvent> {
        let steps = [
            sharp("started"),
            sharp("begin-record-logged"),
            sharp("pending-bits-set"),
            page(0),
            page(1),
            sharp("data-synced"),
            sharp("translation-written"),
            sharp("translation-synced"),
            sharp("header-written"),
            sharp("header-synced"),
            sharp("end-record-logged"),
            sharp("blocks-freed"),
            sharp("log-trimmed"),
            sharp("finished"),
        ];
        steps
            .into_iter()
            .enumerate()
            .map(|(position, kind)| step(base + 100 * position as u64, count, kind))
            .collect()
    }

    #[test]
    fn a_finished_checkpoint_nests_parts_and_steps_inside_its_span() {
        // Proves the five parts tile the checkpoint and every step span lies inside its part.
        let events = checkpoint_spans(&full_checkpoint(3, 1000), 99_999);
        let outer = spans_named(&events, "checkpoint 3");
        assert_eq!(outer.len(), 1);
        assert_eq!((outer[0].nanos, outer[0].end_nanos()), (1000, 2300));
        assert_eq!(outer[0].args["finished"], true);
        let parts: Vec<(&str, u64, u64)> = ["begin", "pages", "translation", "header", "end"]
            .iter()
            .map(|name| {
                let part = spans_named(&events, name);
                assert_eq!(part.len(), 1, "one {name} part");
                (*name, part[0].nanos, part[0].end_nanos())
            })
            .collect();
        assert_eq!(
            parts,
            [
                ("begin", 1000, 1200),
                ("pages", 1200, 1500),
                ("translation", 1500, 1700),
                ("header", 1700, 1900),
                ("end", 1900, 2300),
            ]
        );
        let pages = spans_named(&events, "page write");
        assert_eq!(pages.len(), 2);
        assert_eq!((pages[0].nanos, pages[0].end_nanos()), (1200, 1300));
        assert_eq!(pages[1].args["page_id"], 11);
        for event in &events {
            assert!(
                event.nanos >= 1000 && event.end_nanos() <= 2300,
                "{event:?}"
            );
        }
        // Each part comes before the steps it holds, so a stable sort keeps the nesting.
        let pages_part = events.iter().position(|event| event.name == "pages");
        let first_page = events.iter().position(|event| event.name == "page write");
        assert!(pages_part < first_page);
    }

    #[test]
    fn an_abandoned_checkpoint_closes_at_the_next_start() {
        // Proves a checkpoint with no Finished ends where the next one starts, not later.
        let mut timeline = vec![
            step(100, 1, sharp("started")),
            step(200, 1, sharp("begin-record-logged")),
            step(300, 1, sharp("pending-bits-set")),
            step(400, 1, page(0)),
        ];
        timeline.extend(full_checkpoint(2, 1000));
        let events = checkpoint_spans(&timeline, 99_999);
        let first = spans_named(&events, "checkpoint 1");
        assert_eq!((first[0].nanos, first[0].end_nanos()), (100, 1000));
        assert_eq!(first[0].args["finished"], false);
        assert_eq!(first[0].args["last_step"], "page-written");
        let pages: Vec<_> = spans_named(&events, "pages")
            .into_iter()
            .filter(|event| event.args["count"] == 1)
            .collect();
        assert_eq!((pages[0].nanos, pages[0].end_nanos()), (300, 1000));
        assert_eq!(pages[0].args["interrupted"], true);
        assert_eq!(
            spans_named(&events, "checkpoint 2")[0].args["finished"],
            true
        );
    }

    #[test]
    fn a_crash_closes_the_open_checkpoint_and_opens_the_next_part() {
        // Proves a crash ends the checkpoint and the part it had moved on to, even one with no
        // step of its own yet.
        let timeline = vec![
            step(100, 4, sharp("started")),
            step(200, 4, sharp("begin-record-logged")),
            step(300, 4, sharp("pending-bits-set")),
            step(400, 4, sharp("data-synced")),
            TimelineEvent::Crash {
                phase: 0,
                nanos: 700,
                cause: "random time".to_string(),
            },
            // After recovery the counts start again from the recovered checkpoint.
            step(900, 4, sharp("started")),
        ];
        let events = checkpoint_spans(&timeline, 1500);
        let outer = spans_named(&events, "checkpoint 4");
        assert_eq!(outer.len(), 2);
        assert_eq!((outer[0].nanos, outer[0].end_nanos()), (100, 700));
        let translation = spans_named(&events, "translation");
        assert_eq!(
            (translation[0].nanos, translation[0].end_nanos()),
            (400, 700)
        );
        // The second never got past `started`; it runs to the end of the run.
        assert_eq!((outer[1].nanos, outer[1].end_nanos()), (900, 1500));
        assert_eq!(spans_named(&events, "begin")[1].end_nanos(), 1500);
    }

    fn call(index: u64, time_nanos: u64, file: &str) -> (u32, TraceEvent) {
        (
            0,
            TraceEvent {
                index,
                time_nanos,
                op: "write",
                file: file.to_string(),
                offset: 0,
                len: 512,
                result: Ok(512),
                fault: None,
            },
        )
    }

    #[test]
    fn io_spans_on_one_file_never_overlap() {
        // Proves a call's span is cut short at the previous call on its file, and only there.
        let trace = [
            call(1, 5_000_000, "data"),
            call(2, 5_400_000, "data"),
            call(3, 5_400_000, "log.0"),
            call(4, 5_400_000, "data"),
            call(5, 2_000_000, ""),
        ];
        let mut disk = DiskTracks::default();
        let spans = io_spans(&trace, 1_000_000, &mut disk);
        let bounds: Vec<(u64, u64)> = spans
            .iter()
            .map(|event| (event.nanos, event.end_nanos()))
            .collect();
        assert_eq!(
            bounds,
            [
                (4_000_000, 5_000_000),
                (5_000_000, 5_400_000),
                (4_400_000, 5_400_000),
                (5_400_000, 5_400_000),
                (1_000_000, 2_000_000),
            ]
        );
        assert_eq!(disk.threads["data"], 1);
        assert_eq!(disk.threads["log.0"], 2);
        assert_eq!(disk.threads[DIRECTORY_TRACK], 3);
    }

    #[test]
    fn faults_land_at_their_call_or_at_the_crash() {
        // Proves a running-disk fault is placed at the call it hit and crash damage at the crash.
        let trace = [call(7, 3_000, "data")];
        let record = |kind, index| {
            (
                0,
                FaultRecord {
                    index,
                    kind,
                    file: "data".to_string(),
                    offset: 0,
                    len: 512,
                    detail: String::new(),
                    damaged: Vec::new(),
                },
            )
        };
        let faults = [
            record(FaultKind::LyingFsync, 7),
            record(FaultKind::TornWrite, 7),
        ];
        let crashes = BTreeMap::from([(0, 9_000)]);
        let events = fault_instants(&faults, &trace, &crashes, &mut DiskTracks::default());
        let placed: Vec<(&str, u64, &str)> = events
            .iter()
            .map(|event| (event.name.as_str(), event.nanos, event.category))
            .collect();
        assert_eq!(
            placed,
            [
                ("lying-fsync", 3_000, "fault"),
                ("torn-write", 9_000, "fault")
            ]
        );
    }

    #[test]
    fn timestamps_are_microseconds() {
        // Proves the unit conversion: whole microseconds as integers, the rest as fractions.
        assert_eq!(micros(5_000), json!(5));
        assert_eq!(micros(1_500), json!(1.5));
    }
}
