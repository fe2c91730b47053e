//! Fault rates ([`FaultConfig`]) and the record of every injected fault ([`FaultRecord`]).

use std::fmt;
use std::time::Duration;

/// How the simulated disk misbehaves: the probability of each injected fault, the sector the
/// faults work in, and how long each call takes. The `[faults]` section of a scenario file is
/// this type.
///
/// Every rate is in `[0, 1]` and defaults to 0. A rate is drawn from the fault stream only for
/// the operations it applies to (writes for `write_error`, `no_space` and `misdirected_write`;
/// syncs for `lying_fsync` and `fsync_error`; reads for `short_read`, `bit_rot`,
/// `latent_sector_error` and `misdirected_read`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// `write_at` returns an I/O error and writes nothing.
    pub write_error: f64,
    /// A `write_at` that would extend the file returns `StorageFull` and writes nothing.
    pub no_space: f64,
    /// `write_at` returns Ok but the bytes land at another sector-aligned offset of the file.
    pub misdirected_write: f64,
    /// `sync` returns Ok and persists nothing.
    pub lying_fsync: f64,
    /// `sync` returns an I/O error and silently drops about half of the file's unsynced writes.
    pub fsync_error: f64,
    /// `read_at` returns fewer bytes than it could.
    pub short_read: f64,
    /// A read flips 1 to 8 bits of one durable sector of any durable file, for good.
    pub bit_rot: f64,
    /// A read makes one durable sector of any durable file unreadable, until it is rewritten:
    /// reads that need it fail with an I/O error.
    pub latent_sector_error: f64,
    /// A read returns the bytes at another sector-aligned offset of the same file (once).
    pub misdirected_read: f64,
    /// The unit of torn writes, misdirected writes and bit rot.
    pub sector_size_bytes: u64,
    /// Every call first sleeps a latency drawn uniformly from
    /// `[latency_min_us, latency_max_us]` microseconds (none if the maximum is 0).
    pub latency_min_us: u64,
    pub latency_max_us: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            write_error: 0.0,
            no_space: 0.0,
            misdirected_write: 0.0,
            lying_fsync: 0.0,
            fsync_error: 0.0,
            short_read: 0.0,
            bit_rot: 0.0,
            latent_sector_error: 0.0,
            misdirected_read: 0.0,
            sector_size_bytes: 512,
            latency_min_us: 0,
            latency_max_us: 50,
        }
    }
}

impl FaultConfig {
    /// The rates by name, in a fixed order, for validation and reports.
    pub fn rates(&self) -> [(&'static str, f64); 9] {
        [
            ("write_error", self.write_error),
            ("no_space", self.no_space),
            ("misdirected_write", self.misdirected_write),
            ("lying_fsync", self.lying_fsync),
            ("fsync_error", self.fsync_error),
            ("short_read", self.short_read),
            ("bit_rot", self.bit_rot),
            ("latent_sector_error", self.latent_sector_error),
            ("misdirected_read", self.misdirected_read),
        ]
    }

    /// The rates by name, in the order of [`FaultConfig::rates`], to change them (swarm draws).
    pub fn rates_mut(&mut self) -> [(&'static str, &mut f64); 9] {
        [
            ("write_error", &mut self.write_error),
            ("no_space", &mut self.no_space),
            ("misdirected_write", &mut self.misdirected_write),
            ("lying_fsync", &mut self.lying_fsync),
            ("fsync_error", &mut self.fsync_error),
            ("short_read", &mut self.short_read),
            ("bit_rot", &mut self.bit_rot),
            ("latent_sector_error", &mut self.latent_sector_error),
            ("misdirected_read", &mut self.misdirected_read),
        ]
    }

    /// No faults, no latency: a disk that only does what it is told, at once.
    pub fn none() -> Self {
        FaultConfig {
            latency_max_us: 0,
            ..FaultConfig::default()
        }
    }

    pub fn latency_min(&self) -> Duration {
        Duration::from_micros(self.latency_min_us)
    }

    pub fn latency_max(&self) -> Duration {
        Duration::from_micros(self.latency_max_us)
    }

    /// Checks that every rate is a probability, the sector is not empty and the latency range
    /// is one.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in self.rates() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("fault rate {name} = {rate} is not in [0, 1]"));
            }
        }
        if self.sector_size_bytes == 0 {
            return Err("sector_size_bytes is 0".to_string());
        }
        if self.latency_min_us > self.latency_max_us {
            return Err(format!(
                "latency_min_us {} exceeds latency_max_us {}",
                self.latency_min_us, self.latency_max_us
            ));
        }
        Ok(())
    }
}

/// What kind of fault happened. The first nine are injected by the running file system; the
/// last five are chosen when a crash image is built ([`super::CrashPoint::materialize`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    WriteError,
    NoSpace,
    MisdirectedWrite,
    LyingFsync,
    FsyncError,
    ShortRead,
    BitRot,
    LatentSectorError,
    MisdirectedRead,
    TornWrite,
    CutWrite,
    LostWrite,
    ReorderedWrite,
    UndoneNamespaceOp,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::WriteError,
        FaultKind::NoSpace,
        FaultKind::MisdirectedWrite,
        FaultKind::LyingFsync,
        FaultKind::FsyncError,
        FaultKind::ShortRead,
        FaultKind::BitRot,
        FaultKind::LatentSectorError,
        FaultKind::MisdirectedRead,
        FaultKind::TornWrite,
        FaultKind::CutWrite,
        FaultKind::LostWrite,
        FaultKind::ReorderedWrite,
        FaultKind::UndoneNamespaceOp,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::WriteError => "write-error",
            FaultKind::NoSpace => "no-space",
            FaultKind::MisdirectedWrite => "misdirected-write",
            FaultKind::LyingFsync => "lying-fsync",
            FaultKind::FsyncError => "fsync-error",
            FaultKind::ShortRead => "short-read",
            FaultKind::BitRot => "bit-rot",
            FaultKind::LatentSectorError => "latent-sector-error",
            FaultKind::MisdirectedRead => "misdirected-read",
            FaultKind::TornWrite => "torn-write",
            FaultKind::CutWrite => "cut-write",
            FaultKind::LostWrite => "lost-write",
            FaultKind::ReorderedWrite => "reordered-write",
            FaultKind::UndoneNamespaceOp => "undone-namespace-op",
        }
    }

    /// True for faults that can destroy data the engine was told is durable, or silently write
    /// where it was not asked to. An engine is not expected to survive these without redundancy,
    /// so a checker may excuse a failure that follows one, where the fault's
    /// [`FaultRecord::damaged`] bytes explain it. Errors the engine sees (write error, no space,
    /// short read) and the losses of a crash (torn, lost, reordered writes of unsynced data) are
    /// not in this set: a correct engine must handle them. An fsync error is in it because the
    /// writes it drops were reported to the engine only as a failed sync.
    pub fn damages_durable_data(&self) -> bool {
        matches!(
            self,
            FaultKind::MisdirectedWrite
                | FaultKind::LyingFsync
                | FaultKind::FsyncError
                | FaultKind::BitRot
                | FaultKind::LatentSectorError
        )
    }

    /// Faults a read can meet: the ones drawn on reads (recovery runs with only these on).
    pub fn hits_reads(&self) -> bool {
        matches!(
            self,
            FaultKind::ShortRead
                | FaultKind::BitRot
                | FaultKind::LatentSectorError
                | FaultKind::MisdirectedRead
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed fsync: which bytes of its file were not durable when it failed (whether it then
/// dropped them or not) and how long the file was. Until the engine recovers, nothing in those
/// bytes or past that length may be reported durable: after a failed fsync the kernel may
/// have dropped the data, and a later fsync that succeeds says nothing about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailedSync {
    /// The I/O counter of the failed sync.
    pub index: u64,
    pub file: String,
    /// The file's length (as reads saw it) when the sync failed.
    pub len: u64,
    /// The ranges of the unsynced operations the sync failed to make durable.
    pub unsynced: Vec<(u64, u64)>,
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FaultRecord {
    /// The I/O counter of the operation it hit (for crash faults, the sequence number of the
    /// unsynced operation, which is the I/O counter of the call that issued it).
    pub index: u64,
    pub kind: FaultKind,
    pub file: String,
    pub offset: u64,
    pub len: u64,
    pub detail: String,
    /// The byte ranges `[start, end)` of `file` this fault made unreliable: bits it flipped, the
    /// range a misdirected write missed and the one it landed on, the unsynced writes a lying
    /// fsync acknowledged or a failed fsync dropped. What recovery finds wrong or missing there
    /// the fault explains, and nothing else. Empty for faults that damage nothing durable (an
    /// fsync error that dropped nothing included).
    pub damaged: Vec<(u64, u64)>,
}

impl FaultRecord {
    /// A fault that left durable data damaged: a kind that can, and some bytes it did.
    pub fn is_damage(&self) -> bool {
        self.kind.damages_durable_data() && !self.damaged.is_empty()
    }

    /// A fault that can explain what a read found: durable damage, or a read that returned
    /// bytes from elsewhere (which the engine may have acted on: fallen back to an older
    /// header, cut the log there).
    pub fn explains_reads(&self) -> bool {
        self.is_damage() || (self.kind == FaultKind::MisdirectedRead && !self.damaged.is_empty())
    }

    /// For a bit-rot record: each flipped byte's file offset and the bits flipped there (the
    /// detail text `flipped bits at OFFSET^MASK, ...` written when the rot was injected).
    pub fn bit_flips(&self) -> Vec<(u64, u8)> {
        if self.kind != FaultKind::BitRot {
            return Vec::new();
        }
        let Some(list) = self.detail.strip_prefix("flipped bits at ") else {
            return Vec::new();
        };
        list.split(", ")
            .filter_map(|flip| {
                let (offset, mask) = flip.split_once('^')?;
                let mask = u8::from_str_radix(mask.trim_start_matches("0x"), 16).ok()?;
                Some((offset.parse().ok()?, mask))
            })
            .collect()
    }
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {:?} [{}, +{}): {}",
            self.index, self.kind, self.file, self.offset, self.len, self.detail
        )?;
        // Where the damage is, when the call's own range does not say (a sync has none).
        if self.len == 0 && !self.damaged.is_empty() {
            let shown: Vec<String> = self
                .damaged
                .iter()
                .take(3)
                .map(|(start, end)| format!("[{start}, {end})"))
                .collect();
            let more = if self.damaged.len() > 3 { ", ..." } else { "" };
            write!(f, " at {}{more}", shown.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod bit_flip_tests {
    use super::{FaultKind, FaultRecord};

    #[test]
    fn bit_rot_records_give_back_their_flips() {
        // Proves the flips a rot wrote into its detail can be read back to pin the damage.
        let record = FaultRecord {
            index: 3,
            kind: FaultKind::BitRot,
            file: "data".into(),
            offset: 8704,
            len: 512,
            detail: "flipped bits at 8710^0x04, 9000^0x80".into(),
            damaged: vec![(8710, 8711), (9000, 9001)],
        };
        assert_eq!(record.bit_flips(), vec![(8710, 0x04), (9000, 0x80)]);
        let other = FaultRecord {
            kind: FaultKind::LyingFsync,
            ..record
        };
        assert!(other.bit_flips().is_empty());
    }
}
