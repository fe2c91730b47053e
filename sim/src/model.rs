//! The reference model: a `BTreeMap` and the commit history in log order.
//!
//! The engine reports every commit to its observer when the commit is appended to the log,
//! under the engine's latch, so the history is in LSN order and the live model equals the
//! engine's state whenever the latch is free. After a crash, a correct recovery equals the
//! model after the prefix of that history that lies before the recovered log end.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crashpoint::{Lsn, Write};

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

pub fn apply(state: &mut State, writes: &[Write]) {
    for write in writes {
        match &write.value {
            Some(value) => {
                state.insert(write.key.clone(), value.clone());
            }
            None => {
                state.remove(&write.key);
            }
        }
    }
}

/// Every commit that may still be on disk, in log order, and which are known durable.
///
/// LSNs keep growing across crashes (a recovered log continues from its end), so one history
/// serves the whole seed. After a recovery the commits it lost are dropped and the ones it kept
/// become durable facts: a later recovery that loses them must be excused by a fault.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Commits in log order.
    pub commits: Vec<(Lsn, Vec<Write>)>,
    /// LSNs of commits that returned `durable: true` or survived a recovery.
    pub acknowledged_durable: BTreeSet<Lsn>,
    /// Commits acknowledged durable after an fsync of the log failed and before any recovery,
    /// although their records were not durable when it failed: each with the failed fsync in
    /// words. PostgreSQL's rule makes every one a failure, and no fsync error excuses losing
    /// one.
    pub acknowledged_after_fsync_error: BTreeMap<Lsn, String>,
    /// One past the last byte of each commit's record, as the engine reported it (a record's
    /// size is the strategy's business, not the model's). A later record at a reused LSN
    /// replaces an earlier one.
    pub record_ends: BTreeMap<Lsn, u64>,
    /// Every commit applied: what a read sees now.
    pub live: State,
    /// The state after the first `base_len` commits (the last recovered state), so checking a
    /// later prefix replays only what came since instead of the whole history.
    base: State,
    base_len: usize,
}

impl Model {
    pub fn record_commit(&mut self, lsn: Lsn, end: Lsn, writes: &[Write]) {
        self.record_ends.insert(lsn, end.0);
        debug_assert!(
            self.commits.last().is_none_or(|(last, _)| *last < lsn),
            "commits arrive in LSN order"
        );
        apply(&mut self.live, writes);
        self.commits.push((lsn, writes.to_vec()));
    }

    /// Number of commits whose records start before `log_end`: the prefix a recovery that
    /// kept the log up to `log_end` must hold.
    pub fn prefix_before(&self, log_end: Lsn) -> usize {
        self.commits.partition_point(|(lsn, _)| *lsn < log_end)
    }

    pub fn state_after(&self, prefix: usize) -> State {
        let (mut state, from) = if prefix >= self.base_len {
            (self.base.clone(), self.base_len)
        } else {
            (State::new(), 0)
        };
        for (_, writes) in &self.commits[from..prefix] {
            apply(&mut state, writes);
        }
        state
    }

    /// One past the last byte of the commit record at `lsn`, if the history holds it.
    pub fn record_end(&self, lsn: Lsn) -> Option<u64> {
        self.commits
            .binary_search_by_key(&lsn, |(lsn, _)| *lsn)
            .ok()?;
        self.record_ends.get(&lsn).copied()
    }

    /// Durable commits outside the first `prefix` commits.
    pub fn lost_durable(&self, prefix: usize) -> Vec<Lsn> {
        self.commits[prefix..]
            .iter()
            .map(|(lsn, _)| *lsn)
            .filter(|lsn| self.acknowledged_durable.contains(lsn))
            .collect()
    }

    /// The longest prefix length whose state equals `found`.
    pub fn matching_prefix(&self, found: &State) -> Option<usize> {
        let mut state = State::new();
        let mut matches = (&state == found).then_some(0);
        for (index, (_, writes)) in self.commits.iter().enumerate() {
            apply(&mut state, writes);
            if &state == found {
                matches = Some(index + 1);
            }
        }
        matches
    }

    /// A recovery kept the first `prefix` commits, whose state is `state`: drop the rest, and
    /// remember the kept ones as durable (they are on disk now).
    pub fn recovered(&mut self, prefix: usize, state: State) {
        debug_assert_eq!(
            state,
            self.state_after(prefix),
            "the recovered state was checked first"
        );
        self.commits.truncate(prefix);
        self.acknowledged_durable = self.commits.iter().map(|(lsn, _)| *lsn).collect();
        self.acknowledged_after_fsync_error.clear();
        self.base = state.clone();
        self.base_len = prefix;
        self.live = state;
    }

    /// The model as it stood when only the first `len` commits had happened and `acknowledged`
    /// were known durable (for checking states recorded mid-run). An acknowledgement after a
    /// failed fsync had happened by then if its commit was acknowledged by then.
    pub fn truncated(&self, len: usize, acknowledged_durable: BTreeSet<Lsn>) -> Model {
        let keep_base = self.base_len <= len;
        let acknowledged_after_fsync_error = self
            .acknowledged_after_fsync_error
            .iter()
            .filter(|(lsn, _)| acknowledged_durable.contains(lsn))
            .map(|(lsn, failed)| (*lsn, failed.clone()))
            .collect();
        let mut model = Model {
            commits: self.commits[..len].to_vec(),
            acknowledged_durable,
            acknowledged_after_fsync_error,
            record_ends: self.record_ends.clone(),
            live: State::new(),
            base: if keep_base {
                self.base.clone()
            } else {
                State::new()
            },
            base_len: if keep_base { self.base_len } else { 0 },
        };
        model.live = model.state_after(len);
        model
    }

    /// Every commit is durable (after a clean close).
    pub fn all_durable(&mut self) {
        self.acknowledged_durable = self.commits.iter().map(|(lsn, _)| *lsn).collect();
    }
}

/// The first difference between two states, in words: key, expected and found value. When both
/// values exist, they are shown from just before the first byte where they differ, so that a
/// single flipped bit deep in a long value is visible in the message.
pub fn first_difference(expected: &State, found: &State) -> Option<String> {
    if expected == found {
        return None;
    }
    let keys: BTreeSet<&Vec<u8>> = expected.keys().chain(found.keys()).collect();
    for key in keys {
        let (left, right) = (expected.get(key), found.get(key));
        if left != right {
            let mut text = String::new();
            let _ = write!(text, "key {}: ", show(Some(key)));
            match (left, right) {
                (Some(left), Some(right)) => {
                    let at = left
                        .iter()
                        .zip(right.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(left.len().min(right.len()));
                    let from = if at < SHOWN { 0 } else { at - SHOWN / 3 };
                    let _ = write!(
                        text,
                        "expected {}, found {}",
                        show_from(left, from),
                        show_from(right, from)
                    );
                    if from > 0 {
                        let _ = write!(text, " (first difference at byte {at})");
                    }
                }
                _ => {
                    let _ = write!(text, "expected {}, found {}", show(left), show(right));
                }
            }
            return Some(text);
        }
    }
    None
}

/// How many bytes of a key or value a message shows.
const SHOWN: usize = 24;

/// A key or value for a message: printable ASCII as text, else hex; long values cut.
pub fn show(bytes: Option<&Vec<u8>>) -> String {
    match bytes {
        Some(bytes) => show_from(bytes, 0),
        None => "nothing".to_string(),
    }
}

/// [`SHOWN`] bytes of `bytes` starting at `from`, with `…` where cut and the whole length when
/// anything is cut.
fn show_from(bytes: &[u8], from: usize) -> String {
    let from = from.min(bytes.len());
    let end = bytes.len().min(from + SHOWN);
    let cut = &bytes[from..end];
    let before = if from > 0 { "…" } else { "" };
    let after = if end < bytes.len() { "…" } else { "" };
    let length = if from > 0 || end < bytes.len() {
        format!(" ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    let text = if cut.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(cut))
    } else {
        let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    };
    format!("{before}{text}{after}{length}")
}

/// A stable 64-bit digest of a state (FNV-1a over lengths and bytes).
pub fn digest(state: &State) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (key, value) in state {
        feed(key);
        feed(value);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(model: &mut Model, lsn: u64, key: &str, value: Option<&str>) {
        let write = Write {
            key: key.into(),
            value: value.map(Into::into),
        };
        model.record_commit(Lsn(lsn), Lsn(lsn + 1), &[write]);
    }

    #[test]
    fn prefixes_follow_log_order() {
        // Proves prefix states, the LSN cut and the durable-loss list agree with log order.
        let mut model = Model::default();
        commit(&mut model, 10, "a", Some("1"));
        commit(&mut model, 20, "a", Some("2"));
        commit(&mut model, 30, "b", Some("3"));
        model.acknowledged_durable.insert(Lsn(30));
        assert_eq!(model.prefix_before(Lsn(25)), 2);
        let state = model.state_after(2);
        assert_eq!(state.get(b"a".as_slice()), Some(&b"2".to_vec()));
        assert!(!state.contains_key(b"b".as_slice()));
        assert_eq!(model.lost_durable(2), vec![Lsn(30)]);
        assert_eq!(model.matching_prefix(&state), Some(2));
        assert_eq!(model.live, model.state_after(3));
        model.recovered(2, state.clone());
        assert_eq!(model.commits.len(), 2);
        assert_eq!(model.lost_durable(1), vec![Lsn(20)]);
        assert_eq!(model.live, state);
    }

    #[test]
    fn first_difference_names_key_expected_and_found() {
        // Proves the divergence message carries the key and both values.
        let mut expected = State::new();
        expected.insert(b"k".to_vec(), b"v1".to_vec());
        let mut found = expected.clone();
        found.insert(b"k".to_vec(), b"v2".to_vec());
        let message = first_difference(&expected, &found).unwrap();
        assert!(
            message.contains("\"k\"") && message.contains("\"v1\"") && message.contains("\"v2\""),
            "{message}"
        );
        assert_eq!(first_difference(&expected, &expected), None);
    }

    #[test]
    fn first_difference_shows_where_long_values_differ() {
        // Proves a one-byte change past the shown prefix appears in the message, with its index.
        let value = b"p1c1t22-acgtstojhpzidvgjqwertyuiopasdfghjkl".to_vec();
        let mut changed = value.clone();
        changed[37] ^= 0x01;
        let expected = State::from([(b"k".to_vec(), value.clone())]);
        let found = State::from([(b"k".to_vec(), changed.clone())]);
        let message = first_difference(&expected, &found).unwrap();
        let window = |bytes: &[u8]| String::from_utf8_lossy(&bytes[29..bytes.len()]).to_string();
        assert!(
            message.contains(&window(&value))
                && message.contains(&window(&changed))
                && message.contains("first difference at byte 37")
                && message.contains(&format!("({} bytes)", value.len())),
            "{message}"
        );
    }
}
