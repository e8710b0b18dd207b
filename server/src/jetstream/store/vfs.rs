//! The narrow file-system interface every file-store byte goes through, and its
//! real implementation on `std::fs`.
//!
//! Owns nothing but the mapping to the OS. [`super::SimDisk`] is the other
//! implementation: an in-memory disk that can simulate power loss.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// An open file, read and written at explicit offsets.
pub trait VFile: Send + Sync + Debug {
    /// Current length in bytes.
    ///
    /// # Errors
    /// I/O errors.
    fn len(&self) -> io::Result<u64>;
    /// True when the file has no bytes.
    ///
    /// # Errors
    /// I/O errors.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Reads exactly `buf.len()` bytes at `off`.
    ///
    /// # Errors
    /// `UnexpectedEof` past the end; I/O errors.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `off`, extending the file if needed.
    ///
    /// # Errors
    /// I/O errors.
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or extends the file.
    ///
    /// # Errors
    /// I/O errors.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    ///
    /// # Errors
    /// I/O errors.
    fn sync(&self) -> io::Result<()>;
}

/// File-system operations used by the stores. Paths are absolute or relative to the process.
pub trait Vfs: Send + Sync + Debug {
    /// Opens a file for reading and writing, creating it when `create` is set.
    ///
    /// # Errors
    /// `NotFound` when absent and not creating; I/O errors.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn VFile>>;
    /// Removes a file.
    ///
    /// # Errors
    /// I/O errors.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// I/O errors.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Names of the entries (files and directories) in a directory.
    ///
    /// # Errors
    /// I/O errors.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    ///
    /// # Errors
    /// I/O errors.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Removes a directory and everything below it.
    ///
    /// # Errors
    /// I/O errors.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, removals, renames) durable.
    ///
    /// # Errors
    /// I/O errors.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// True when a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// Reads a whole file.
    ///
    /// # Errors
    /// I/O errors.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path, false)?;
        let len = usize::try_from(f.len()?).map_err(io::Error::other)?;
        let mut buf = vec![0; len];
        f.read_at(0, &mut buf)?;
        Ok(buf)
    }
}

/// A shared handle to a file system.
pub type SharedVfs = Arc<dyn Vfs>;

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

impl StdFs {
    /// A shared handle to the real file system.
    pub fn shared() -> SharedVfs {
        Arc::new(StdFs)
    }
}

#[derive(Debug)]
struct StdFile(File);

impl VFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, off)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, off)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Vfs for StdFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn VFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(StdFile(f)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}
