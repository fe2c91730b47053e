//! The engine's only door to storage: a flat directory of files.
//!
//! Names are plain file names inside one directory (no separators). Every method is async so a
//! simulated implementation can take simulated time; the real one ([`std::StdVfs`]) blocks.
//!
//! Durability contract the engine relies on, and nothing more: data written to a file is
//! durable only after that file's [`VfsFile::sync`] returns Ok; a create, remove or rename is
//! durable only after [`Vfs::sync_dir`] returns Ok. A failed sync may have dropped data.
//!
//! One engine at a time: [`Vfs::lock`] takes the directory for one opener, and the engine holds
//! the returned [`DirectoryLock`] until it is closed or dropped. Like an `flock`, the lock lives
//! with the opener, not on the disk: a crash (a killed process, a fresh directory built from a
//! crash image) never leaves a stale one behind.

pub mod mem;
pub mod std;

use ::std::future::Future;
use ::std::io;

pub trait Vfs: Send + Sync + 'static {
    type File: VfsFile;

    /// Takes the directory for one opener until the returned guard is dropped; fails with
    /// [`io::ErrorKind::WouldBlock`] at once, without waiting, while another guard holds it.
    /// The default takes nothing: fine for a directory that nothing else can reach.
    fn lock(&self) -> impl Future<Output = io::Result<DirectoryLock>> + Send {
        async { Ok(DirectoryLock::none()) }
    }
    /// Where the directory is, for error messages (a path for a real directory).
    fn location(&self) -> String {
        "database directory".to_string()
    }

    /// Creates `name` empty, truncating it if it exists.
    fn create(&self, name: &str) -> impl Future<Output = io::Result<Self::File>> + Send;
    /// Opens an existing file for reading and writing; `NotFound` if it does not exist.
    fn open(&self, name: &str) -> impl Future<Output = io::Result<Self::File>> + Send;
    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = io::Result<()>> + Send;
    /// Names in the directory, sorted (files, and anything else a real directory holds).
    fn list(&self) -> impl Future<Output = io::Result<Vec<String>>> + Send;
    /// Makes creates, removes and renames durable.
    fn sync_dir(&self) -> impl Future<Output = io::Result<()>> + Send;
}

// `len` is async, so an `is_empty` beside it would only add a second I/O call.
#[allow(clippy::len_without_is_empty)]
pub trait VfsFile: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; may return fewer (a short read), 0 at end.
    fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes all of `data` at `offset`, extending the file if needed.
    fn write_at(&self, offset: u64, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Makes this file's written data durable.
    fn sync(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn len(&self) -> impl Future<Output = io::Result<u64>> + Send;
    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> + Send;
}

/// Holds a directory for one opener ([`Vfs::lock`]); dropping it lets the next one in.
pub struct DirectoryLock {
    /// Whatever the implementation releases on drop (an open lock file, a flag's reset).
    _held: Option<Box<dyn Send + Sync>>,
}

impl DirectoryLock {
    /// A lock released when `held` is dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Some(Box::new(held)),
        }
    }

    /// A lock that holds nothing, for a directory only one opener can reach.
    pub fn none() -> Self {
        Self { _held: None }
    }
}

impl ::std::fmt::Debug for DirectoryLock {
    fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        formatter.write_str("DirectoryLock")
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, retrying short reads; `UnexpectedEof` if the
/// file ends first.
pub async fn read_exact_at<F: VfsFile>(
    file: &F,
    mut offset: u64,
    mut buf: &mut [u8],
) -> io::Result<()> {
    // Each pass either fills at least one byte or ends the loop, so it runs at most buf.len()
    // times.
    while !buf.is_empty() {
        let read = file.read_at(offset, buf).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended before the read was filled",
            ));
        }
        offset += read as u64;
        buf = &mut buf[read..];
    }
    Ok(())
}

/// Reads a whole file.
pub async fn read_all<F: VfsFile>(file: &F) -> io::Result<Vec<u8>> {
    let len = file.len().await?;
    let mut buf = vec![0u8; len as usize];
    read_exact_at(file, 0, &mut buf).await?;
    Ok(buf)
}
