//! The records Layover stores: workflow versions, instances, journal events
//! and tasks. They are plain serde types, shared by the store, the engine and
//! the API, and hold no wasmtime or HTTP types.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Returns the current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Returns a new sortable id (a UUIDv7 in its hyphenated form).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One uploaded version of a workflow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: u32,
    /// The SHA-256 of the component bytes, as `sha256:<hex>`.
    pub hash: String,
    pub size: u64,
    /// The WIT world the component was validated against.
    pub world: String,
    pub created_at: Millis,
}

/// The life-cycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Stored and runnable: running now, or to be run by the next host start.
    Running,
    /// Parked at a wait state.
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    /// Tells whether the instance has ended and can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A task as the workflow asked for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskSpec {
    pub title: String,
    pub actions: Vec<String>,
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub form: Value,
    pub timeout_ms: Option<u64>,
}

/// A wait-state call, as the workflow made it. Replay compares a new call with
/// the recorded one, so two requests are the same call only when equal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitRequest {
    HumanTask(TaskSpec),
    Sleep {
        duration_ms: u64,
    },
    Message {
        name: String,
        timeout_ms: Option<u64>,
    },
}

impl WaitRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            WaitRequest::HumanTask(_) => "human-task",
            WaitRequest::Sleep { .. } => "sleep",
            WaitRequest::Message { .. } => "message",
        }
    }

    /// Returns how long the wait may last before it times out or, for a sleep,
    /// ends.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            WaitRequest::HumanTask(task) => task.timeout_ms,
            WaitRequest::Sleep { duration_ms } => Some(*duration_ms),
            WaitRequest::Message { timeout_ms, .. } => *timeout_ms,
        }
    }

    /// Returns the outcome of this wait when its timer fires.
    pub fn timeout_outcome(&self) -> WaitOutcome {
        match self {
            WaitRequest::HumanTask(_) => WaitOutcome::TaskExpired,
            WaitRequest::Sleep { .. } => WaitOutcome::Slept,
            WaitRequest::Message { .. } => WaitOutcome::MessageTimedOut,
        }
    }
}

/// The action, data and person of a completed task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskOutcome {
    pub action: String,
    pub data: Value,
    pub by: String,
}

/// The result of a wait-state call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitOutcome {
    TaskCompleted(TaskOutcome),
    TaskExpired,
    Slept,
    MessageReceived { payload: Value },
    MessageTimedOut,
}

/// The wait an instance is parked on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpenWait {
    pub step: u32,
    pub since: Millis,
    pub request: WaitRequest,
    pub task_id: Option<String>,
    /// When the wait's timer fires, if it has one.
    pub due: Option<Millis>,
}

/// An instance of a workflow version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    pub status: Status,
    pub input: Value,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub wait: Option<OpenWait>,
    pub fields: BTreeMap<String, Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// The sequence number the next journal event gets.
    pub next_seq: u32,
    /// The step number the next wait-state call gets.
    pub next_step: u32,
    pub idempotency_key: Option<String>,
}

/// The state of a task in the worklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    Open,
    Completed,
    /// The task's timeout passed before anyone completed it.
    Expired,
    /// The instance was cancelled or failed while the task was open.
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Completed => "completed",
            TaskStatus::Expired => "expired",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// A human task in the worklist.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub instance_id: String,
    pub workflow: String,
    pub step: u32,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    /// The person the task is reserved for: its assignee from the start, or
    /// the group member who claimed it.
    pub claimed_by: Option<String>,
    pub created_at: Millis,
    pub due_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub outcome: Option<TaskOutcome>,
}

/// The level of a line in an instance log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// A line the workflow wrote to its standard output.
    Stdout,
    /// A line the workflow wrote to its standard error.
    Stderr,
}

/// One event in an instance's journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Started {
        workflow: String,
        version: u32,
        input: Value,
    },
    WaitStarted {
        step: u32,
        request: WaitRequest,
        task_id: Option<String>,
        due: Option<Millis>,
    },
    WaitResolved {
        step: u32,
        outcome: WaitOutcome,
    },
    /// A message arrived that the workflow was not waiting for; it is kept in
    /// the mailbox.
    MessageQueued {
        name: String,
    },
    FieldSet {
        name: String,
        value: Value,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    Completed {
        output: Value,
    },
    Failed {
        error: String,
    },
    Cancelled,
}

/// An event with its place and time in the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    pub seq: u32,
    pub at: Millis,
    #[serde(flatten)]
    pub event: Event,
}

/// A side effect a workflow produced between two commits: it is journaled
/// with the next step, and skipped when the step is replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Log { level: LogLevel, message: String },
    Field { name: String, value: Value },
}

impl Effect {
    pub fn into_event(self) -> Event {
        match self {
            Effect::Log { level, message } => Event::Log { level, message },
            Effect::Field { name, value } => Event::FieldSet { name, value },
        }
    }
}

/// The end of an instance, as its runner reports it.
#[derive(Debug, Clone)]
pub enum Ending {
    Completed(Value),
    Failed(String),
}
