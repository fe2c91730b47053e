//! [`StdVfs`]: the real filesystem, one directory per database.
//!
//! Calls block the calling thread; the engine does little I/O per call and an embedder on a
//! multi-threaded runtime can wrap calls in its own blocking pool if it must.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Vfs, VfsFile};

#[derive(Clone, Debug)]
pub struct StdVfs {
    dir: Arc<PathBuf>,
}

impl StdVfs {
    /// Uses `dir` as the database directory, creating it if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        fs::create_dir_all(dir.as_ref())?;
        Ok(Self {
            dir: Arc::new(dir.as_ref().to_path_buf()),
        })
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad file name {name:?}"),
            ));
        }
        Ok(self.dir.join(name))
    }
}

#[derive(Debug)]
pub struct StdFile {
    file: File,
}

impl Vfs for StdVfs {
    type File = StdFile;

    async fn create(&self, name: &str) -> io::Result<StdFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name)?)?;
        Ok(StdFile { file })
    }

    async fn open(&self, name: &str) -> io::Result<StdFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name)?)?;
        Ok(StdFile { file })
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name)?)
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from)?, self.path(to)?)
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.dir.as_ref())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn sync_dir(&self) -> io::Result<()> {
        File::open(self.dir.as_ref())?.sync_all()
    }
}

impl VfsFile for StdFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    async fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}
