//! Where `run`, `merge` and `soak` write: the human-readable report (standard output, or
//! standard error when the JSON report takes standard output), whether it is colored, the
//! table and failure lines they share, and the report files, each opened before any seed runs
//! so a bad path fails in a second rather than after the run.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{ColorChoice, OutputArguments};
use crate::outcome::SeedOutcome;
use crate::report::{failure_lines, ScenarioSummary, SummaryTable};

/// The human-readable side of a run.
pub struct Human {
    writer: Box<dyn Write + Send>,
    color: bool,
    pub quiet: bool,
}

impl Human {
    /// Standard output, or standard error when `stdout_taken`.
    pub fn new(arguments: &OutputArguments, stdout_taken: bool) -> Self {
        let (writer, terminal): (Box<dyn Write + Send>, bool) = if stdout_taken {
            (Box::new(io::stderr()), io::stderr().is_terminal())
        } else {
            (Box::new(io::stdout()), io::stdout().is_terminal())
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let color = match arguments.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Self {
            writer,
            color,
            quiet: arguments.quiet,
        }
    }

    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.writer, "{text}")
    }

    pub fn text(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        write!(self.writer, "{text}")
    }

    /// `text` in bold red (failures), when coloring.
    pub fn red(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// `text` in green (a clean verdict), when coloring.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// `text` in yellow (an incomplete run), when coloring.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// The summary table (unless quiet), then for each failing seed what failed and the line
    /// that replays it (`path_of` gives the seed's scenario file); returns the failing seeds.
    pub fn table_and_failures<'a>(
        &mut self,
        summaries: &[ScenarioSummary],
        outcomes: impl IntoIterator<Item = (&'a SeedOutcome, &'a Path)>,
        canary: Option<&str>,
    ) -> io::Result<u64> {
        if !self.quiet {
            self.text(SummaryTable { summaries })?;
        }
        let mut failed = 0;
        for (outcome, path) in outcomes {
            if let Some(failure) = &outcome.failure {
                failed += 1;
                self.failure(&failure_lines(outcome, failure, path, canary))?;
            }
        }
        Ok(failed)
    }

    /// A failure's lines, from `FAIL`, with `FAIL` in red when coloring.
    pub fn failure(&mut self, lines: &str) -> io::Result<()> {
        let rest = lines.strip_prefix("FAIL").unwrap_or(lines);
        let fail = self.red("FAIL");
        self.line(format!("{fail}{rest}"))
    }
}

/// A report destination, opened (created) up front.
pub enum ReportFile {
    Stdout,
    File { path: PathBuf, file: File },
}

impl ReportFile {
    /// `-` is standard output when `dash_is_stdout`; anything else is a file created now.
    pub fn create(path: &Path, what: &str, dash_is_stdout: bool) -> anyhow::Result<Self> {
        if dash_is_stdout && path == Path::new("-") {
            return Ok(ReportFile::Stdout);
        }
        let file = File::create(path)
            .with_context(|| format!("cannot create {what} {}", path.display()))?;
        Ok(ReportFile::File {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, ReportFile::Stdout)
    }

    /// Writes the report through `write` and flushes it.
    pub fn write(
        self,
        what: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            ReportFile::Stdout => {
                let mut out = io::BufWriter::new(io::stdout().lock());
                write(&mut out)
                    .and_then(|()| out.flush())
                    .with_context(|| format!("cannot write {what} to standard output"))
            }
            ReportFile::File { path, file } => {
                let mut out = io::BufWriter::new(file);
                write(&mut out)
                    .and_then(|()| out.flush())
                    .with_context(|| format!("cannot write {what} {}", path.display()))
            }
        }
    }
}
