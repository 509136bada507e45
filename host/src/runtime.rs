//! The runtime: starts instances, routes completions, messages and timers to
//! them, and keeps one runner per instance that has work to do.
//!
//! Every operation commits to the store first and only then wakes the
//! instance, so a crash between the two loses nothing: the next host start
//! runs every runnable instance from its journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::blocking;
use crate::engine::{Engine, RunContext, RunEnd, Signal, WORLD, run_instance};
use crate::error::{Error, Result};
use crate::model::{InstanceRecord, TaskOutcome, TaskRecord, WorkflowVersion, now_ms};
use crate::store::{Created, Delivery, NewInstance, Resolution, Store};

/// A request to start an instance.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub workflow: String,
    /// `None` starts the newest version.
    pub version: Option<u32>,
    pub input: Value,
    pub idempotency_key: Option<String>,
    /// For a sync call, how long to wait for the first checkpoint.
    pub sync: Option<Duration>,
}

/// An instance after a call that may have set it going.
#[derive(Debug, Clone)]
pub struct Progress {
    pub instance: InstanceRecord,
    /// The sync call saw the instance reach a checkpoint in time.
    pub settled: bool,
}

/// The result of a start.
#[derive(Debug, Clone)]
pub struct Started {
    pub progress: Progress,
    /// `false` when an idempotency key returned an earlier start.
    pub new: bool,
}

pub struct Runtime {
    engine: Arc<Engine>,
    context: Arc<RunContext>,
    /// The signal senders of instances with a live runner.
    runners: Mutex<HashMap<String, mpsc::UnboundedSender<Signal>>>,
}

impl Runtime {
    pub fn new(engine: Arc<Engine>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            context: Arc::new(RunContext {
                store,
                checkpoints: Default::default(),
                timers: Default::default(),
                parked: Default::default(),
            }),
            runners: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.context.store.clone()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Returns how many instances have a runner, and how many of those are
    /// parked in memory.
    pub fn resident(&self) -> (usize, usize) {
        let runners = self.runners.lock().expect("runner lock poisoned").len();
        let parked = self
            .context
            .parked
            .load(std::sync::atomic::Ordering::Relaxed);
        (runners, parked)
    }

    pub(crate) fn context(&self) -> &Arc<RunContext> {
        &self.context
    }

    /// Starts a runner for every instance that was running when the host
    /// stopped. Returns how many.
    pub async fn recover(self: &Arc<Self>) -> Result<usize> {
        let store = self.store();
        let ids = blocking(move || store.runnable_instances()).await?;
        for id in &ids {
            self.wake(id, None);
        }
        Ok(ids.len())
    }

    /// Validates, compiles and stores a workflow component as the workflow's
    /// newest version. Uploading the bytes of the newest version again
    /// returns that version and `false`.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<(WorkflowVersion, bool)> {
        validate_name(name)?;
        let engine = self.engine.clone();
        let store = self.store();
        let name = name.to_owned();
        blocking(move || {
            let (hash, code) = engine.compile(&bytes)?;
            let (version, created) = store.put_version(&name, &hash, &bytes, WORLD, now_ms())?;
            if created {
                store.put_compiled(&engine.cache_key(&hash), &code)?;
            }
            Ok((version, created))
        })
        .await
    }

    pub async fn start(self: &Arc<Self>, request: StartRequest) -> Result<Started> {
        let limit = self.engine.limits().document_bytes;
        let size = request.input.to_string().len();
        if size > limit {
            return Err(Error::too_large(
                "input_too_large",
                format!("the input is {size} bytes, over the limit of {limit} bytes"),
            ));
        }
        let store = self.store();
        let engine = self.engine.clone();
        let StartRequest {
            workflow,
            version,
            input,
            idempotency_key,
            sync,
        } = request;
        let created = blocking(move || {
            let versions = store.versions(&workflow)?;
            let version = match version {
                Some(wanted) => versions
                    .iter()
                    .find(|record| record.version == wanted)
                    .ok_or_else(|| Error::version_not_found(&workflow, wanted))?,
                None => versions
                    .last()
                    .ok_or_else(|| Error::workflow_not_found(&workflow))?,
            };
            // Loading the component here keeps compilation off the run path
            // and fails the start, not the instance, if it cannot load.
            engine.ready(store.as_ref(), &workflow, version.version)?;
            let new = NewInstance {
                workflow: workflow.clone(),
                version: version.version,
                input,
                idempotency_key,
            };
            store.create_instance(new, now_ms())
        })
        .await?;

        let record = match created {
            Created::Existing(instance) => {
                let progress = Progress {
                    instance,
                    settled: false,
                };
                return Ok(Started {
                    progress,
                    new: false,
                });
            }
            Created::New(record) => record,
        };
        tracing::info!(
            instance = %record.id,
            workflow = %record.workflow,
            version = record.version,
            "instance started"
        );
        let checkpoint = sync.map(|_| self.context.checkpoints.subscribe(&record.id));
        self.wake(&record.id, None);
        let progress = self.progress(&record.id, checkpoint, sync).await?;
        Ok(Started {
            progress,
            new: true,
        })
    }

    /// Completes a task and resumes its instance.
    pub async fn complete_task(
        self: &Arc<Self>,
        task_id: &str,
        outcome: TaskOutcome,
        sync: Option<Duration>,
    ) -> Result<(TaskRecord, Progress)> {
        let limit = self.engine.limits().document_bytes;
        let size = outcome.data.to_string().len();
        if size > limit {
            return Err(Error::too_large(
                "data_too_large",
                format!("the task data is {size} bytes, over the limit of {limit} bytes"),
            ));
        }
        let store = self.store();
        let owned_id = task_id.to_owned();
        let (task, resolution) =
            blocking(move || store.complete_task(&owned_id, outcome, now_ms())).await?;
        tracing::info!(
            task = %task.id,
            instance = %task.instance_id,
            action = task.outcome.as_ref().map_or("", |outcome| outcome.action.as_str()),
            "task completed"
        );
        let progress = self.resume(resolution, sync).await?;
        Ok((task, progress))
    }

    /// Delivers a message. Returns whether the instance was waiting for it.
    pub async fn send_message(
        self: &Arc<Self>,
        id: &str,
        name: &str,
        payload: Value,
        sync: Option<Duration>,
    ) -> Result<(bool, Progress)> {
        let limit = self.engine.limits().document_bytes;
        let size = payload.to_string().len();
        if size > limit {
            return Err(Error::too_large(
                "message_too_large",
                format!("the message is {size} bytes, over the limit of {limit} bytes"),
            ));
        }
        if name.is_empty() || name.len() > 128 {
            return Err(Error::bad_request(
                "invalid_message_name",
                format!("message name {name:?} is invalid; use 1 to 128 bytes"),
            ));
        }
        let store = self.store();
        let (owned_id, owned_name) = (id.to_owned(), name.to_owned());
        let delivery =
            blocking(move || store.deliver_message(&owned_id, &owned_name, payload, now_ms()))
                .await?;
        match delivery {
            Delivery::ToWait(resolution) => {
                tracing::info!(instance = %id, message = %name, "message delivered to its wait");
                Ok((true, self.resume(resolution, sync).await?))
            }
            Delivery::ToMailbox => {
                tracing::info!(instance = %id, message = %name, "message kept in the mailbox");
                let progress = self.progress(id, None, None).await?;
                Ok((false, progress))
            }
        }
    }

    pub async fn cancel(&self, id: &str) -> Result<InstanceRecord> {
        let store = self.store();
        let owned_id = id.to_owned();
        let record = blocking(move || store.cancel(&owned_id, now_ms())).await?;
        tracing::info!(instance = %id, "instance cancelled");
        let runner = self
            .runners
            .lock()
            .expect("runner lock poisoned")
            .get(id)
            .cloned();
        if let Some(runner) = runner {
            let _ = runner.send(Signal::Cancelled);
        }
        self.context.checkpoints.reached(id);
        Ok(record)
    }

    /// Hands the resolution to the instance's runner, for a sync call after
    /// subscribing to its next checkpoint.
    async fn resume(
        self: &Arc<Self>,
        resolution: Resolution,
        sync: Option<Duration>,
    ) -> Result<Progress> {
        let id = resolution.instance_id.clone();
        let checkpoint = sync.map(|_| self.context.checkpoints.subscribe(&id));
        self.wake(&id, Some(Signal::Resolved(resolution)));
        self.progress(&id, checkpoint, sync).await
    }

    /// Waits for the checkpoint, if any, up to the sync timeout, and reads the
    /// instance.
    async fn progress(
        &self,
        id: &str,
        checkpoint: Option<oneshot::Receiver<()>>,
        sync: Option<Duration>,
    ) -> Result<Progress> {
        let settled = match (checkpoint, sync) {
            (Some(checkpoint), Some(timeout)) => {
                matches!(tokio::time::timeout(timeout, checkpoint).await, Ok(Ok(())))
            }
            _ => false,
        };
        let store = self.store();
        let owned_id = id.to_owned();
        let instance = blocking(move || store.instance(&owned_id))
            .await?
            .ok_or_else(|| Error::instance_not_found(id))?;
        Ok(Progress { instance, settled })
    }

    /// Hands the signal to the instance's runner, starting one if it has
    /// none. The map lock is held while sending, so a runner that is about to
    /// exit sees every signal sent before it checks its queue.
    pub(crate) fn wake(self: &Arc<Self>, id: &str, signal: Option<Signal>) {
        let mut runners = self.runners.lock().expect("runner lock poisoned");
        let mut signal = signal;
        if let Some(sender) = runners.get(id) {
            match signal {
                None => return,
                Some(pending) => match sender.send(pending) {
                    Ok(()) => return,
                    // The runner has gone. The result is journaled, so a new
                    // runner reads it from the journal as well.
                    Err(unsent) => signal = Some(unsent.0),
                },
            }
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Some(signal) = signal {
            let _ = sender.send(signal);
        }
        runners.insert(id.to_owned(), sender);
        tokio::spawn(self.clone().drive(id.to_owned(), receiver));
    }

    /// Runs the instance until it ends or is evicted with nothing left to do.
    async fn drive(self: Arc<Self>, id: String, mut signals: mpsc::UnboundedReceiver<Signal>) {
        loop {
            let (end, returned) = run_instance(
                self.engine.clone(),
                self.context.clone(),
                id.clone(),
                signals,
            )
            .await;
            signals = returned;
            let mut runners = self.runners.lock().expect("runner lock poisoned");
            if end == RunEnd::Evicted && !signals.is_empty() {
                drop(runners);
                continue;
            }
            runners.remove(&id);
            if end == RunEnd::Evicted {
                tracing::debug!(instance = %id, "evicted");
            }
            return;
        }
    }
}

/// Checks a workflow name: 1 to 64 lowercase letters, digits and '-', starting
/// with a letter.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::bad_request(
            "invalid_workflow_name",
            format!(
                "workflow name {name:?} is invalid; use 1 to 64 lowercase letters, digits and \
                 '-', starting with a letter"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("expense-approval").is_ok());
        assert!(validate_name("a1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("1abc").is_err());
        assert!(validate_name("Expense").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
    }
}
