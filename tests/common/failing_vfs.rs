//! [`FailingVfs`]: a MemVfs wrapper that fails file syncs while a flag is set (one flag for log
//! segments, one for the data file) and can fail a chosen data-file write, tearing it.
//!
//! A failed sync does not reach the MemVfs, so the data stays undurable, as after a real
//! failed fsync that dropped dirty pages. A failed write stores the first half of its bytes
//! and then reports an error, as a torn write would.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crashpoint::vfs::mem::MemFile;
use crashpoint::vfs::DirectoryLock;
use crashpoint::{MemVfs, Vfs, VfsFile};

#[derive(Clone, Debug)]
pub struct FailingVfs {
    pub inner: MemVfs,
    pub fail_log_sync: Arc<AtomicBool>,
    pub fail_data_sync: Arc<AtomicBool>,
    /// Data-file writes that still succeed before one fails; negative means none fails.
    pub data_writes_before_failure: Arc<AtomicI64>,
    /// Syncs that reached the MemVfs.
    pub syncs: Arc<AtomicU64>,
}

#[derive(Debug)]
pub struct FailingFile {
    inner: MemFile,
    fail_sync: Arc<AtomicBool>,
    /// Set for the data file only.
    writes_before_failure: Option<Arc<AtomicI64>>,
    syncs: Arc<AtomicU64>,
}

impl FailingVfs {
    pub fn new() -> Self {
        Self {
            inner: MemVfs::new(),
            fail_log_sync: Arc::new(AtomicBool::new(false)),
            fail_data_sync: Arc::new(AtomicBool::new(false)),
            data_writes_before_failure: Arc::new(AtomicI64::new(-1)),
            syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    fn wrap(&self, name: &str, inner: MemFile) -> FailingFile {
        let is_log = name.starts_with("log-");
        FailingFile {
            inner,
            fail_sync: if is_log {
                self.fail_log_sync.clone()
            } else {
                self.fail_data_sync.clone()
            },
            writes_before_failure: (!is_log).then(|| self.data_writes_before_failure.clone()),
            syncs: self.syncs.clone(),
        }
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
}

impl Default for FailingVfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Vfs for FailingVfs {
    type File = FailingFile;

    async fn lock(&self) -> io::Result<DirectoryLock> {
        self.inner.lock().await
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    async fn create(&self, name: &str) -> io::Result<FailingFile> {
        let file = self.inner.create(name).await?;
        Ok(self.wrap(name, file))
    }

    async fn open(&self, name: &str) -> io::Result<FailingFile> {
        let file = self.inner.open(name).await?;
        Ok(self.wrap(name, file))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name).await
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to).await
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list().await
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir().await
    }
}

impl VfsFile for FailingFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf).await
    }

    async fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(countdown) = &self.writes_before_failure {
            if countdown.load(Ordering::SeqCst) == 0 {
                countdown.store(-1, Ordering::SeqCst);
                self.inner.write_at(offset, &data[..data.len() / 2]).await?;
                return Err(io::Error::other("injected write failure"));
            }
            if countdown.load(Ordering::SeqCst) > 0 {
                countdown.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.inner.write_at(offset, data).await
    }

    async fn sync(&self) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync().await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
    }
}
