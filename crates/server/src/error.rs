//! Errors of the server, and their one conversion to `tonic::Status`.

use kafka_pdp_core::RequestError;
use tonic::{Code, Status};

/// A request that cannot be decided as sent. Never an ALLOW.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRequest {
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{field}` has unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("`{field}`: {source}")]
    Field {
        field: &'static str,
        source: RequestError,
    },
    #[error("`actions` has {count} entries, more than the limit of {max} per request")]
    TooManyActions { count: usize, max: usize },
    #[error("`actions[{index}]`: {source}")]
    AtAction {
        index: usize,
        source: Box<InvalidRequest>,
    },
    #[error("`{field}` {reason}")]
    BadValue {
        field: &'static str,
        reason: &'static str,
    },
    #[error("`decisions` has {count} entries, more than the limit of {max} per report")]
    TooManyDecisions { count: usize, max: usize },
    #[error("`decisions[{index}]`: {source}")]
    AtDecision {
        index: usize,
        source: Box<InvalidRequest>,
    },
}

impl InvalidRequest {
    /// Says which action of a batch was wrong.
    pub fn at_action(self, index: usize) -> Self {
        Self::AtAction {
            index,
            source: Box::new(self),
        }
    }

    /// Says which decision of a shim report was wrong.
    pub fn at_decision(self, index: usize) -> Self {
        Self::AtDecision {
            index,
            source: Box::new(self),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    #[error("the server serves embedded policies, which cannot be reloaded")]
    NotReloadable,
    #[error("reload task failed: {0}")]
    ReloadTask(String),
    /// The audit trail could not take reported decisions; the reporter keeps
    /// them and sends them again.
    #[error("audit trail unavailable: {0}")]
    AuditUnavailable(String),
}

// The one place where errors become gRPC statuses.
impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::Invalid(_) => Code::InvalidArgument,
            ServiceError::NotReloadable => Code::FailedPrecondition,
            ServiceError::ReloadTask(_) => Code::Internal,
            ServiceError::AuditUnavailable(_) => Code::Unavailable,
        };
        Status::new(code, e.to_string())
    }
}

impl From<InvalidRequest> for Status {
    fn from(e: InvalidRequest) -> Self {
        ServiceError::from(e).into()
    }
}
