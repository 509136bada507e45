//! The one error type of the host, shared by the store, the engine and the API.
//!
//! Every error carries a kind, which the API maps to an HTTP status, a stable
//! machine-readable code and a plain message for the caller. Internal errors
//! keep their detail for the log and show the caller a generic message.

use std::fmt;

/// The class of an error, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed: bad JSON, a bad query parameter.
    BadRequest,
    /// The workflow, instance or task does not exist.
    NotFound,
    /// The request conflicts with the current state, such as completing a task
    /// that is already completed.
    Conflict,
    /// The request body is over a size limit.
    TooLarge,
    /// The request body has a media type the call does not take.
    UnsupportedMediaType,
    /// The request is well formed but invalid, such as a component of the
    /// wrong world or an action the task does not allow.
    Unprocessable,
    /// A fault inside the host, such as a failed database write.
    Internal,
}

/// An error with a kind, a stable code and a message.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", message)
    }

    pub fn workflow_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "workflow_not_found",
            format!("workflow {name:?} not found; upload it with PUT /workflows/{name}"),
        )
    }

    pub fn version_not_found(name: &str, version: u32) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "workflow_version_not_found",
            format!(
                "workflow {name:?} has no version {version}; GET /workflows/{name} lists its versions"
            ),
        )
    }

    pub fn instance_not_found(id: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "instance_not_found",
            format!("instance {id:?} not found"),
        )
    }

    pub fn task_not_found(id: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "task_not_found",
            format!("task {id:?} not found"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

macro_rules! internal_from {
    ($($source:ty),* $(,)?) => {$(
        impl From<$source> for Error {
            fn from(error: $source) -> Self {
                Error::internal(format!("database: {error}"))
            }
        }
    )*};
}

internal_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::internal(format!("stored record is not valid JSON: {error}"))
    }
}
