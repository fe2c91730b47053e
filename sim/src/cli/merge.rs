//! `crashpoint merge`: the JSON reports of a sweep's shards, any number in any order, become
//! one report (see [`crate::report::merge`]), printed as `run` prints its own: the summary
//! table, each failure with its replay line, the verdict. With `--compare`, the merged report
//! must also equal another report, for example one unsharded run, in everything a run
//! determines.
//!
//! Exit codes: 0 when the merged report is complete and every check held; 1 when a seed
//! failed, seeds are missing or ran more than once, or `--compare` found a difference; 2 when a
//! report cannot be read or the reports do not belong together (different binaries, canaries,
//! strategies or scenario files), since then there is no merged run to judge.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::output::{Human, ReportFile};
use super::{MergeArguments, EXIT_CHECK_FAILED, EXIT_SUCCESS};
use crate::report::{differences, merge as merge_reports, JsonReport, NamedReport};

/// Differences `--compare` prints before saying how many more there are.
const DIFFERENCES_SHOWN: usize = 20;

pub fn merge(arguments: MergeArguments) -> anyhow::Result<i32> {
    let reports = arguments
        .reports
        .iter()
        .map(|path| read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let compare = match &arguments.compare {
        Some(path) => Some(read(path)?),
        None => None,
    };
    let merged = merge_reports(&reports).context("cannot merge these reports")?;
    let json = match &arguments.json {
        Some(path) => Some(ReportFile::create(path, "JSON report", true)?),
        None => None,
    };
    let junit = match &arguments.junit {
        Some(path) => Some(ReportFile::create(path, "JUnit report", false)?),
        None => None,
    };
    let mut human = Human::new(
        &arguments.output,
        json.as_ref().is_some_and(ReportFile::is_stdout),
    );
    let failed = print_merged(&mut human, &reports, &merged)?;
    let mut code = verdict(&mut human, &merged, reports.len(), failed)?;
    if let Some(other) = &compare {
        if !equals(&mut human, &merged, other)? {
            code = EXIT_CHECK_FAILED;
        }
    }
    if let Some(json) = json {
        json.write("JSON report", |out| {
            merged.write(&mut *out).map_err(std::io::Error::from)
        })?;
    }
    if let Some(junit) = junit {
        junit.write("JUnit report", |out| {
            crate::junit::write(
                out,
                &merged.summaries,
                &merged.outcomes,
                merged.canary.as_deref(),
            )
        })?;
    }
    human.flush()?;
    Ok(code)
}

/// Prints which runs stopped early, the table, the failures with their replay lines, and the
/// missing, duplicate and conflicting seeds; returns how many seeds failed.
fn print_merged(
    human: &mut Human,
    reports: &[NamedReport],
    merged: &JsonReport,
) -> std::io::Result<u64> {
    if !human.quiet {
        for named in reports {
            if let Some(stopped) = &named.report.stopped {
                human.line(format!(
                    "{}: that run stopped early ({stopped})",
                    named.name
                ))?;
            }
        }
    }
    let no_path = PathBuf::new();
    let failed = human.table_and_failures(
        &merged.summaries,
        merged.outcomes.iter().map(|outcome| {
            let path = merged
                .planned(outcome)
                .map_or(&no_path, |planned| &planned.path);
            (outcome, path.as_path())
        }),
        merged.canary.as_deref(),
    )?;
    for (what, groups) in [
        ("missing", &merged.missing_seeds),
        ("ran more than once", &merged.duplicate_seeds),
        (
            "ran more than once with different outcomes",
            &merged.conflicting_seeds,
        ),
    ] {
        for group in groups {
            let line = format!("{what}: {group}");
            human.line(human.yellow(&line))?;
        }
    }
    Ok(failed)
}

/// `--compare`: whether the merged report equals `other` in everything a run determines,
/// printing the first differences when it does not.
fn equals(human: &mut Human, merged: &JsonReport, other: &NamedReport) -> std::io::Result<bool> {
    let found = differences(
        "the merged report",
        merged,
        &other.name,
        &other.report,
        DIFFERENCES_SHOWN,
    );
    if found.is_empty() {
        human.line(human.green(&format!(
            "the merged report equals {} in every outcome, count and digest",
            other.name
        )))?;
        return Ok(true);
    }
    human.line(human.red(&format!("the merged report differs from {}:", other.name)))?;
    for line in found {
        human.line(format!("  {line}"))?;
    }
    Ok(false)
}

/// Prints the verdict on the merged seeds and returns its exit code.
fn verdict(
    human: &mut Human,
    merged: &JsonReport,
    reports: usize,
    failed: u64,
) -> anyhow::Result<i32> {
    let total = merged.outcomes.len();
    let verdict = if failed > 0 {
        human.red(&format!("{failed} of {total} seeds failed"))
    } else {
        human.green(&format!("all {total} seeds passed"))
    };
    let noun = if reports == 1 { "report" } else { "reports" };
    if merged.complete {
        human.line(format!("merged {reports} {noun}: {verdict}"))?;
    } else {
        let missing: u64 = merged.missing_seeds.iter().map(|group| group.count).sum();
        let duplicate: u64 = merged.duplicate_seeds.iter().map(|group| group.count).sum();
        let incomplete = format!(
            "merged {reports} {noun}, incomplete: {missing} of {} seeds missing, {duplicate} \
             ran more than once",
            merged.seeds_requested
        );
        human.line(format!("{}: {verdict}", human.yellow(&incomplete)))?;
    }
    Ok(if merged.passed {
        EXIT_SUCCESS
    } else {
        EXIT_CHECK_FAILED
    })
}

/// Reads one report; a file that is not a report is a usage error, naming the file.
fn read(path: &Path) -> anyhow::Result<NamedReport> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open report {name}"))?;
    let report = JsonReport::read(file).with_context(|| {
        format!(
            "{name} is not a crashpoint JSON report (written by `run --json` or `merge --json` \
             of this version)"
        )
    })?;
    Ok(NamedReport { name, report })
}
