//! What several test files share.

/// redb-torn-writes with torn sectors that may hold garbage: redb refuses a database whose
/// header a crash tore (`redb_findings.rs`), a failure that needs the crash on the header's
/// write. Kept out of `scenarios/` because CI sweeps `scenarios/redb-*.toml` and expects them
/// to pass.
pub const REDB_TORN_WITH_GARBAGE: &str = r#"
subject = "redb"
default = false
crashes_per_seed = 3

[workload]
keys = 200

[faults]
sector_size_bytes = 128

[crash]
mode = "io"
io_max = 200
survive = 0.2
vanish = 0.2
torn = 0.6
garbage = true
"#;
