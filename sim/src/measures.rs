//! What a run measured about its checkpoints, in simulated time: checkpoints by trigger and
//! skipped ones, how long each blocking phase held commits up, the checkpoints' total duration,
//! commit latency inside and outside checkpoints, pages and bytes written against bytes
//! committed (write amplification), and the redo replayed at recovery.
//!
//! The engine reports through its observer ([`crate::hub`] folds the callbacks in here); the
//! disk's byte count comes from the simulated disk. Everything is a sum or a histogram so the
//! measures of seeds, shards and scenarios add up the same in any order.

use std::collections::BTreeMap;
use std::time::Duration;

use crashpoint::{CheckpointMeasures, CommitMeasures, Trigger};
use serde::{Deserialize, Serialize};

/// Sub-buckets per power of two: latencies are kept to within 1/8 of their value.
const SUB_BUCKET_BITS: u32 = 3;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// A histogram of nanosecond values in log-linear buckets, with the exact maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Values by bucket index ([`bucket`]).
    pub counts: BTreeMap<u32, u64>,
    pub max_nanos: u64,
}

/// The bucket of `nanos`: exact below 8, else 8 buckets per power of two.
fn bucket(nanos: u64) -> u32 {
    if nanos < SUB_BUCKETS {
        return nanos as u32;
    }
    let exponent = 63 - nanos.leading_zeros();
    let shift = exponent - SUB_BUCKET_BITS;
    let mantissa = (nanos >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS as u32) + shift * SUB_BUCKETS as u32 + mantissa as u32
}

/// The largest value bucket `index` holds.
fn bucket_high(index: u32) -> u64 {
    if u64::from(index) < SUB_BUCKETS {
        return u64::from(index);
    }
    let shift = (index - SUB_BUCKETS as u32) / SUB_BUCKETS as u32;
    let mantissa = u64::from((index - SUB_BUCKETS as u32) % SUB_BUCKETS as u32);
    ((SUB_BUCKETS + mantissa + 1) << shift) - 1
}

impl Histogram {
    pub fn record(&mut self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        *self.counts.entry(bucket(nanos)).or_default() += 1;
        self.max_nanos = self.max_nanos.max(nanos);
    }

    pub fn add(&mut self, other: &Histogram) {
        for (index, count) in &other.counts {
            *self.counts.entry(*index).or_default() += count;
        }
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The value at quantile `q` (0 to 1): the top of the bucket holding it, never above the
    /// maximum; None when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(
                    bucket_high(*index).min(self.max_nanos),
                ));
            }
        }
        Some(Duration::from_nanos(self.max_nanos))
    }
}

/// One run's (or many runs') measures. Every field adds up across seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Measures {
    /// Checkpoints finished, by trigger name.
    pub checkpoints: BTreeMap<String, u64>,
    /// Checkpoints skipped because nothing was logged since the last, by trigger name.
    pub skipped: BTreeMap<String, u64>,
    /// The finished checkpoints' durations, summed, and the longest.
    pub checkpoint_nanos: u64,
    pub checkpoint_max_nanos: u64,
    /// How long checkpoints held the commits' latch, by blocking phase, summed.
    pub blocking_nanos: BTreeMap<String, u64>,
    /// The longest blocking window of one checkpoint (its phases summed).
    pub blocking_max_nanos: u64,
    /// Latency of commits that overlapped a checkpoint, and of the others.
    pub commits_during_checkpoint: Histogram,
    pub commits_outside_checkpoint: Histogram,
    /// Key and value bytes of the commits that returned Ok.
    pub committed_bytes: u64,
    /// Pages the checkpoints wrote, and their bytes.
    pub pages_written: u64,
    pub page_bytes_written: u64,
    /// Every byte the engine wrote to the disk (log, pages, anchors), from the simulated disk.
    pub disk_bytes_written: u64,
    /// Recoveries after a crash, the commits they replayed and the redo they read (log end
    /// minus where replay started).
    pub recoveries: u64,
    pub redo_commits: u64,
    pub redo_bytes: u64,
}

impl Measures {
    pub fn commit(&mut self, commit: &CommitMeasures) {
        self.committed_bytes += commit.bytes;
        if commit.during_checkpoint {
            self.commits_during_checkpoint.record(commit.latency);
        } else {
            self.commits_outside_checkpoint.record(commit.latency);
        }
    }

    pub fn checkpoint(&mut self, trigger: Trigger, measures: &CheckpointMeasures) {
        *self
            .checkpoints
            .entry(trigger.name().to_string())
            .or_default() += 1;
        let duration = nanos(measures.duration);
        self.checkpoint_nanos += duration;
        self.checkpoint_max_nanos = self.checkpoint_max_nanos.max(duration);
        for (phase, held) in &measures.blocking {
            *self.blocking_nanos.entry(phase.to_string()).or_default() += nanos(*held);
        }
        self.blocking_max_nanos = self
            .blocking_max_nanos
            .max(nanos(measures.blocking_total()));
        self.pages_written += measures.pages_written;
        self.page_bytes_written += measures.page_bytes_written;
    }

    pub fn skipped(&mut self, trigger: Trigger) {
        *self.skipped.entry(trigger.name().to_string()).or_default() += 1;
    }

    pub fn add(&mut self, other: &Measures) {
        add_counts(&mut self.checkpoints, &other.checkpoints);
        add_counts(&mut self.skipped, &other.skipped);
        self.checkpoint_nanos += other.checkpoint_nanos;
        self.checkpoint_max_nanos = self.checkpoint_max_nanos.max(other.checkpoint_max_nanos);
        add_counts(&mut self.blocking_nanos, &other.blocking_nanos);
        self.blocking_max_nanos = self.blocking_max_nanos.max(other.blocking_max_nanos);
        self.commits_during_checkpoint
            .add(&other.commits_during_checkpoint);
        self.commits_outside_checkpoint
            .add(&other.commits_outside_checkpoint);
        self.committed_bytes += other.committed_bytes;
        self.pages_written += other.pages_written;
        self.page_bytes_written += other.page_bytes_written;
        self.disk_bytes_written += other.disk_bytes_written;
        self.recoveries += other.recoveries;
        self.redo_commits += other.redo_commits;
        self.redo_bytes += other.redo_bytes;
    }

    pub fn checkpoints_finished(&self) -> u64 {
        self.checkpoints.values().sum()
    }

    /// The blocking windows as a share of the checkpoints' duration (0 to 1).
    pub fn blocking_share(&self) -> f64 {
        ratio(self.blocking_nanos.values().sum(), self.checkpoint_nanos)
    }

    /// Disk bytes written per committed byte.
    pub fn write_amplification(&self) -> f64 {
        ratio(self.disk_bytes_written, self.committed_bytes)
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (name, count) in from {
        *into.entry(name.clone()).or_default() += count;
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_top_is_within_an_eighth_above_it() {
        // Proves the histogram's quantiles overstate a latency by less than 1/8 of it, and
        // that bucket tops increase with the index.
        for nanos in (0..5000).chain([1 << 20, 123_456_789, u64::MAX / 3]) {
            let high = bucket_high(bucket(nanos));
            assert!(high >= nanos, "{nanos} above its bucket top {high}");
            assert!(high - nanos <= nanos / 8, "{nanos}: bucket top {high}");
        }
        assert!((0..200).all(|index| bucket_high(index) < bucket_high(index + 1)));
    }

    #[test]
    fn quantiles_come_from_the_recorded_values_and_add_up_across_histograms() {
        // Proves p50 and p99 of 1..=100 µs are 50 and 99 µs to within a bucket, the maximum is
        // exact, and two halves added give the same histogram as recording all.
        let mut all = Histogram::default();
        let (mut low, mut high) = (Histogram::default(), Histogram::default());
        for micros in 1..=100u64 {
            let value = Duration::from_micros(micros);
            all.record(value);
            if micros <= 50 {
                low.record(value);
            } else {
                high.record(value);
            }
        }
        let p50 = all.quantile(0.5).unwrap().as_micros();
        let p99 = all.quantile(0.99).unwrap().as_micros();
        assert!((50..=56).contains(&p50), "p50 {p50}");
        assert!((99..=100).contains(&p99), "p99 {p99}");
        assert_eq!(all.quantile(1.0), Some(Duration::from_micros(100)));
        low.add(&high);
        assert_eq!(low, all);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
