//! The simulated disk for engines whose storage calls block: [`BlockingDisk`] and
//! [`BlockingFile`], plain synchronous methods over the same disk state the async [`Vfs`]
//! wraps.
//!
//! Every call goes through the same code as the async one ([`SimFs`]'s `*_now` calls), so every
//! injected fault, the crash freeze, crash points, recording, the trace and its digest apply
//! alike. What differs: no latency is drawn or waited (a blocking call cannot yield to madsim's
//! scheduler, so it takes no simulated time), and so calls never interleave with other tasks;
//! a blocking engine runs each of its operations to the end before any other task moves.
//!
//! [`Vfs`]: crashpoint::vfs::Vfs

use std::io;

use super::{SimFile, SimFs};

/// A directory on the simulated disk, for engines with blocking I/O. Clones share one disk.
#[derive(Clone)]
pub struct BlockingDisk {
    fs: SimFs,
}

impl BlockingDisk {
    pub fn new(fs: SimFs) -> Self {
        BlockingDisk { fs }
    }

    /// The disk underneath, for the driver (crashes, images, fault records).
    pub fn fs(&self) -> &SimFs {
        &self.fs
    }

    /// Creates `name` empty, truncating it if it exists (`O_CREAT | O_TRUNC`).
    pub fn create(&self, name: &str) -> io::Result<BlockingFile> {
        self.fs.create_now(name).map(BlockingFile)
    }

    /// Opens an existing file; `NotFound` if there is none.
    pub fn open(&self, name: &str) -> io::Result<BlockingFile> {
        self.fs.open_now(name).map(BlockingFile)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        self.fs.remove_now(name)
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.fs.rename_now(from, to)
    }

    /// Names in the directory, sorted.
    pub fn list(&self) -> io::Result<Vec<String>> {
        self.fs.list_now()
    }

    /// Makes creates, removes and renames durable (an `fsync` of the directory).
    pub fn sync_dir(&self) -> io::Result<()> {
        self.fs.sync_dir_now()
    }
}

/// An open file of a [`BlockingDisk`], with the calls of `std::os::unix::fs::FileExt` and
/// `std::fs::File`.
pub struct BlockingFile(SimFile);

// `len` is a call on the disk (it is counted and traced); `is_empty` would be a second one.
#[allow(clippy::len_without_is_empty)]
impl BlockingFile {
    /// Reads up to `buf.len()` bytes at `offset`; may return fewer (a short read), 0 at the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at_now(offset, buf)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, retrying short reads; `UnexpectedEof` if
    /// the file ends first. Each pass reads at least one byte or ends, so the loop is bounded
    /// by `buf.len()`.
    pub fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let read = self.read_at(offset, buf)?;
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

    /// Writes all of `data` at `offset`, extending the file if needed.
    pub fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at_now(offset, data)
    }

    /// Makes the file's written data durable (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        self.0.sync_now()
    }

    pub fn len(&self) -> io::Result<u64> {
        self.0.len_now()
    }

    /// Sets the length; new bytes read as zeros.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len_now(len)
    }
}
