//! The exporter's cursor: the last sequence number a sink confirmed.
//!
//! One decimal number and a newline in a small file beside the log. It is
//! replaced atomically (write a temporary file, `fsync` it, rename it over
//! the old one, `fsync` the directory), so a crash leaves either the old or
//! the new value, never a torn one. It only moves forward after delivery is
//! confirmed; a crash between delivery and the rename ships a few records
//! again (at-least-once), which the sequence numbers let a consumer see.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::ExportError;

/// A persisted cursor.
#[derive(Debug)]
pub struct Cursor {
    path: PathBuf,
    value: u64,
}

impl Cursor {
    /// Reads the cursor at `path`; a missing file means nothing was shipped.
    pub fn load(path: &Path) -> Result<Cursor, ExportError> {
        let value = match fs::read_to_string(path) {
            Ok(text) => text.trim().parse().map_err(|_| ExportError::Cursor {
                path: path.to_owned(),
                why: format!("expected one sequence number, found `{}`", text.trim()),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(ExportError::io("read", path, e)),
        };
        Ok(Cursor {
            path: path.to_owned(),
            value,
        })
    }

    /// The last sequence number shipped; 0 for none.
    pub fn get(&self) -> u64 {
        self.value
    }

    /// Durably records that every record up to `seq` is delivered.
    pub fn store(&mut self, seq: u64) -> Result<(), ExportError> {
        let tmp = self.path.with_extension("tmp");
        write_synced(&tmp, seq).map_err(|e| ExportError::io("write", &tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| ExportError::io("replace", &self.path, e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ExportError::io("sync", dir, e))?;
        }
        self.value = seq;
        Ok(())
    }
}

fn write_synced(path: &Path, seq: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    writeln!(file, "{seq}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cursor_survives_a_reload_and_a_missing_one_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka.cursor");
        let mut cursor = Cursor::load(&path).unwrap();
        assert_eq!(cursor.get(), 0);
        cursor.store(42).unwrap();
        assert_eq!(Cursor::load(&path).unwrap().get(), 42);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_damaged_cursor_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka.cursor");
        fs::write(&path, "12x\n").unwrap();
        let err = Cursor::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("kafka.cursor") && err.contains("`12x`"),
            "{err}"
        );
    }
}
