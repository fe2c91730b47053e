//! Records the git commit the simulator is built from as `CRASHPOINT_GIT_HASH`, so every JSON
//! report can name the binary that wrote it and `merge` can refuse reports of different builds.
//!
//! The hash is `git rev-parse HEAD` of the source tree, or `CRASHPOINT_GIT_HASH` when set at
//! build time (an image built without `.git`), else `unknown`. It names the commit, not
//! uncommitted changes. Cargo reruns this script when HEAD moves: the work tree's own HEAD (in
//! a linked worktree `.git` is a file and HEAD lives in the git directory it names) and the
//! branch HEAD points at (a loose ref, or `packed-refs`).

use std::path::Path;
use std::process::Command;

const VARIABLE: &str = "CRASHPOINT_GIT_HASH";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={VARIABLE}");
    let hash = std::env::var(VARIABLE)
        .ok()
        .filter(|hash| !hash.trim().is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env={VARIABLE}={}", hash.trim());
    watch_head();
}

/// Asks cargo to rerun when HEAD or the branch it points at moves. Only files that exist are
/// named: cargo reruns a script on every build while a named file is missing.
fn watch_head() {
    let Some(git_directory) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    watch(&Path::new(&git_directory).join("HEAD"));
    let (Some(branch), Some(common)) = (
        git(&["symbolic-ref", "-q", "HEAD"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return;
    };
    let common = Path::new(&common);
    watch(&common.join(branch));
    watch(&common.join("packed-refs"));
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The trimmed output of a successful git command, None when git or the repository is missing.
fn git(arguments: &[&str]) -> Option<String> {
    let output = Command::new("git").args(arguments).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
