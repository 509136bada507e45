//! The embedded store: one redb file.
//!
//! Records are JSON in tables keyed for the lookups the host makes. Journals
//! are keyed by (instance, sequence). Timers are keyed by (due time,
//! instance, step), so the next one to fire is the first key. Mailboxes are
//! keyed by (instance, name, sequence), so messages of one name come out in
//! arrival order.

use std::path::Path;

use redb::{
    Database, MultimapTableDefinition, ReadTransaction, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Began, Created, Delivery, NewInstance, Resolution, Store, TaskFilter};
use crate::error::{Error, Result};
use crate::model::{
    Effect, Ending, Event, InstanceRecord, JournalEntry, Millis, OpenWait, Status, TaskOutcome,
    TaskRecord, TaskStatus, WaitOutcome, WaitRequest, WorkflowVersion, new_id,
};

const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
const COMPILED: TableDefinition<&str, &[u8]> = TableDefinition::new("compiled");
const VERSIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("versions");
const INSTANCES: TableDefinition<&str, &[u8]> = TableDefinition::new("instances");
/// Ids of the instances in the running state, which a host start resumes.
const RUNNABLE: TableDefinition<&str, u8> = TableDefinition::new("runnable");
const JOURNAL: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("journal");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const OPEN_TASKS: TableDefinition<&str, u8> = TableDefinition::new("open_tasks");
const TASKS_BY_ASSIGNEE: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("tasks_by_assignee");
const TASKS_BY_GROUP: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("tasks_by_group");
const TIMERS: TableDefinition<(u64, &str, u32), u8> = TableDefinition::new("timers");
const MAILBOX: TableDefinition<(&str, &str, u32), &[u8]> = TableDefinition::new("mailbox");
const IDEMPOTENCY: TableDefinition<(&str, &str), &str> = TableDefinition::new("idempotency");

/// A [`Store`] in one redb database file.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens the database at `path`, creating the file and its tables if
    /// needed. `cache_bytes` caps redb's page cache, which is most of the
    /// memory a host with many instances uses.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|error| {
                Error::internal(format!("cannot open database {}: {error}", path.display()))
            })?;
        let store = Self { db };
        store.write(|txn| {
            txn.open_table(COMPONENTS)?;
            txn.open_table(COMPILED)?;
            txn.open_table(VERSIONS)?;
            txn.open_table(INSTANCES)?;
            txn.open_table(RUNNABLE)?;
            txn.open_table(JOURNAL)?;
            txn.open_table(TASKS)?;
            txn.open_table(OPEN_TASKS)?;
            txn.open_multimap_table(TASKS_BY_ASSIGNEE)?;
            txn.open_multimap_table(TASKS_BY_GROUP)?;
            txn.open_table(TIMERS)?;
            txn.open_table(MAILBOX)?;
            txn.open_table(IDEMPOTENCY)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `body` in a write transaction and commits it when `body` succeeds.
    /// On an error the transaction is dropped, which aborts it.
    fn write<T>(&self, body: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_write()?;
        let value = body(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    fn read<T>(&self, body: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read()?;
        body(&txn)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn load<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>> {
    match table.get(key)? {
        Some(bytes) => Ok(Some(decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Loads a task that must exist and be open: `task_not_found` or
/// `task_not_open` otherwise.
fn load_open_task(
    tasks: &impl ReadableTable<&'static str, &'static [u8]>,
    task_id: &str,
) -> Result<TaskRecord> {
    let task: TaskRecord = load(tasks, task_id)?.ok_or_else(|| Error::task_not_found(task_id))?;
    if task.status != TaskStatus::Open {
        return Err(Error::conflict(
            "task_not_open",
            format!("task {task_id} is {}, not open", task.status.as_str()),
        ));
    }
    Ok(task)
}

/// The tables a change to an instance touches, open in one write transaction.
struct InstanceTables<'txn> {
    instances: redb::Table<'txn, &'static str, &'static [u8]>,
    runnable: redb::Table<'txn, &'static str, u8>,
    journal: redb::Table<'txn, (&'static str, u32), &'static [u8]>,
}

impl<'txn> InstanceTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self> {
        Ok(Self {
            instances: txn.open_table(INSTANCES)?,
            runnable: txn.open_table(RUNNABLE)?,
            journal: txn.open_table(JOURNAL)?,
        })
    }

    fn get(&self, id: &str) -> Result<InstanceRecord> {
        load(&self.instances, id)?.ok_or_else(|| Error::instance_not_found(id))
    }

    /// Stores the record and keeps the index of runnable instances in step
    /// with its status.
    fn put(&mut self, record: &InstanceRecord) -> Result<()> {
        self.instances
            .insert(record.id.as_str(), encode(record)?.as_slice())?;
        if record.status == Status::Running {
            self.runnable.insert(record.id.as_str(), 0)?;
        } else {
            self.runnable.remove(record.id.as_str())?;
        }
        Ok(())
    }

    fn append(&mut self, record: &mut InstanceRecord, at: Millis, event: Event) -> Result<()> {
        let entry = JournalEntry {
            seq: record.next_seq,
            at,
            event,
        };
        self.journal
            .insert((record.id.as_str(), entry.seq), encode(&entry)?.as_slice())?;
        record.next_seq += 1;
        record.updated_at = at;
        Ok(())
    }

    /// Journals the effects and applies the field changes to the record.
    fn apply_effects(
        &mut self,
        record: &mut InstanceRecord,
        effects: Vec<Effect>,
        at: Millis,
    ) -> Result<()> {
        for effect in effects {
            if let Effect::Field { name, value } = &effect {
                record.fields.insert(name.clone(), value.clone());
            }
            self.append(record, at, effect.into_event())?;
        }
        Ok(())
    }

    /// Journals the resolution of the open wait and makes the instance
    /// runnable again.
    fn resolve(
        &mut self,
        record: &mut InstanceRecord,
        outcome: WaitOutcome,
        at: Millis,
    ) -> Result<Resolution> {
        let wait = record
            .wait
            .take()
            .ok_or_else(|| Error::internal(format!("instance {} has no open wait", record.id)))?;
        self.append(
            record,
            at,
            Event::WaitResolved {
                step: wait.step,
                outcome: outcome.clone(),
            },
        )?;
        record.status = Status::Running;
        self.put(record)?;
        Ok(Resolution {
            instance_id: record.id.clone(),
            step: wait.step,
            outcome,
            at,
        })
    }
}

fn instance_fenced(record: &InstanceRecord, step: u32) -> Error {
    Error::conflict(
        "instance_fenced",
        format!(
            "instance {} is {} at step {}, not running at step {step}",
            record.id,
            record.status.as_str(),
            record.next_step
        ),
    )
}

fn instance_finished(record: &InstanceRecord) -> Error {
    Error::conflict(
        "instance_finished",
        format!(
            "instance {} has already {}",
            record.id,
            record.status.as_str()
        ),
    )
}

fn remove_timer(txn: &WriteTransaction, wait: &OpenWait, id: &str) -> Result<()> {
    if let Some(due) = wait.due {
        txn.open_table(TIMERS)?.remove((due, id, wait.step))?;
    }
    Ok(())
}

/// Ends the open task of a wait that was resolved or abandoned other than by
/// its completion.
fn close_task(txn: &WriteTransaction, wait: &OpenWait, status: TaskStatus) -> Result<()> {
    let Some(task_id) = &wait.task_id else {
        return Ok(());
    };
    let mut tasks = txn.open_table(TASKS)?;
    let Some(mut task) = load::<TaskRecord>(&tasks, task_id)? else {
        return Ok(());
    };
    task.status = status;
    tasks.insert(task_id.as_str(), encode(&task)?.as_slice())?;
    txn.open_table(OPEN_TASKS)?.remove(task_id.as_str())?;
    Ok(())
}

fn create_task(
    txn: &WriteTransaction,
    record: &InstanceRecord,
    step: u32,
    spec: &crate::model::TaskSpec,
    due: Option<Millis>,
    now: Millis,
) -> Result<String> {
    let task = TaskRecord {
        id: new_id(),
        instance_id: record.id.clone(),
        workflow: record.workflow.clone(),
        step,
        spec: spec.clone(),
        status: TaskStatus::Open,
        claimed_by: spec.assignee.clone(),
        created_at: now,
        due_at: due,
        completed_at: None,
        outcome: None,
    };
    txn.open_table(TASKS)?
        .insert(task.id.as_str(), encode(&task)?.as_slice())?;
    txn.open_table(OPEN_TASKS)?.insert(task.id.as_str(), 0)?;
    if let Some(assignee) = &spec.assignee {
        txn.open_multimap_table(TASKS_BY_ASSIGNEE)?
            .insert(assignee.as_str(), task.id.as_str())?;
    }
    if let Some(group) = &spec.group {
        txn.open_multimap_table(TASKS_BY_GROUP)?
            .insert(group.as_str(), task.id.as_str())?;
    }
    Ok(task.id)
}

/// Takes the oldest message of this name from the instance's mailbox.
fn take_message(txn: &WriteTransaction, id: &str, name: &str) -> Result<Option<Value>> {
    let mut mailbox = txn.open_table(MAILBOX)?;
    let first = mailbox
        .range((id, name, 0)..=(id, name, u32::MAX))?
        .next()
        .transpose()?
        .map(|(key, payload)| (key.value().2, payload.value().to_vec()));
    let Some((seq, payload)) = first else {
        return Ok(None);
    };
    mailbox.remove((id, name, seq))?;
    Ok(Some(decode(&payload)?))
}

fn clear_mailbox(txn: &WriteTransaction, id: &str) -> Result<()> {
    let mut mailbox = txn.open_table(MAILBOX)?;
    let mut keys: Vec<(String, u32)> = Vec::new();
    for entry in mailbox.range((id, "", 0)..)? {
        let (key, _) = entry?;
        let (owner, name, seq) = key.value();
        if owner != id {
            break;
        }
        keys.push((name.to_owned(), seq));
    }
    for (name, seq) in keys {
        mailbox.remove((id, name.as_str(), seq))?;
    }
    Ok(())
}

impl Store for RedbStore {
    fn put_version(
        &self,
        name: &str,
        hash: &str,
        component: &[u8],
        world: &str,
        now: Millis,
    ) -> Result<(WorkflowVersion, bool)> {
        self.write(|txn| {
            let mut versions = txn.open_table(VERSIONS)?;
            let newest = versions
                .range((name, 0)..=(name, u32::MAX))?
                .next_back()
                .transpose()?
                .map(|(_, bytes)| decode::<WorkflowVersion>(bytes.value()))
                .transpose()?;
            if let Some(newest) = newest.as_ref().filter(|newest| newest.hash == hash) {
                return Ok((newest.clone(), false));
            }
            let version = WorkflowVersion {
                name: name.to_owned(),
                version: newest.map_or(1, |newest| newest.version + 1),
                hash: hash.to_owned(),
                size: component.len() as u64,
                world: world.to_owned(),
                created_at: now,
            };
            versions.insert((name, version.version), encode(&version)?.as_slice())?;
            txn.open_table(COMPONENTS)?.insert(hash, component)?;
            Ok((version, true))
        })
    }

    fn versions(&self, name: &str) -> Result<Vec<WorkflowVersion>> {
        self.read(|txn| {
            let versions = txn.open_table(VERSIONS)?;
            let mut list = Vec::new();
            for entry in versions.range((name, 0)..=(name, u32::MAX))? {
                list.push(decode(entry?.1.value())?);
            }
            Ok(list)
        })
    }

    fn all_versions(&self) -> Result<Vec<WorkflowVersion>> {
        self.read(|txn| {
            let versions = txn.open_table(VERSIONS)?;
            let mut list = Vec::new();
            for entry in versions.iter()? {
                list.push(decode(entry?.1.value())?);
            }
            Ok(list)
        })
    }

    fn component(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        self.read(|txn| {
            let table = txn.open_table(COMPONENTS)?;
            Ok(table.get(hash)?.map(|bytes| bytes.value().to_vec()))
        })
    }

    fn compiled(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|txn| {
            let table = txn.open_table(COMPILED)?;
            Ok(table.get(key)?.map(|bytes| bytes.value().to_vec()))
        })
    }

    fn put_compiled(&self, key: &str, code: &[u8]) -> Result<()> {
        self.write(|txn| {
            txn.open_table(COMPILED)?.insert(key, code)?;
            Ok(())
        })
    }

    fn create_instance(&self, new: NewInstance, now: Millis) -> Result<Created> {
        self.write(|txn| {
            let mut tables = InstanceTables::open(txn)?;
            let mut idempotency = txn.open_table(IDEMPOTENCY)?;
            if let Some(key) = &new.idempotency_key {
                let existing = idempotency
                    .get((new.workflow.as_str(), key.as_str()))?
                    .map(|id| id.value().to_owned());
                if let Some(id) = existing {
                    let record = tables.get(&id)?;
                    if record.input != new.input {
                        return Err(Error::conflict(
                            "idempotency_key_reused",
                            format!(
                                "idempotency key {key:?} already started instance {id} with a \
                                 different input; use a new key for a new start"
                            ),
                        ));
                    }
                    return Ok(Created::Existing(record));
                }
            }

            let mut record = InstanceRecord {
                id: new_id(),
                workflow: new.workflow.clone(),
                version: new.version,
                status: Status::Running,
                input: new.input.clone(),
                created_at: now,
                updated_at: now,
                wait: None,
                fields: Default::default(),
                output: None,
                error: None,
                next_seq: 0,
                next_step: 0,
                idempotency_key: new.idempotency_key.clone(),
            };
            let started = Event::Started {
                workflow: new.workflow.clone(),
                version: new.version,
                input: new.input,
            };
            tables.append(&mut record, now, started)?;
            tables.put(&record)?;
            if let Some(key) = &new.idempotency_key {
                idempotency.insert((new.workflow.as_str(), key.as_str()), record.id.as_str())?;
            }
            Ok(Created::New(record))
        })
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>> {
        self.read(|txn| load(&txn.open_table(INSTANCES)?, id))
    }

    fn journal(&self, id: &str) -> Result<Vec<JournalEntry>> {
        self.read(|txn| {
            let journal = txn.open_table(JOURNAL)?;
            let mut entries = Vec::new();
            for entry in journal.range((id, 0)..=(id, u32::MAX))? {
                entries.push(decode(entry?.1.value())?);
            }
            Ok(entries)
        })
    }

    fn runnable_instances(&self) -> Result<Vec<String>> {
        self.read(|txn| {
            let runnable = txn.open_table(RUNNABLE)?;
            let mut ids = Vec::with_capacity(runnable.len()? as usize);
            for entry in runnable.iter()? {
                ids.push(entry?.0.value().to_owned());
            }
            Ok(ids)
        })
    }

    fn begin_wait(
        &self,
        id: &str,
        step: u32,
        request: &WaitRequest,
        effects: Vec<Effect>,
        now: Millis,
    ) -> Result<Began> {
        self.write(|txn| {
            let mut tables = InstanceTables::open(txn)?;
            let mut record = tables.get(id)?;
            if record.status != Status::Running || record.next_step != step {
                return Err(instance_fenced(&record, step));
            }
            tables.apply_effects(&mut record, effects, now)?;
            record.next_step += 1;

            // A message that arrived before the workflow asked for it
            // satisfies the wait at once, in this same transaction.
            if let WaitRequest::Message { name, .. } = request
                && let Some(payload) = take_message(txn, id, name)?
            {
                let started = Event::WaitStarted {
                    step,
                    request: request.clone(),
                    task_id: None,
                    due: None,
                };
                tables.append(&mut record, now, started)?;
                let outcome = WaitOutcome::MessageReceived { payload };
                let resolved = Event::WaitResolved {
                    step,
                    outcome: outcome.clone(),
                };
                tables.append(&mut record, now, resolved)?;
                tables.put(&record)?;
                return Ok(Began::Resolved { outcome, at: now });
            }

            let due = request
                .timeout_ms()
                .map(|timeout| now.saturating_add(timeout));
            let task_id = match request {
                WaitRequest::HumanTask(spec) => {
                    Some(create_task(txn, &record, step, spec, due, now)?)
                }
                _ => None,
            };
            if let Some(due) = due {
                txn.open_table(TIMERS)?.insert((due, id, step), 0)?;
            }
            let wait = OpenWait {
                step,
                since: now,
                request: request.clone(),
                task_id: task_id.clone(),
                due,
            };
            let started = Event::WaitStarted {
                step,
                request: request.clone(),
                task_id,
                due,
            };
            tables.append(&mut record, now, started)?;
            record.status = Status::Waiting;
            record.wait = Some(wait.clone());
            tables.put(&record)?;
            Ok(Began::Parked(wait))
        })
    }

    fn finish(&self, id: &str, ending: Ending, effects: Vec<Effect>, now: Millis) -> Result<()> {
        self.write(|txn| {
            let mut tables = InstanceTables::open(txn)?;
            let mut record = tables.get(id)?;
            if record.status != Status::Running {
                return Err(instance_fenced(&record, record.next_step));
            }
            tables.apply_effects(&mut record, effects, now)?;
            let event = match ending {
                Ending::Completed(output) => {
                    record.status = Status::Completed;
                    record.output = Some(output.clone());
                    Event::Completed { output }
                }
                Ending::Failed(error) => {
                    record.status = Status::Failed;
                    record.error = Some(error.clone());
                    Event::Failed { error }
                }
            };
            tables.append(&mut record, now, event)?;
            tables.put(&record)?;
            clear_mailbox(txn, id)
        })
    }

    fn complete_task(
        &self,
        task_id: &str,
        outcome: TaskOutcome,
        now: Millis,
    ) -> Result<(TaskRecord, Resolution)> {
        self.write(|txn| {
            let mut tasks = txn.open_table(TASKS)?;
            let mut task: TaskRecord = load_open_task(&tasks, task_id)?;
            if !task.spec.actions.contains(&outcome.action) {
                return Err(Error::unprocessable(
                    "action_not_allowed",
                    format!(
                        "task {task_id} does not allow action {:?}; allowed: {}",
                        outcome.action,
                        task.spec.actions.join(", ")
                    ),
                ));
            }
            if let Some(holder) = task
                .claimed_by
                .as_ref()
                .filter(|holder| **holder != outcome.by)
            {
                return Err(Error::conflict(
                    "task_claimed",
                    format!("task {task_id} is held by {holder:?}, not {:?}", outcome.by),
                ));
            }

            let mut tables = InstanceTables::open(txn)?;
            let mut record = tables.get(&task.instance_id)?;
            let wait = record
                .wait
                .clone()
                .filter(|wait| wait.step == task.step && record.status == Status::Waiting)
                .ok_or_else(|| {
                    Error::internal(format!(
                        "task {task_id} is open but instance {} does not wait on it",
                        record.id
                    ))
                })?;
            remove_timer(txn, &wait, &record.id)?;
            let resolution = tables.resolve(
                &mut record,
                WaitOutcome::TaskCompleted(outcome.clone()),
                now,
            )?;

            task.status = TaskStatus::Completed;
            task.claimed_by = Some(outcome.by.clone());
            task.completed_at = Some(now);
            task.outcome = Some(outcome);
            tasks.insert(task_id, encode(&task)?.as_slice())?;
            txn.open_table(OPEN_TASKS)?.remove(task_id)?;
            Ok((task, resolution))
        })
    }

    fn claim_task(&self, task_id: &str, by: &str) -> Result<TaskRecord> {
        self.write(|txn| {
            let mut tasks = txn.open_table(TASKS)?;
            let mut task: TaskRecord = load_open_task(&tasks, task_id)?;
            match task.claimed_by.as_deref() {
                Some(holder) if holder == by => return Ok(task),
                Some(holder) => {
                    return Err(Error::conflict(
                        "task_claimed",
                        format!("task {task_id} is already held by {holder:?}"),
                    ));
                }
                None => {}
            }
            task.claimed_by = Some(by.to_owned());
            tasks.insert(task_id, encode(&task)?.as_slice())?;
            Ok(task)
        })
    }

    fn release_task(&self, task_id: &str, by: &str) -> Result<TaskRecord> {
        self.write(|txn| {
            let mut tasks = txn.open_table(TASKS)?;
            let mut task: TaskRecord = load_open_task(&tasks, task_id)?;
            if task.spec.assignee.is_some() {
                return Err(Error::conflict(
                    "task_assigned",
                    format!("task {task_id} is assigned to one person and cannot be released"),
                ));
            }
            match task.claimed_by.as_deref() {
                None => Ok(task),
                Some(holder) if holder != by => Err(Error::conflict(
                    "task_claimed",
                    format!("task {task_id} is held by {holder:?}, not {by:?}"),
                )),
                Some(_) => {
                    task.claimed_by = None;
                    tasks.insert(task_id, encode(&task)?.as_slice())?;
                    Ok(task)
                }
            }
        })
    }

    fn deliver_message(
        &self,
        id: &str,
        name: &str,
        payload: Value,
        now: Millis,
    ) -> Result<Delivery> {
        self.write(|txn| {
            let mut tables = InstanceTables::open(txn)?;
            let mut record = tables.get(id)?;
            if record.status.is_final() {
                return Err(instance_finished(&record));
            }
            let waiting_for_it = record.status == Status::Waiting
                && matches!(
                    record.wait.as_ref().map(|wait| &wait.request),
                    Some(WaitRequest::Message { name: awaited, .. }) if awaited == name
                );
            if waiting_for_it {
                let wait = record.wait.clone().expect("checked above");
                remove_timer(txn, &wait, id)?;
                let outcome = WaitOutcome::MessageReceived { payload };
                let resolution = tables.resolve(&mut record, outcome, now)?;
                return Ok(Delivery::ToWait(resolution));
            }

            let seq = record.next_seq;
            tables.append(
                &mut record,
                now,
                Event::MessageQueued {
                    name: name.to_owned(),
                },
            )?;
            tables.put(&record)?;
            txn.open_table(MAILBOX)?
                .insert((id, name, seq), encode(&payload)?.as_slice())?;
            Ok(Delivery::ToMailbox)
        })
    }

    fn cancel(&self, id: &str, now: Millis) -> Result<InstanceRecord> {
        self.write(|txn| {
            let mut tables = InstanceTables::open(txn)?;
            let mut record = tables.get(id)?;
            if record.status.is_final() {
                return Err(instance_finished(&record));
            }
            if let Some(wait) = record.wait.take() {
                remove_timer(txn, &wait, id)?;
                close_task(txn, &wait, TaskStatus::Cancelled)?;
            }
            record.status = Status::Cancelled;
            tables.append(&mut record, now, Event::Cancelled)?;
            tables.put(&record)?;
            clear_mailbox(txn, id)?;
            Ok(record)
        })
    }

    fn next_due(&self) -> Result<Option<Millis>> {
        self.read(|txn| {
            let timers = txn.open_table(TIMERS)?;
            Ok(timers.first()?.map(|(key, _)| key.value().0))
        })
    }

    fn fire_due(&self, now: Millis, limit: usize) -> Result<Vec<Resolution>> {
        self.write(|txn| {
            let mut timers = txn.open_table(TIMERS)?;
            let mut due: Vec<(u64, String, u32)> = Vec::new();
            for entry in timers.iter()? {
                let (key, _) = entry?;
                let (at, id, step) = key.value();
                if at > now || due.len() >= limit {
                    break;
                }
                due.push((at, id.to_owned(), step));
            }
            for (at, id, step) in &due {
                timers.remove((*at, id.as_str(), *step))?;
            }
            drop(timers);

            let mut tables = InstanceTables::open(txn)?;
            let mut resolutions = Vec::with_capacity(due.len());
            for (_, id, step) in due {
                let Some(mut record) = load::<InstanceRecord>(&tables.instances, &id)? else {
                    continue;
                };
                let Some(wait) = record.wait.clone().filter(|wait| wait.step == step) else {
                    continue;
                };
                if record.status != Status::Waiting {
                    continue;
                }
                close_task(txn, &wait, TaskStatus::Expired)?;
                let outcome = wait.request.timeout_outcome();
                resolutions.push(tables.resolve(&mut record, outcome, now)?);
            }
            Ok(resolutions)
        })
    }

    fn task(&self, id: &str) -> Result<Option<TaskRecord>> {
        self.read(|txn| load(&txn.open_table(TASKS)?, id))
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>> {
        self.read(|txn| {
            let tasks = txn.open_table(TASKS)?;
            let mut ids: Vec<String> = Vec::new();
            if let Some(assignee) = &filter.assignee {
                let index = txn.open_multimap_table(TASKS_BY_ASSIGNEE)?;
                for id in index.get(assignee.as_str())? {
                    ids.push(id?.value().to_owned());
                }
            } else if let Some(group) = &filter.group {
                let index = txn.open_multimap_table(TASKS_BY_GROUP)?;
                for id in index.get(group.as_str())? {
                    ids.push(id?.value().to_owned());
                }
            } else if filter.status == Some(TaskStatus::Open) {
                for entry in txn.open_table(OPEN_TASKS)?.iter()? {
                    ids.push(entry?.0.value().to_owned());
                }
            } else {
                for entry in tasks.iter()? {
                    ids.push(entry?.0.value().to_owned());
                }
            }
            ids.sort();

            let mut list = Vec::new();
            for id in ids {
                let Some(task) = load::<TaskRecord>(&tasks, &id)? else {
                    continue;
                };
                let wanted = filter.status.is_none_or(|status| task.status == status)
                    && filter
                        .group
                        .as_ref()
                        .is_none_or(|group| task.spec.group.as_ref() == Some(group));
                if wanted {
                    list.push(task);
                    if list.len() >= filter.limit {
                        break;
                    }
                }
            }
            Ok(list)
        })
    }
}
