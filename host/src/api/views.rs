//! The JSON bodies the API returns, with their OpenAPI schemas. The views are
//! built from the stored records, so the records can change shape without
//! changing the API.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema, SchemaFormat};

use super::AppState;
use crate::blocking;
use crate::error::{Error, Result};
use crate::model::{
    Event, InstanceRecord, Millis, OpenWait, Status, TaskOutcome, TaskRecord, TaskStatus,
    WaitRequest, WorkflowVersion,
};

/// Formats a time as an RFC 3339 string in UTC with milliseconds.
pub(super) fn timestamp(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorBody {
    pub error: ErrorDetail,
}

/// Code and message of an error, for a program and for a person.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    /// Stable machine-readable code, such as `task_not_open`; docs/api.md
    /// lists the codes of each status.
    #[schema(example = "task_not_open")]
    pub code: String,
    /// Plain-language description of the error and of what to do next.
    pub message: String,
}

impl ErrorBody {
    pub(super) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }
}

/// The health check.
#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
pub(super) struct HealthView {
    /// Always `ok`, since any response means the host is up.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Instances that have a runner task in the host.
    pub runners: usize,
    /// Those of `runners` that are parked at a wait state in memory.
    pub parked: usize,
}

/// A stored workflow version, as the upload returns it.
#[derive(Serialize, ToSchema)]
#[schema(as = UploadedVersion)]
pub(super) struct UploadedVersionView {
    #[schema(example = "expense-approval")]
    pub name: String,
    #[schema(minimum = 1)]
    pub version: u32,
    /// SHA-256 of the component bytes, as `sha256:<hex>`.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub hash: String,
    /// Size of the component, in bytes.
    pub size: u64,
    /// WIT world the component was validated against.
    #[schema(example = "layover:workflow/workflow@0.1.0")]
    pub world: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<WorkflowVersion> for UploadedVersionView {
    fn from(version: WorkflowVersion) -> Self {
        Self {
            name: version.name,
            version: version.version,
            hash: version.hash,
            size: version.size,
            world: version.world,
            created_at: timestamp(version.created_at),
        }
    }
}

/// One version of a workflow.
#[derive(Serialize, ToSchema)]
#[schema(as = Version)]
pub(super) struct VersionView {
    #[schema(minimum = 1)]
    pub version: u32,
    /// SHA-256 of the component bytes, as `sha256:<hex>`.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub hash: String,
    /// Size of the component, in bytes.
    pub size: u64,
    /// WIT world the component was validated against.
    pub world: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A workflow with its versions, oldest first.
#[derive(Serialize, ToSchema)]
#[schema(as = Workflow)]
pub(super) struct WorkflowView {
    #[schema(example = "expense-approval")]
    pub name: String,
    #[schema(minimum = 1)]
    pub latest_version: u32,
    #[schema(min_items = 1)]
    pub versions: Vec<VersionView>,
}

/// Every stored workflow, by name.
#[derive(Serialize, ToSchema)]
#[schema(as = WorkflowList)]
pub(super) struct WorkflowListView {
    pub workflows: Vec<WorkflowView>,
}

fn version_view(version: &WorkflowVersion) -> VersionView {
    VersionView {
        version: version.version,
        hash: version.hash.clone(),
        size: version.size,
        world: version.world.clone(),
        created_at: timestamp(version.created_at),
    }
}

/// Builds the view of a workflow from its versions, oldest first; `None`
/// when there are none.
pub(super) fn workflow_view(versions: &[WorkflowVersion]) -> Option<WorkflowView> {
    let latest = versions.last()?;
    Some(WorkflowView {
        name: latest.name.clone(),
        latest_version: latest.version,
        versions: versions.iter().map(version_view).collect(),
    })
}

/// The life-cycle state of an instance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = InstanceStatus)]
pub(super) enum StatusView {
    Running,
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl From<Status> for StatusView {
    fn from(status: Status) -> Self {
        match status {
            Status::Running => StatusView::Running,
            Status::Waiting => StatusView::Waiting,
            Status::Completed => StatusView::Completed,
            Status::Failed => StatusView::Failed,
            Status::Cancelled => StatusView::Cancelled,
        }
    }
}

/// The state of a task in the worklist.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = TaskStatus)]
pub(super) enum TaskStatusView {
    Open,
    Completed,
    Expired,
    Cancelled,
}

impl From<TaskStatus> for TaskStatusView {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Open => TaskStatusView::Open,
            TaskStatus::Completed => TaskStatusView::Completed,
            TaskStatus::Expired => TaskStatusView::Expired,
            TaskStatus::Cancelled => TaskStatusView::Cancelled,
        }
    }
}

/// Outcome of a completed task: the action, its data and the person.
#[derive(Serialize, ToSchema)]
#[schema(as = TaskOutcome)]
pub(super) struct OutcomeView {
    pub action: String,
    /// The data sent with the completion; `{}` when none was sent.
    pub data: Value,
    pub by: String,
}

impl From<TaskOutcome> for OutcomeView {
    fn from(outcome: TaskOutcome) -> Self {
        Self {
            action: outcome.action,
            data: outcome.data,
            by: outcome.by,
        }
    }
}

/// A human task in the worklist.
#[derive(Serialize, ToSchema)]
#[schema(as = Task)]
pub(super) struct TaskView {
    pub id: String,
    pub instance_id: String,
    pub workflow: String,
    /// Step of the instance that asked for the task.
    pub step: u32,
    pub title: String,
    /// Actions the task may be completed with.
    pub actions: Vec<String>,
    /// Person the task is assigned to, if any.
    #[schema(required = true)]
    pub assignee: Option<String>,
    /// Group whose members may claim the task, if any.
    #[schema(required = true)]
    pub group: Option<String>,
    /// Form the workflow attached to the task, as it sent it.
    pub form: Value,
    pub status: TaskStatusView,
    /// Person who has the task: its assignee from the start, or the group
    /// member who claimed it.
    #[schema(required = true)]
    pub claimed_by: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the task expires, if it has a timeout.
    #[schema(required = true, format = DateTime)]
    pub due_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub completed_at: Option<String>,
    #[schema(required = true)]
    pub outcome: Option<OutcomeView>,
}

pub(super) fn task_view(task: TaskRecord) -> TaskView {
    TaskView {
        id: task.id,
        instance_id: task.instance_id,
        workflow: task.workflow,
        step: task.step,
        title: task.spec.title,
        actions: task.spec.actions,
        assignee: task.spec.assignee,
        group: task.spec.group,
        form: task.spec.form,
        status: task.status.into(),
        claimed_by: task.claimed_by,
        created_at: timestamp(task.created_at),
        due_at: task.due_at.map(timestamp),
        completed_at: task.completed_at.map(timestamp),
        outcome: task.outcome.map(OutcomeView::from),
    }
}

/// The worklist, oldest task first.
#[derive(Serialize, ToSchema)]
#[schema(as = TaskList)]
pub(super) struct TaskListView {
    pub tasks: Vec<TaskView>,
}

/// The kind of wait an instance is parked on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = WaitKind)]
pub(super) enum WaitKindView {
    HumanTask,
    Sleep,
    Message,
}

impl From<&WaitRequest> for WaitKindView {
    fn from(request: &WaitRequest) -> Self {
        match request {
            WaitRequest::HumanTask(_) => WaitKindView::HumanTask,
            WaitRequest::Sleep { .. } => WaitKindView::Sleep,
            WaitRequest::Message { .. } => WaitKindView::Message,
        }
    }
}

/// The wait an instance is parked on.
#[derive(Serialize, ToSchema)]
#[schema(as = Wait)]
pub(super) struct WaitView {
    pub kind: WaitKindView,
    pub step: u32,
    #[schema(format = DateTime)]
    pub since: String,
    /// When the wait times out or, for a sleep, ends.
    #[schema(required = true, format = DateTime)]
    pub until: Option<String>,
    /// Name of the awaited message; present for a `message` wait only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The open task; present for a `human-task` wait only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskView>,
}

/// An instance of a workflow version.
#[derive(Serialize, ToSchema)]
#[schema(as = Instance)]
pub(super) struct InstanceView {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    pub status: StatusView,
    /// The input the instance was started with.
    pub input: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The wait the instance is parked on; `null` unless `status` is
    /// `waiting`.
    #[schema(required = true)]
    pub wait: Option<WaitView>,
    /// Data fields the workflow set, by name.
    pub fields: BTreeMap<String, Value>,
    /// The workflow's result once it completed.
    #[schema(required = true)]
    pub output: Option<Value>,
    /// Failure reason, once the instance failed.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// Builds the view of an instance, with the task it waits on.
pub(super) async fn instance_view(
    state: &AppState,
    record: InstanceRecord,
) -> Result<InstanceView> {
    let wait = match record.wait.clone() {
        Some(wait) => Some(wait_view(state, wait).await?),
        None => None,
    };
    Ok(InstanceView {
        id: record.id,
        workflow: record.workflow,
        version: record.version,
        status: record.status.into(),
        input: record.input,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
        wait,
        fields: record.fields,
        output: record.output,
        error: record.error,
    })
}

async fn wait_view(state: &AppState, wait: OpenWait) -> Result<WaitView> {
    let task = match wait.task_id.clone() {
        Some(task_id) => {
            let store = state.runtime.store();
            blocking(move || store.task(&task_id)).await?.map(task_view)
        }
        None => None,
    };
    let message = match &wait.request {
        WaitRequest::Message { name, .. } => Some(name.clone()),
        _ => None,
    };
    Ok(WaitView {
        kind: WaitKindView::from(&wait.request),
        step: wait.step,
        since: timestamp(wait.since),
        until: wait.due.map(timestamp),
        message,
        task,
    })
}

/// Loads an instance record, or fails with `instance_not_found`.
pub(super) async fn load_instance(state: &AppState, id: &str) -> Result<InstanceRecord> {
    let store = state.runtime.store();
    let owned_id = id.to_owned();
    blocking(move || store.instance(&owned_id))
        .await?
        .ok_or_else(|| Error::instance_not_found(id))
}

/// Delivery of a message, with the instance after it.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageDelivery)]
pub(super) struct DeliveryView {
    /// `wait` when the instance was waiting for the message, `mailbox` when
    /// it is kept until the workflow requests it.
    pub delivered: DeliveredTo,
    pub instance: InstanceView,
}

/// Destination of a delivered message.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) enum DeliveredTo {
    Wait,
    Mailbox,
}

/// A completed task, with its instance after the completion.
#[derive(Serialize, ToSchema)]
#[schema(as = Completion)]
pub(super) struct CompletionView {
    pub task: TaskView,
    pub instance: InstanceView,
}

/// The `type` values of journal events, as the model serializes them.
pub(super) const EVENT_TYPES: [&str; 9] = [
    "started",
    "wait-started",
    "wait-resolved",
    "message-queued",
    "field-set",
    "log",
    "completed",
    "failed",
    "cancelled",
];

/// One journal event with its place and time.
#[derive(Serialize)]
pub(super) struct EventView {
    pub seq: u32,
    pub at: String,
    #[serde(flatten)]
    pub event: Event,
}

// The fields of each event type come from the model's `Event`, which has no
// schema of its own, so the schema names `seq`, `at` and `type` and leaves the
// other fields open.
impl utoipa::PartialSchema for EventView {
    fn schema() -> RefOr<Schema> {
        let seq = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(0))
            .description(Some("Place of the event in the journal, from 0."));
        let at = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
        let kind = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(EVENT_TYPES));
        ObjectBuilder::new()
            .description(Some(
                "One journal event. Besides `seq`, `at` and `type`, each type has fields of \
                 its own, such as `input` for `started` and `error` for `failed`.",
            ))
            .property("seq", seq)
            .property("at", at)
            .property("type", kind)
            .required("seq")
            .required("at")
            .required("type")
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl ToSchema for EventView {
    fn name() -> std::borrow::Cow<'static, str> {
        "Event".into()
    }
}

/// The journal of an instance, oldest event first.
#[derive(Serialize, ToSchema)]
#[schema(as = History)]
pub(super) struct HistoryView {
    pub instance_id: String,
    pub events: Vec<EventView>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{LogLevel, TaskSpec, WaitOutcome};

    /// Returns one event of every type. The match has no wildcard arm, so a
    /// new event type does not compile until it is added here.
    fn one_of_each() -> Vec<Event> {
        let events = vec![
            Event::Started {
                workflow: "w".into(),
                version: 1,
                input: json!({}),
            },
            Event::WaitStarted {
                step: 0,
                request: WaitRequest::HumanTask(TaskSpec {
                    title: "t".into(),
                    actions: vec!["ok".into()],
                    assignee: None,
                    group: None,
                    form: json!({}),
                    timeout_ms: None,
                }),
                task_id: None,
                due: None,
            },
            Event::WaitResolved {
                step: 0,
                outcome: WaitOutcome::Slept,
            },
            Event::MessageQueued { name: "m".into() },
            Event::FieldSet {
                name: "f".into(),
                value: json!(1),
            },
            Event::Log {
                level: LogLevel::Info,
                message: "l".into(),
            },
            Event::Completed { output: json!(1) },
            Event::Failed { error: "e".into() },
            Event::Cancelled,
        ];
        for event in &events {
            match event {
                Event::Started { .. }
                | Event::WaitStarted { .. }
                | Event::WaitResolved { .. }
                | Event::MessageQueued { .. }
                | Event::FieldSet { .. }
                | Event::Log { .. }
                | Event::Completed { .. }
                | Event::Failed { .. }
                | Event::Cancelled => {}
            }
        }
        events
    }

    #[test]
    fn event_types_match_the_model() {
        let mut seen = Vec::new();
        for event in one_of_each() {
            let view = EventView {
                seq: 0,
                at: timestamp(0),
                event,
            };
            let value = serde_json::to_value(&view).unwrap();
            let kind = value["type"].as_str().unwrap().to_owned();
            assert!(EVENT_TYPES.contains(&kind.as_str()), "{kind}");
            seen.push(kind);
        }
        assert_eq!(seen, EVENT_TYPES);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(1_500), "1970-01-01T00:00:01.500Z");
    }
}
