//! A sweep split three ways and merged equals one unsharded run of the same seeds in every
//! outcome, failure kind, digest and count, however the split is made (`--shard K/N`,
//! `--shard-count N` with JOB_COMPLETION_INDEX, `--partition hash:K/N`) and in whatever order
//! the reports come; merge names missing and duplicate seeds (exit 1) and refuses reports that
//! do not belong together (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

fn crashpoint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crashpoint"));
    command
        .env_remove("CRASHPOINT_SEED")
        .env_remove("JOB_COMPLETION_INDEX")
        .env("CI", "1");
    command
}

fn run(arguments: &[&str], json: &Path) -> Output {
    let output = crashpoint()
        .args(arguments)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn merge(reports: &[PathBuf], extra: &[&str]) -> Output {
    crashpoint()
        .arg("merge")
        .args(reports)
        .args(extra)
        .output()
        .unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// A report without what may differ between equal runs: wall-clock figures, paths, shards.
fn deterministic(mut report: Value) -> Value {
    for summary in report["summaries"].as_array_mut().unwrap() {
        let summary = summary.as_object_mut().unwrap();
        for field in ["elapsed_seconds", "checks_per_second", "path"] {
            assert!(summary.remove(field).is_some(), "{field}");
        }
    }
    for planned in report["scenarios"].as_array_mut().unwrap() {
        let planned = planned.as_object_mut().unwrap();
        planned.remove("path");
        planned.remove("shard");
    }
    report
}

/// Two scenarios under every strategy, seeds 0..60.
const SWEEP: [&str; 7] = [
    "run",
    "smoke",
    "torn-writes",
    "--seeds",
    "0..60",
    "--strategy",
    "all",
];

#[test]
fn three_shards_merged_in_any_order_equal_one_unsharded_run() {
    // Proves the promise: the merge of 3 shards is the unsharded run, seed for seed, and merge --compare agrees.
    let directory = scratch("merge_three_shards");
    let single = directory.join("single.json");
    run(&SWEEP, &single);
    let shards: Vec<PathBuf> = (0..3)
        .map(|index| {
            let path = directory.join(format!("shard-{index}.json"));
            let shard = format!("{index}/3");
            run(&[&SWEEP[..], &["--shard", &shard]].concat(), &path);
            path
        })
        .collect();
    let merged = directory.join("merged.json");
    let shuffled = [shards[2].clone(), shards[0].clone(), shards[1].clone()];
    let output = merge(
        &shuffled,
        &[
            "--json",
            merged.to_str().unwrap(),
            "--compare",
            single.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("scenario "),
        "the table run prints: {stdout}"
    );
    assert!(
        stdout.contains("merged 3 reports: all 360 seeds passed"),
        "{stdout}"
    );
    assert!(stdout.contains("equals"), "{stdout}");

    // Checked here too, without trusting --compare.
    let (merged, single) = (read(&merged), read(&single));
    assert_eq!(merged["outcomes"].as_array().unwrap().len(), 360);
    assert_eq!(merged["complete"], true);
    assert_eq!(merged["passed"], true);
    assert_eq!(deterministic(merged.clone()), deterministic(single));
    for shard in &shards {
        let shard = read(shard);
        assert_eq!(shard["binary"], merged["binary"]);
        assert_eq!(shard["scenarios"][0]["seed_ranges"][0], "0..60");
        assert_eq!(shard["scenarios"][0]["seeds_requested"], 20);
    }
    assert_eq!(merged["scenarios"][0]["shard"], Value::Null);
}

#[test]
fn job_completion_index_and_hash_partitions_split_the_same_sweep() {
    // Proves --shard-count 3 with JOB_COMPLETION_INDEX=K runs exactly --shard K/3 (and without the flag says every seed runs), and hash:K/3 partitions also merge into the one run.
    let directory = scratch("merge_job_index_and_hash");
    let sweep = ["run", "smoke", "--seeds", "0..60"];
    let single = directory.join("single.json");
    run(&sweep, &single);
    let mut hashed = Vec::new();
    for index in 0..3 {
        let from_job = directory.join(format!("job-{index}.json"));
        let output = crashpoint()
            .args(sweep)
            .args(["--shard-count", "3", "--json"])
            .arg(&from_job)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let explicit = directory.join(format!("shard-{index}.json"));
        run(
            &[&sweep[..], &["--shard", &format!("{index}/3")]].concat(),
            &explicit,
        );
        assert_eq!(
            deterministic(read(&from_job)),
            deterministic(read(&explicit))
        );
        assert_eq!(
            read(&from_job)["scenarios"][0]["shard"],
            format!("{index}/3")
        );

        let partition = directory.join(format!("hash-{index}.json"));
        run(
            &[
                &sweep[..],
                &["--partition", &format!("hash:{}/3", index + 1)],
            ]
            .concat(),
            &partition,
        );
        hashed.push(partition);
    }
    let sizes: Vec<usize> = hashed
        .iter()
        .map(|path| read(path)["outcomes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 60);
    assert!(sizes.iter().all(|size| *size > 5), "{sizes:?}");
    let output = merge(&hashed, &["--compare", single.to_str().unwrap(), "--quiet"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let missing_index = crashpoint()
        .args(sweep)
        .args(["--shard-count", "3"])
        .output()
        .unwrap();
    assert_eq!(missing_index.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing_index.stderr).contains("JOB_COMPLETION_INDEX"));
    let forgotten_flag = crashpoint()
        .args(sweep)
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(forgotten_flag.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&forgotten_flag.stderr).contains(
            "note: JOB_COMPLETION_INDEX is set but none of --shard-count, --shard, --partition"
        ),
        "{}",
        String::from_utf8_lossy(&forgotten_flag.stderr)
    );
}

#[test]
fn missing_and_duplicate_seeds_fail_the_merge_and_are_named() {
    // Proves a lost shard and a shard given twice each make merge exit 1, naming the seeds, with the merged report marked incomplete.
    let directory = scratch("merge_missing_duplicate");
    let shards: Vec<PathBuf> = (0..3)
        .map(|index| {
            let path = directory.join(format!("shard-{index}.json"));
            run(
                &[
                    "run",
                    "smoke",
                    "--seeds",
                    "0..60",
                    "--shard",
                    &format!("{index}/3"),
                ],
                &path,
            );
            path
        })
        .collect();
    let merged = directory.join("merged.json");
    let output = merge(&shards[..2], &["--json", merged.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("missing: smoke (sharp): 20 seeds: 2..=59 step 3"),
        "{stdout}"
    );
    let report = read(&merged);
    assert_eq!(report["complete"], false);
    assert_eq!(report["passed"], false);
    assert_eq!(report["missing_seeds"][0]["count"], 20);

    let twice = [&shards[..], &shards[1..2]].concat();
    let output = merge(&twice, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ran more than once: smoke (sharp): 20 seeds: 1..=58 step 3"),
        "{stdout}"
    );
    assert!(!stdout.contains("different outcomes"), "{stdout}");
}

#[test]
fn reports_that_do_not_belong_together_are_refused() {
    // Proves merge exits 2, naming the reason, for reports of other scenario files, strategies or binaries, and exits 1 when --compare finds a difference.
    let directory = scratch("merge_refused");
    let shard = |name: &str, arguments: &[&str], index: u64| {
        let path = directory.join(name);
        let shard = format!("{index}/2");
        run(
            &[arguments, &["--seeds", "0..10", "--shard", &shard]].concat(),
            &path,
        );
        path
    };
    let sharp = shard("sharp-0.json", &["run", "smoke"], 0);
    let fuzzy = shard("fuzzy-1.json", &["run", "smoke", "--strategy", "fuzzy"], 1);
    let edited_file = directory.join("smoke.toml");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml"),
    )
    .unwrap();
    std::fs::write(&edited_file, original.replace("clients = 2", "clients = 3")).unwrap();
    let edited = shard("edited-1.json", &["run", edited_file.to_str().unwrap()], 1);
    let expect_refusal = |reports: &[PathBuf], reason: &str| {
        let output = merge(reports, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(reason), "{reason}: {stderr}");
    };
    expect_refusal(&[sharp.clone(), fuzzy], "different strategies");
    expect_refusal(&[sharp.clone(), edited], "different scenario files");
    let mut other_build = read(&sharp);
    other_build["binary"]["git_hash"] = Value::from("0000000000000000000000000000000000000000");
    let other_build_path = directory.join("other-build.json");
    write(&other_build_path, &other_build);
    expect_refusal(&[sharp.clone(), other_build_path], "different binaries");
    let not_a_report = directory.join("not-a-report.json");
    std::fs::write(&not_a_report, "{}").unwrap();
    expect_refusal(&[not_a_report], "is not a crashpoint JSON report");

    let mut changed = read(&sharp);
    changed["outcomes"][2]["final_state_digest"] = Value::from(1u64);
    let changed_path = directory.join("changed.json");
    write(&changed_path, &changed);
    let output = merge(&[sharp], &["--compare", changed_path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("smoke (sharp) seed 4 final_state_digest: "),
        "{stdout}"
    );
}
