//! Log segment names as the harness reads them. The verdicts (the oracle, the fsync-error
//! promise, the log-trim check) take file names from the engine's naming contract (the prefix
//! and the decimal start position) but never ask the engine's own parser which files are log
//! segments or where they start: a parser bug must not also blind the check.

use crashpoint::log::{PHYSICAL_LOG_PREFIX, REDO_LOG_PREFIX};

/// The start LSN a redo log segment's name carries (`log-` and decimal digits), if it is one.
pub fn redo_segment_start(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(REDO_LOG_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The redo log segments among `names`, oldest first, by the start LSN their names carry.
pub fn redo_segments(names: &[String]) -> Vec<(u64, String)> {
    let mut segments: Vec<(u64, String)> = names
        .iter()
        .filter_map(|name| Some((redo_segment_start(name)?, name.clone())))
        .collect();
    segments.sort();
    segments
}

/// Whether `name` is one of the engine's logs (redo or physical), by its prefix alone.
pub fn is_log_file(name: &str) -> bool {
    [REDO_LOG_PREFIX, PHYSICAL_LOG_PREFIX]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse_by_prefix_and_decimal_start() {
        // Proves the harness reads the engine's names (and only those) without its parser.
        for start in [0, 4096, u64::MAX] {
            let name = crashpoint::log::segment_name(start);
            assert_eq!(redo_segment_start(&name), Some(start), "{name}");
            assert!(is_log_file(&name));
        }
        for name in [
            "log-",
            "log-12a",
            "log--1",
            "data",
            "plog-00000000000000000000",
        ] {
            assert_eq!(redo_segment_start(name), None, "{name}");
        }
        assert!(is_log_file("plog-00000000000000000000"));
        assert!(!is_log_file("data"));
        let names = ["log-200", "data", "log-0", "log-3"].map(String::from);
        assert_eq!(
            redo_segments(&names),
            vec![
                (0, "log-0".to_string()),
                (3, "log-3".to_string()),
                (200, "log-200".to_string())
            ]
        );
    }
}
