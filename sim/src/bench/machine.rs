//! The machine a report was measured on: cores, memory and the filesystem of the directory the
//! real-filesystem runs use, printed with every report (these machines are noisy and shared).

use std::path::Path;

#[derive(Clone, Debug)]
pub struct Machine {
    pub cores: usize,
    pub memory_mib: u64,
    /// The mount's filesystem type and device, for the directory measured (Linux).
    pub filesystem: String,
    pub kernel: String,
}

impl Machine {
    pub fn probe(directory: &Path) -> Machine {
        let cores = std::thread::available_parallelism()
            .map(|count| count.get())
            .unwrap_or(1);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let kib = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
                    kib.trim().parse::<u64>().ok()
                })
            })
            .map_or(0, |kib| kib / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| format!("Linux {}", text.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cores,
            memory_mib,
            filesystem: filesystem_of(directory).unwrap_or_else(|| "unknown".to_string()),
            kernel,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} cores, {} MiB memory, filesystem {}, {}",
            self.cores, self.memory_mib, self.filesystem, self.kernel
        )
    }
}

/// The filesystem type of the longest mount point in /proc/mounts that holds `directory`.
fn filesystem_of(directory: &Path) -> Option<String> {
    let directory = directory.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount_point = fields.next()?;
            let kind = fields.next()?;
            directory.starts_with(mount_point).then(|| {
                (
                    mount_point.len(),
                    format!("{kind} ({device} on {mount_point})"),
                )
            })
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, text)| text)
}
