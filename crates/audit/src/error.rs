//! The one error type of the audit trail.
//!
//! Every variant means "this decision is not recorded": a caller on the
//! decision path must answer DENY when it sees any of them.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed: a full disk (`ENOSPC`), an I/O error, a
    /// permission problem.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The log on disk is damaged in a way the writer must not paper over.
    #[error("audit log `{path}` is damaged at byte {offset}: {problem}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: String,
    },

    /// The signing key file could not be used.
    #[error("cannot use audit key `{path}`: {problem}")]
    Key { path: PathBuf, problem: String },

    /// An invalid configuration value.
    #[error("invalid audit configuration: {0}")]
    Config(String),

    /// A previous write failed and the writer could not yet undo its partial
    /// bytes; nothing is appended until it can.
    #[error("audit log is not writable since an earlier failure: {0}")]
    Unwritable(String),

    /// The writer has stopped (shut down, or its thread ended).
    #[error("audit log is closed")]
    Closed,
}

impl AuditError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        AuditError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        problem: impl Into<String>,
    ) -> Self {
        AuditError::Corrupt {
            path: path.into(),
            offset,
            problem: problem.into(),
        }
    }
}
