//! Durable state behind one trait: workflow versions, components, instances,
//! journals, tasks, timers and mailboxes.
//!
//! Each method is one transaction, committed before it returns, so whatever a
//! caller acknowledges after a call survives a crash. The operations are in
//! domain terms (begin a wait, complete a task) rather than rows, so that a
//! backend other than the embedded redb one can keep the same guarantees with
//! its own transactions.

mod redb;

pub use self::redb::RedbStore;

use serde_json::Value;

use crate::error::Result;
use crate::model::{
    Effect, Ending, InstanceRecord, JournalEntry, Millis, OpenWait, TaskOutcome, TaskRecord,
    TaskStatus, WaitOutcome, WaitRequest, WorkflowVersion,
};

/// A start request, as the store records it.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub workflow: String,
    pub version: u32,
    pub input: Value,
    pub idempotency_key: Option<String>,
}

/// The result of [`Store::create_instance`].
#[derive(Debug, Clone)]
pub enum Created {
    New(InstanceRecord),
    /// The idempotency key was used before, with the same input.
    Existing(InstanceRecord),
}

/// The result of [`Store::begin_wait`].
#[derive(Debug, Clone)]
pub enum Began {
    /// The instance is parked and the wait is open.
    Parked(OpenWait),
    /// The wait was satisfied at once, by a message already in the mailbox.
    Resolved { outcome: WaitOutcome, at: Millis },
}

/// A wait that was satisfied, for the runner of its instance to pick up.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub instance_id: String,
    pub step: u32,
    pub outcome: WaitOutcome,
    pub at: Millis,
}

/// The destination [`Store::deliver_message`] chose for a message.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The instance was waiting for it.
    ToWait(Resolution),
    /// The instance was not waiting for it, so it is kept in the mailbox.
    ToMailbox,
}

/// The filter of [`Store::tasks`].
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub assignee: Option<String>,
    pub group: Option<String>,
    /// `None` lists tasks in any state.
    pub status: Option<TaskStatus>,
    pub limit: usize,
}

/// The durable state of a host.
pub trait Store: Send + Sync + 'static {
    /// Stores the component and a new version of the workflow, unless the
    /// newest version has the same hash: then it returns that one and `false`.
    fn put_version(
        &self,
        name: &str,
        hash: &str,
        component: &[u8],
        world: &str,
        now: Millis,
    ) -> Result<(WorkflowVersion, bool)>;

    /// Lists the versions of a workflow, oldest first.
    fn versions(&self, name: &str) -> Result<Vec<WorkflowVersion>>;

    /// Lists every version of every workflow, by name and then version.
    fn all_versions(&self) -> Result<Vec<WorkflowVersion>>;

    fn component(&self, hash: &str) -> Result<Option<Vec<u8>>>;

    /// Returns machine code cached for a component under `key`.
    fn compiled(&self, key: &str) -> Result<Option<Vec<u8>>>;

    fn put_compiled(&self, key: &str, code: &[u8]) -> Result<()>;

    /// Stores a new instance in the running state, or returns the existing one
    /// for a repeated idempotency key. A repeated key with another input is a
    /// conflict.
    fn create_instance(&self, new: NewInstance, now: Millis) -> Result<Created>;

    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>>;

    fn journal(&self, id: &str) -> Result<Vec<JournalEntry>>;

    /// Lists the instances in the running state: those a host start must run.
    fn runnable_instances(&self) -> Result<Vec<String>>;

    /// Records the wait-state call at `step` with the effects that came before
    /// it, and parks the instance, unless the mailbox already contains the
    /// message the call waits for. Fails with `instance_fenced` when the
    /// instance is not running at that step, so that a stale runner stops.
    fn begin_wait(
        &self,
        id: &str,
        step: u32,
        request: &WaitRequest,
        effects: Vec<Effect>,
        now: Millis,
    ) -> Result<Began>;

    /// Records the end of a running instance with the effects before it.
    fn finish(&self, id: &str, ending: Ending, effects: Vec<Effect>, now: Millis) -> Result<()>;

    /// Completes an open task and resolves the wait on it.
    fn complete_task(
        &self,
        task_id: &str,
        outcome: TaskOutcome,
        now: Millis,
    ) -> Result<(TaskRecord, Resolution)>;

    /// Gives an open task to one person; fails when it is reserved for someone else.
    fn claim_task(&self, task_id: &str, by: &str) -> Result<TaskRecord>;

    /// Returns a claimed group task to its group.
    fn release_task(&self, task_id: &str, by: &str) -> Result<TaskRecord>;

    /// Hands a message to the instance's open wait for it, or keeps it in the
    /// mailbox. Fails when the instance has ended.
    fn deliver_message(
        &self,
        id: &str,
        name: &str,
        payload: Value,
        now: Millis,
    ) -> Result<Delivery>;

    /// Cancels an instance that has not ended, with its open task and timer.
    fn cancel(&self, id: &str, now: Millis) -> Result<InstanceRecord>;

    /// Returns when the earliest timer fires.
    fn next_due(&self) -> Result<Option<Millis>>;

    /// Fires up to `limit` timers due at `now` and resolves their waits.
    fn fire_due(&self, now: Millis, limit: usize) -> Result<Vec<Resolution>>;

    fn task(&self, id: &str) -> Result<Option<TaskRecord>>;

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>>;
}
