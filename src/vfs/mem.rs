//! [`MemVfs`]: an in-memory directory for unit tests, with a simple crash model.
//!
//! Each file keeps the bytes readers see and the bytes last made durable by a sync; the
//! directory keeps its live names and the names last made durable by `sync_dir`.
//! [`MemVfs::crash_image`] returns what a power cut would leave: durable names with their
//! durable bytes, every unsynced write and namespace change dropped. The richer fault model
//! (torn, reordered and misdirected writes, lying fsyncs) lives in the simulator.
//!
//! Clones share one directory and its lock, so two engines opened on clones of one `MemVfs`
//! exclude each other as two processes on one real directory do; a crash image is a new
//! directory whose lock is free, as a killed process's `flock` is.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DirectoryLock, Vfs, VfsFile};

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    /// A [`DirectoryLock`] from [`Vfs::lock`] is alive.
    locked: bool,
}

#[derive(Clone, Debug, Default)]
pub struct MemVfs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
pub struct MemFile {
    state: Arc<Mutex<State>>,
    inode: usize,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

impl MemVfs {
    pub fn new() -> Self {
        Self::default()
    }

    /// The directory a power cut right now would leave: only durable names and bytes.
    pub fn crash_image(&self) -> MemVfs {
        let state = lock(&self.state);
        let mut image = State::default();
        for (name, &inode) in &state.durable_names {
            let durable = state.inodes[inode].durable.clone();
            image.inodes.push(Inode {
                data: durable.clone(),
                durable,
            });
            let id = image.inodes.len() - 1;
            image.names.insert(name.clone(), id);
            image.durable_names.insert(name.clone(), id);
        }
        MemVfs {
            state: Arc::new(Mutex::new(image)),
        }
    }

    /// The live bytes of a file, for tests.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state
            .names
            .get(name)
            .map(|&inode| state.inodes[inode].data.clone())
    }

    /// Overwrites live bytes of a file without going through the engine, for corruption tests.
    pub fn poke(&self, name: &str, offset: u64, bytes: &[u8]) {
        let mut state = lock(&self.state);
        let inode = *state.names.get(name).expect("poke: no such file");
        let file = &mut state.inodes[inode];
        let end = offset as usize + bytes.len();
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        file.data[offset as usize..end].copy_from_slice(bytes);
        file.durable = file.data.clone();
    }
}

/// Frees the directory of a [`MemVfs`] when the engine's [`DirectoryLock`] drops.
struct MemLock {
    state: Arc<Mutex<State>>,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        lock(&self.state).locked = false;
    }
}

impl Vfs for MemVfs {
    type File = MemFile;

    async fn lock(&self) -> io::Result<DirectoryLock> {
        let mut state = lock(&self.state);
        if state.locked {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another engine holds this in-memory directory",
            ));
        }
        state.locked = true;
        Ok(DirectoryLock::new(MemLock {
            state: self.state.clone(),
        }))
    }

    fn location(&self) -> String {
        "in-memory directory".to_string()
    }

    async fn create(&self, name: &str) -> io::Result<MemFile> {
        let mut state = lock(&self.state);
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        state.names.insert(name.to_string(), inode);
        Ok(MemFile {
            state: self.state.clone(),
            inode,
        })
    }

    async fn open(&self, name: &str) -> io::Result<MemFile> {
        let state = lock(&self.state);
        let inode = *state.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(MemFile {
            state: self.state.clone(),
            inode,
        })
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = lock(&self.state);
        state
            .names
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = lock(&self.state);
        let inode = state.names.remove(from).ok_or_else(|| not_found(from))?;
        state.names.insert(to.to_string(), inode);
        Ok(())
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        Ok(lock(&self.state).names.keys().cloned().collect())
    }

    async fn sync_dir(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.durable_names = state.names.clone();
        Ok(())
    }
}

impl VfsFile for MemFile {
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let state = lock(&self.state);
        let data = &state.inodes[self.inode].data;
        let start = (offset as usize).min(data.len());
        let read = buf.len().min(data.len() - start);
        buf[..read].copy_from_slice(&data[start..start + read]);
        Ok(read)
    }

    async fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = lock(&self.state);
        let data = &mut state.inodes[self.inode].data;
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        let inode = &mut state.inodes[self.inode];
        inode.durable = inode.data.clone();
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.state).inodes[self.inode].data.len() as u64)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        lock(&self.state).inodes[self.inode]
            .data
            .resize(len as usize, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn crash_image_keeps_only_synced_bytes_and_names() {
        // Proves the unit-test crash model: unsynced writes and unsynced creates vanish.
        block_on(async {
            let vfs = MemVfs::new();
            let a = vfs.create("a").await.unwrap();
            a.write_at(0, b"durable").await.unwrap();
            a.sync().await.unwrap();
            vfs.sync_dir().await.unwrap();
            a.write_at(0, b"LOST!!!").await.unwrap();
            let b = vfs.create("b").await.unwrap();
            b.write_at(0, b"x").await.unwrap();
            b.sync().await.unwrap();
            let image = vfs.crash_image();
            assert_eq!(image.list().await.unwrap(), vec!["a".to_string()]);
            assert_eq!(image.contents("a").unwrap(), b"durable");
        });
    }
}
