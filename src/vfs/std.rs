//! [`StdVfs`]: the real filesystem, one directory per database.
//!
//! Calls block the calling thread; the engine does little I/O per call and an embedder on a
//! multi-threaded runtime can wrap calls in its own blocking pool if it must.
//!
//! Every error names the path it concerns (the directory, or the directory and the file), since
//! the engine knows files only by their names inside the directory.
//!
//! The directory lock is an exclusive `flock` on the file [`LOCK_FILE`], taken without waiting.
//! The kernel releases it when the lock file's descriptor closes, so a killed process leaves no
//! stale lock, and two opens in one process exclude each other as two processes do. The lock
//! file stays in the directory and [`StdVfs::list`] does not show it: it is this Vfs's, not the
//! engine's.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DirectoryLock, Vfs, VfsFile};

/// The file in the database directory whose `flock` is the directory lock.
pub const LOCK_FILE: &str = "LOCK";

#[derive(Clone, Debug)]
pub struct StdVfs {
    dir: Arc<PathBuf>,
}

impl StdVfs {
    /// Uses `dir` as the database directory, creating it if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(at(dir))?;
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
        })
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad file name {name:?} in {}", self.dir.display()),
            ));
        }
        Ok(self.dir.join(name))
    }
}

/// An I/O error with the path it concerns; keeps the original error's kind and source.
#[derive(Debug)]
struct PathError {
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps an error so it names `path`.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |source| {
        io::Error::new(
            source.kind(),
            PathError {
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

#[derive(Debug)]
pub struct StdFile {
    file: File,
    path: PathBuf,
}

impl Vfs for StdVfs {
    type File = StdFile;

    async fn lock(&self) -> io::Result<DirectoryLock> {
        let path = self.path(LOCK_FILE)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(DirectoryLock::new(file)),
            Err(TryLockError::WouldBlock) => Err(at(&path)(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another engine holds the lock",
            ))),
            Err(TryLockError::Error(source)) => Err(at(&path)(source)),
        }
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn create(&self, name: &str) -> io::Result<StdFile> {
        let path = self.path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(at(&path))?;
        Ok(StdFile { file, path })
    }

    async fn open(&self, name: &str) -> io::Result<StdFile> {
        let path = self.path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(at(&path))?;
        Ok(StdFile { file, path })
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        fs::remove_file(&path).map_err(at(&path))
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let from = self.path(from)?;
        fs::rename(&from, self.path(to)?).map_err(at(&from))
    }

    /// Every entry in the directory but the lock file, sorted: subdirectories and other
    /// non-files too, so that open sees everything that would make creating here doubtful.
    async fn list(&self) -> io::Result<Vec<String>> {
        let dir = self.dir.as_path();
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(at(dir))? {
            let name = entry.map_err(at(dir))?.file_name();
            let name = name.to_string_lossy().into_owned();
            if name != LOCK_FILE {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    async fn sync_dir(&self) -> io::Result<()> {
        let dir = self.dir.as_path();
        File::open(dir)
            .and_then(|directory| directory.sync_all())
            .map_err(at(dir))
    }
}

impl VfsFile for StdFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(buf, offset).map_err(at(&self.path))
    }

    async fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset).map_err(at(&self.path))
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.sync_data().map_err(at(&self.path))
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata().map_err(at(&self.path))?.len())
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).map_err(at(&self.path))
    }
}
