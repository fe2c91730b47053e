//! Where a report came from: the binary that wrote it (its version and the git commit it was
//! built from, see `sim/build.rs`) and a digest of each scenario it ran, so that `merge` can
//! refuse reports that do not belong together.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The `crashpoint` binary that wrote a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binary {
    /// The simulator crate's version.
    pub version: String,
    /// The commit it was built from (`git rev-parse HEAD`), or `unknown` without git.
    pub git_hash: String,
}

impl Binary {
    /// This binary.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_hash: env!("CRASHPOINT_GIT_HASH").to_string(),
        }
    }
}

/// `crashpoint 0.1.0 (git 1a2b3c4d5e6f)`.
impl fmt::Display for Binary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.git_hash.get(..12).unwrap_or(&self.git_hash);
        write!(formatter, "crashpoint {} (git {short})", self.version)
    }
}

/// A digest of what a scenario runs: its parsed configuration (strategy included, so a
/// scenario under two strategies has two digests) and the contents of its schedule file, if
/// any. The file's path is left out, so the same file checked out in different places on
/// different machines has one digest; comments and formatting are left out with the parsing.
/// 16 hex digits of FNV-1a 64.
pub fn scenario_digest(scenario: &Scenario) -> String {
    let mut configuration = scenario.clone();
    configuration.path = Default::default();
    let schedule = configuration
        .schedule
        .take()
        .map(|path| std::fs::read(&path).unwrap_or_else(|_| path.display().to_string().into()));
    let text = serde_json::to_vec(&configuration).expect("a scenario serializes");
    let mut hash = Fnv1a::new();
    hash.feed(&text);
    if let Some(schedule) = schedule {
        hash.feed(&schedule);
    }
    format!("{:016x}", hash.finish())
}

/// FNV-1a 64 over length-prefixed parts, so that moving bytes between parts changes it.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str, path: &str) -> Scenario {
        Scenario::parse(text, Path::new(path)).unwrap()
    }

    // The digest follows what runs, not where the file lives or how it is written: the same
    // settings in another place, with other comments, digest alike; a changed setting or
    // strategy does not.
    #[test]
    fn digest_follows_the_configuration() {
        let here = parse("[workload]\nclients = 2\n", "scenarios/smoke.toml");
        let elsewhere = parse(
            "# a comment\n[workload]\nclients    = 2\n",
            "/srv/checkout/scenarios/smoke.toml",
        );
        assert_eq!(scenario_digest(&here), scenario_digest(&elsewhere));
        assert_eq!(scenario_digest(&here).len(), 16);
        let changed = parse("[workload]\nclients = 3\n", "scenarios/smoke.toml");
        assert_ne!(scenario_digest(&here), scenario_digest(&changed));
        let fuzzy = here.with_strategy(crashpoint::Strategy::Fuzzy).unwrap();
        assert_ne!(scenario_digest(&here), scenario_digest(&fuzzy));
        let renamed = parse("[workload]\nclients = 2\n", "scenarios/other.toml");
        assert_ne!(scenario_digest(&here), scenario_digest(&renamed));
    }

    // The binary names its version and a git hash (or `unknown` without git), and prints short.
    #[test]
    fn the_binary_names_its_version_and_commit() {
        let binary = Binary::current();
        assert_eq!(binary.version, env!("CARGO_PKG_VERSION"));
        assert!(
            !binary.git_hash.is_empty() && !binary.git_hash.contains(char::is_whitespace),
            "{:?}",
            binary.git_hash
        );
        let shown = Binary {
            version: "1.2.3".to_string(),
            git_hash: "0123456789abcdef0123".to_string(),
        }
        .to_string();
        assert_eq!(shown, "crashpoint 1.2.3 (git 0123456789ab)");
    }
}
