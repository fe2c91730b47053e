//! `replay --trace`: the Chrome trace-event JSON a replayed seed writes opens in Perfetto and
//! chrome://tracing and shows every task, file, checkpoint step, fault, crash and check.

use std::path::PathBuf;
use std::process::Command;

use crashpoint_sim::chrome_trace;
use crashpoint_sim::driver::{run_seed_full, SeedOptions, SeedRun};
use crashpoint_sim::scenario::Scenario;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenario(name: &str) -> Scenario {
    Scenario::resolve(name, &workspace_root().join("scenarios")).expect("scenario loads")
}

fn traced_run(scenario: &Scenario, seed: u64) -> SeedRun {
    let options = SeedOptions {
        record_trace: true,
        ..SeedOptions::default()
    };
    run_seed_full(scenario, seed, &options)
}

/// The trace of `run` as a parsed JSON document.
fn trace_json(run: &SeedRun, scenario: &Scenario, seed: u64) -> Value {
    let mut bytes = Vec::new();
    let count = chrome_trace::write(run, scenario, seed, &mut bytes).expect("trace writes");
    let document: Value = serde_json::from_slice(&bytes).expect("the trace is valid JSON");
    assert_eq!(
        document["traceEvents"].as_array().map(Vec::len),
        Some(count)
    );
    document
}

fn events(document: &Value) -> &Vec<Value> {
    document["traceEvents"].as_array().expect("traceEvents")
}

fn micros(event: &Value, field: &str) -> f64 {
    event[field].as_f64().unwrap_or(0.0)
}

/// The thread id of the thread named `name` in process `pid`.
fn thread_named(document: &Value, pid: u64, name: &str) -> Option<u64> {
    events(document)
        .iter()
        .find(|event| {
            event["ph"] == "M"
                && event["name"] == "thread_name"
                && event["pid"] == pid
                && event["args"]["name"] == name
        })
        .and_then(|event| event["tid"].as_u64())
}

fn on_thread(document: &Value, pid: u64, tid: u64) -> Vec<&Value> {
    events(document)
        .iter()
        .filter(|event| event["ph"] != "M" && event["pid"] == pid && event["tid"] == tid)
        .collect()
}

#[test]
fn smoke_seed_trace_is_well_formed_and_shows_every_track() {
    // Proves the trace parses, every event is placed and ordered, and each kind of track shows.
    let smoke = scenario("smoke");
    let run = traced_run(&smoke, 1);
    assert!(run.outcome.failure.is_none(), "{:?}", run.outcome.failure);
    let document = trace_json(&run, &smoke, 1);
    assert_eq!(document["displayTimeUnit"], "ms");
    assert_eq!(document["metadata"]["seed"], 1);
    let all = events(&document);
    for event in all {
        for field in ["ph", "ts", "pid", "tid", "name"] {
            assert!(!event[field].is_null(), "{field} missing in {event}");
        }
        if event["ph"] == "X" {
            assert!(micros(event, "dur") >= 0.0, "{event}");
        }
    }
    for pair in all.windows(2) {
        assert!(
            micros(&pair[0], "ts") <= micros(&pair[1], "ts"),
            "out of order: {} then {}",
            pair[0],
            pair[1]
        );
    }

    let checkpointer = thread_named(&document, 1, "checkpointer").expect("checkpointer thread");
    let checkpoint_events = on_thread(&document, 1, checkpointer);
    let checkpoint = checkpoint_events
        .iter()
        .find(|event| {
            event["ph"] == "X"
                && event["name"].as_str().unwrap().starts_with("checkpoint ")
                && event["args"]["page_writes"].as_u64() > Some(0)
        })
        .expect("a checkpoint span that wrote pages");
    let (start, end) = (
        micros(checkpoint, "ts"),
        micros(checkpoint, "ts") + micros(checkpoint, "dur"),
    );
    let nested_pages = checkpoint_events
        .iter()
        .filter(|event| {
            event["name"] == "page write"
                && micros(event, "ts") >= start
                && micros(event, "ts") + micros(event, "dur") <= end
        })
        .count();
    assert!(nested_pages > 0, "no page write inside {checkpoint}");

    let harness = thread_named(&document, 1, "harness").expect("harness thread");
    let harness_events = on_thread(&document, 1, harness);
    let crashes = harness_events
        .iter()
        .filter(|event| event["ph"] == "i" && event["cat"] == "crash")
        .count();
    assert_eq!(crashes as u64, run.outcome.crashes);
    // One check after every crash and one after the final reopen: every state checked.
    let checks = harness_events
        .iter()
        .filter(|event| {
            event["ph"] == "i"
                && event["name"] == "check passed"
                && event["args"]["message"].is_string()
        })
        .count();
    assert_eq!(checks as u64, run.outcome.states_checked);

    let data = thread_named(&document, 2, "data").expect("a data file track");
    let file_tracks: Vec<u64> = all
        .iter()
        .filter(|event| event["ph"] == "M" && event["name"] == "thread_name" && event["pid"] == 2)
        .map(|event| event["tid"].as_u64().unwrap())
        .collect();
    assert!(file_tracks.contains(&data) && file_tracks.len() >= 2);
    for tid in file_tracks {
        assert!(
            on_thread(&document, 2, tid)
                .iter()
                .any(|event| event["ph"] == "X" && event["cat"] == "io"),
            "disk track {tid} has no I/O span"
        );
    }
    let io_spans = all.iter().filter(|event| event["cat"] == "io").count();
    assert_eq!(io_spans, run.trace.len());
}

#[test]
fn commits_appear_as_spans_on_their_client_tracks() {
    // Proves each client gets a track and transactions show there as "commit" spans.
    let smoke = scenario("smoke");
    let run = traced_run(&smoke, 1);
    let document = trace_json(&run, &smoke, 1);
    let client = thread_named(&document, 1, "client 0").expect("client 0 thread");
    assert!(thread_named(&document, 1, "client 1").is_some());
    let commit = on_thread(&document, 1, client)
        .into_iter()
        .find(|event| event["ph"] == "X" && event["name"] == "commit")
        .expect("a commit span on client 0");
    assert!(commit["args"]["writes"].as_u64() > Some(0));
    assert!(commit["args"]["lsn"].is_u64() || commit["args"]["error"].is_string());
}

#[test]
fn injected_faults_appear_as_fault_instants() {
    // Proves every fault the disk injected shows as an instant named after its kind.
    let lying = scenario("lying-fsync");
    let (seed, run) = (0..40)
        .map(|seed| (seed, traced_run(&lying, seed)))
        .find(|(_, run)| {
            run.faults
                .iter()
                .any(|(_, fault)| fault.kind.name() == "lying-fsync")
        })
        .expect("a lying-fsync seed among the first 40 injects a lie");
    let document = trace_json(&run, &lying, seed);
    let faults: Vec<&Value> = events(&document)
        .iter()
        .filter(|event| event["cat"] == "fault")
        .collect();
    assert_eq!(faults.len(), run.faults.len());
    assert!(faults
        .iter()
        .all(|event| event["ph"] == "i" && event["pid"] == 2));
    assert!(faults.iter().any(|event| event["name"] == "lying-fsync"));
}

#[test]
fn replay_with_trace_flag_writes_the_file() {
    // Proves the command line writes the trace and says where.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay_trace_smoke_1.json");
    let _ = std::fs::remove_file(&path);
    let output = Command::new(env!("CARGO_BIN_EXE_crashpoint"))
        .current_dir(workspace_root())
        .args([
            "replay",
            "--scenario",
            "scenarios/smoke.toml",
            "--seed",
            "1",
        ])
        .arg("--trace")
        .arg(&path)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("trace written to {}", path.display())),
        "{stdout}"
    );
    assert!(stdout.contains("ui.perfetto.dev"), "{stdout}");
    assert!(!stderr.contains("not yet available"), "{stderr}");
    let document: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("trace file")).expect("valid JSON");
    assert!(events(&document).len() > 100);
}
