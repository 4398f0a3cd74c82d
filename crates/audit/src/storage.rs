//! The seam between the writer and the file system.
//!
//! Production uses [`FsStorage`]: real files, `O_APPEND`, `fdatasync`. The
//! seam exists for one reason: a test must be able to make a write fail the
//! way a full disk does (some bytes written, then `ENOSPC`) without filling
//! the machine's disk. Only appending writers go through it; readers and
//! directory operations use the file system directly.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Opens files for the writer.
pub trait Storage: Send + Sync + 'static {
    /// Opens `path` for appending, creating it if it does not exist.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
}

/// A file the writer appends to.
pub trait AppendFile: Send {
    /// Appends all of `bytes`, or fails having appended some prefix of them.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes, dropping a failed write's partial bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// Real files.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(FsFile(file)))
    }
}

struct FsFile(File);

impl AppendFile for FsFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}
