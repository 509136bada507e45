//! Runs one instance in its own wasmtime store: from the start, replaying its
//! journal, until it ends, is cancelled, or is evicted while parked.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use wasmtime::component::ResourceTable;
use wasmtime::{FrameInfo, Module, Store as WasmStore, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::layover::workflow::{context, types, waits};
use super::sandbox::{Capture, JournaledClock, Limiter, SeededRandom};
use super::{EPOCH_TICK, Engine, Limits};
use crate::blocking;
use crate::checkpoint::Checkpoints;
use crate::error::{Error, Result};
use crate::journal::{Lookup, Replay, describe};
use crate::model::{
    Effect, Ending, InstanceRecord, LogLevel, TaskOutcome, TaskSpec, WaitOutcome, WaitRequest,
    now_ms,
};
use crate::store::{Began, Resolution, Store};

/// A wake-up for a parked instance.
#[derive(Debug, Clone)]
pub enum Signal {
    Resolved(Resolution),
    Cancelled,
}

/// The end of one run of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The instance completed or failed, and that is stored.
    Finished,
    /// The instance was parked and dropped from memory; its journal resumes it.
    Evicted,
    /// The instance was cancelled, or another runner owns it.
    Stopped,
    /// A host fault, such as a failed database write, stopped the run. The
    /// instance is left as stored and runs again at the next host start.
    Faulted,
}

/// The services a runner reports to.
pub struct RunContext {
    pub store: Arc<dyn Store>,
    pub checkpoints: Checkpoints,
    /// Woken when a wait with a timer is stored, so the scheduler looks again.
    pub timers: Notify,
    /// Instances parked in memory right now.
    pub parked: AtomicUsize,
}

/// The reason a host call ended the run with a trap.
#[derive(Debug)]
enum Abort {
    Cancelled,
    Evicted,
    Fenced,
    /// The instance fails with this message: non-determinism, a broken limit
    /// or a bad argument.
    Fail(String),
    Fault(Error),
}

/// The data of an instance's wasmtime store.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    id: String,
    engine: Arc<Engine>,
    context: Arc<RunContext>,
    replay: Replay,
    step: u32,
    clock: JournaledClock,
    effects: Vec<Effect>,
    field_names: BTreeSet<String>,
    stdout: Capture,
    stderr: Capture,
    /// Bytes of log text kept since the last wait, against the log limit.
    log_bytes: usize,
    /// Log lines dropped since the last wait because of the log limit.
    log_lines_dropped: usize,
    signals: mpsc::UnboundedReceiver<Signal>,
    abort: Option<Abort>,
    cpu_ticks: u64,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Derives the instance's random seed from its id, so that every replay of
/// the instance reads the same random bytes.
fn seed_for(id: &str) -> u64 {
    let digest = super::content_hash(id.as_bytes());
    u64::from_str_radix(&digest["sha256:".len().."sha256:".len() + 16], 16).unwrap_or(0)
}

impl InstanceState {
    fn new(
        engine: Arc<Engine>,
        context: Arc<RunContext>,
        record: &InstanceRecord,
        replay: Replay,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) -> Self {
        let limits = engine.limits().clone();
        let clock = JournaledClock::new(replay.started_at);
        let stdout = Capture::new(limits.captured_output_bytes);
        let stderr = Capture::new(limits.captured_output_bytes);
        let seed = seed_for(&record.id);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .secure_random(SeededRandom::new(seed))
            .insecure_random(SeededRandom::new(seed.rotate_left(17)))
            .insecure_random_seed(u128::from(seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(&limits),
            id: record.id.clone(),
            engine,
            context,
            replay,
            step: 0,
            clock,
            effects: Vec::new(),
            field_names: BTreeSet::new(),
            stdout,
            stderr,
            log_bytes: 0,
            log_lines_dropped: 0,
            signals,
            abort: None,
            cpu_ticks: 0,
        }
    }

    /// Records why the run must end and returns the trap that ends it.
    fn abort(&mut self, abort: Abort) -> wasmtime::Error {
        let message = match &abort {
            Abort::Cancelled => "instance cancelled".to_owned(),
            Abort::Evicted => "instance evicted".to_owned(),
            Abort::Fenced => "instance is owned by another runner".to_owned(),
            Abort::Fail(message) => message.clone(),
            Abort::Fault(error) => error.to_string(),
        };
        self.abort = Some(abort);
        wasmtime::Error::msg(message)
    }

    /// Takes the effects since the last commit, with captured output as log
    /// lines.
    fn take_effects(&mut self) -> Vec<Effect> {
        let mut effects = std::mem::take(&mut self.effects);
        self.log_bytes = 0;
        if self.log_lines_dropped > 0 {
            effects.push(Effect::Log {
                level: LogLevel::Warn,
                message: format!(
                    "[{} log lines dropped: over the log limit of {} bytes between two wait \
                     states]",
                    self.log_lines_dropped,
                    self.engine.limits().log_bytes
                ),
            });
            self.log_lines_dropped = 0;
        }
        for (level, capture) in [
            (LogLevel::Stdout, &self.stdout),
            (LogLevel::Stderr, &self.stderr),
        ] {
            for message in capture.take_lines() {
                effects.push(Effect::Log { level, message });
            }
        }
        effects
    }

    /// Makes a wait-state call. During a replay the journal returns the
    /// result; otherwise the call is stored and then waited on.
    async fn wait(&mut self, request: WaitRequest) -> wasmtime::Result<WaitOutcome> {
        let step = self.step;
        self.cpu_ticks = 0;
        let effects = self.take_effects();
        match self.replay.lookup(step, &request) {
            Lookup::Mismatch(recorded) => {
                let message = format!(
                    "non-determinism at step {step}: the journal recorded {} but the workflow \
                     now calls {}; an instance must make the same wait-state calls on replay, \
                     so change workflows by uploading a new version",
                    describe(recorded),
                    describe(&request)
                );
                Err(self.abort(Abort::Fail(message)))
            }
            Lookup::Resolved(outcome, at) => {
                let outcome = outcome.clone();
                self.clock.advance_to(at);
                self.step += 1;
                Ok(outcome)
            }
            Lookup::Open => self.park(step).await,
            Lookup::New => self.begin(step, request, effects).await,
        }
    }

    async fn begin(
        &mut self,
        step: u32,
        request: WaitRequest,
        effects: Vec<Effect>,
    ) -> wasmtime::Result<WaitOutcome> {
        let store = self.context.store.clone();
        let id = self.id.clone();
        let stored = request.clone();
        let began = blocking(move || store.begin_wait(&id, step, &stored, effects, now_ms())).await;
        self.replay.record(request);
        match began {
            Ok(Began::Resolved { outcome, at }) => {
                self.replay.resolve(step, outcome.clone(), at);
                self.clock.advance_to(at);
                self.step += 1;
                Ok(outcome)
            }
            Ok(Began::Parked(wait)) => {
                tracing::debug!(instance = %self.id, step, kind = wait.request.kind(), "parked");
                if wait.due.is_some() {
                    self.context.timers.notify_one();
                }
                self.context.checkpoints.reached(&self.id);
                self.park(step).await
            }
            Err(error) if error.code == "instance_fenced" => Err(self.abort(Abort::Fenced)),
            Err(error) => Err(self.abort(Abort::Fault(error))),
        }
    }

    /// Waits in memory for the resolution of the wait at `step`, until the
    /// idle time of the residency settings passes.
    async fn park(&mut self, step: u32) -> wasmtime::Result<WaitOutcome> {
        let residency = self.engine.residency().clone();
        let parked = self.context.parked.fetch_add(1, Ordering::Relaxed) + 1;
        let idle = if parked > residency.max_parked {
            Duration::ZERO
        } else {
            residency.idle
        };
        let deadline = tokio::time::sleep(idle);
        tokio::pin!(deadline);
        let result = loop {
            tokio::select! {
                signal = self.signals.recv() => match signal {
                    Some(Signal::Resolved(resolution)) if resolution.step == step => {
                        break Ok(resolution);
                    }
                    // A resolution that the journal already returned.
                    Some(Signal::Resolved(_)) => continue,
                    Some(Signal::Cancelled) => break Err(Abort::Cancelled),
                    None => break Err(Abort::Evicted),
                },
                () = &mut deadline => break Err(Abort::Evicted),
            }
        };
        self.context.parked.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(resolution) => {
                self.replay
                    .resolve(step, resolution.outcome.clone(), resolution.at);
                self.clock.advance_to(resolution.at);
                self.step += 1;
                self.cpu_ticks = 0;
                Ok(resolution.outcome)
            }
            Err(abort) => Err(self.abort(abort)),
        }
    }

    fn fail(&mut self, message: String) -> wasmtime::Error {
        self.abort(Abort::Fail(message))
    }

    fn parse_json(&mut self, what: &str, text: &str) -> wasmtime::Result<Value> {
        serde_json::from_str(text)
            .map_err(|error| self.fail(format!("{what} is not valid JSON: {error}")))
    }
}

impl types::Host for InstanceState {}

impl waits::Host for InstanceState {
    async fn human_task(&mut self, task: types::Task) -> wasmtime::Result<types::TaskResult> {
        let size = task_size(&task);
        let limit = self.engine.limits().document_bytes;
        if size > limit {
            return Err(self.fail(format!(
                "document limit exceeded: a human-task is {size} bytes with its title, actions, \
                 assignee, group and form, the limit is {limit} bytes"
            )));
        }
        let form = self.parse_json("the human-task form", &task.form)?;
        if task.actions.is_empty() {
            return Err(self.fail(format!(
                "human-task {:?} has no actions; give it at least one",
                task.title
            )));
        }
        if task.assignee.is_none() && task.group.is_none() {
            return Err(self.fail(format!(
                "human-task {:?} has neither an assignee nor a group, so nobody could see it",
                task.title
            )));
        }
        let spec = TaskSpec {
            title: task.title,
            actions: task.actions,
            assignee: task.assignee,
            group: task.group,
            form,
            timeout_ms: task.timeout_ms,
        };
        match self.wait(WaitRequest::HumanTask(spec)).await? {
            WaitOutcome::TaskCompleted(TaskOutcome { action, data, by }) => {
                Ok(types::TaskResult::Completed(types::TaskOutcome {
                    action,
                    data: data.to_string(),
                    by,
                }))
            }
            WaitOutcome::TaskExpired => Ok(types::TaskResult::TimedOut),
            other => Err(self.fail(format!("human-task resolved with {other:?}"))),
        }
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        self.wait(WaitRequest::Sleep { duration_ms }).await?;
        Ok(())
    }

    async fn await_message(
        &mut self,
        name: String,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<types::MessageResult> {
        if name.is_empty() || name.len() > 128 {
            return Err(self.fail(format!(
                "await-message name {name:?} is invalid; use 1 to 128 bytes"
            )));
        }
        match self.wait(WaitRequest::Message { name, timeout_ms }).await? {
            WaitOutcome::MessageReceived { payload } => {
                Ok(types::MessageResult::Received(payload.to_string()))
            }
            WaitOutcome::MessageTimedOut => Ok(types::MessageResult::TimedOut),
            other => Err(self.fail(format!("await-message resolved with {other:?}"))),
        }
    }
}

/// Returns the bytes of a task's text: its title, actions, assignee, group
/// and form.
fn task_size(task: &types::Task) -> usize {
    let actions: usize = task.actions.iter().map(String::len).sum();
    let assignee = task.assignee.as_ref().map_or(0, String::len);
    let group = task.group.as_ref().map_or(0, String::len);
    task.title.len() + actions + assignee + group + task.form.len()
}

/// Maximum length of a log line; the rest is cut.
const MAX_LOG_LINE: usize = 8 << 10;

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl context::Host for InstanceState {
    fn instance_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.id.clone())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }

    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            types::LogLevel::Debug => LogLevel::Debug,
            types::LogLevel::Info => LogLevel::Info,
            types::LogLevel::Warn => LogLevel::Warn,
            types::LogLevel::Error => LogLevel::Error,
        };
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        // Without this budget, a loop of log calls could fill the host's
        // memory, which the memory limit does not cover.
        let cost = message.len() + 1;
        if self.log_bytes + cost > self.engine.limits().log_bytes {
            self.log_lines_dropped += 1;
            return Ok(());
        }
        self.log_bytes += cost;
        self.effects.push(Effect::Log { level, message });
        Ok(())
    }

    fn set_field(&mut self, name: String, value: String) -> wasmtime::Result<Result<(), String>> {
        let limits = self.engine.limits();
        if !valid_field_name(&name) {
            return Ok(Err(format!(
                "field name {name:?} is invalid; use 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        if value.len() > limits.field_bytes {
            return Ok(Err(format!(
                "field size limit exceeded: field {name:?} is {} bytes, the limit is {} bytes",
                value.len(),
                limits.field_bytes
            )));
        }
        if !self.field_names.contains(&name) && self.field_names.len() >= limits.fields {
            return Ok(Err(format!(
                "field count limit exceeded: field {name:?} would be field number {}, the limit \
                 is {}",
                limits.fields + 1,
                limits.fields
            )));
        }
        let value: Value = match serde_json::from_str(&value) {
            Ok(value) => value,
            Err(error) => return Ok(Err(format!("field {name:?} is not valid JSON: {error}"))),
        };

        self.field_names.insert(name.clone());
        // Only the last value set between two waits is kept, so that a loop
        // of set-field calls cannot fill the host's memory. All of them are
        // stored at the same moment, at the next wait or the end.
        self.effects
            .retain(|effect| !matches!(effect, Effect::Field { name: set, .. } if *set == name));
        self.effects.push(Effect::Field { name, value });
        Ok(Ok(()))
    }
}

/// Runs an instance until it ends, is cancelled or is evicted. Returns the
/// signal receiver so that the caller can run the instance again.
pub async fn run_instance(
    engine: Arc<Engine>,
    context: Arc<RunContext>,
    id: String,
    signals: mpsc::UnboundedReceiver<Signal>,
) -> (RunEnd, mpsc::UnboundedReceiver<Signal>) {
    let store = context.store.clone();
    let loading_engine = engine.clone();
    let loading_id = id.clone();
    let loaded = blocking(move || {
        let Some(record) = store.instance(&loading_id)? else {
            return Ok(None);
        };
        if record.status.is_final() {
            return Ok(None);
        }
        let journal = store.journal(&loading_id)?;
        let ready = loading_engine.ready(store.as_ref(), &record.workflow, record.version);
        Ok(Some((record, journal, ready)))
    })
    .await;

    let (record, journal, ready) = match loaded {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return (RunEnd::Finished, signals),
        Err(error) => {
            tracing::error!(instance = %id, %error, "cannot load instance");
            return (RunEnd::Faulted, signals);
        }
    };
    let pre = match ready {
        Ok(pre) => pre,
        Err(error) => {
            tracing::error!(instance = %id, %error, "cannot load the instance's component");
            let ending = Ending::Failed(format!("cannot load the workflow component: {error}"));
            let end = finish(&context, &id, ending, Vec::new()).await;
            return (end, signals);
        }
    };

    let replay = Replay::from_journal(&journal);
    let state = InstanceState::new(engine.clone(), context.clone(), &record, replay, signals);
    let mut store = WasmStore::new(&pre.engine().clone(), state);
    store.limiter(|state| &mut state.limiter);
    let tick_limit = cpu_tick_limit(engine.limits().cpu_between_waits);
    let cpu_limit = engine.limits().cpu_between_waits;
    store.epoch_deadline_callback(move |mut store| {
        let state = store.data_mut();
        state.cpu_ticks += 1;
        if state.cpu_ticks > tick_limit {
            state.abort = Some(Abort::Fail(format!(
                "CPU time limit exceeded: the workflow ran for more than {cpu_limit:?} without \
                 reaching a wait state"
            )));
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);

    let input = record.input.to_string();
    let (result, instantiated) = match pre.instantiate_async(&mut store).await {
        Ok(workflow) => (workflow.call_run(&mut store, &input).await, true),
        Err(error) => (Err(error), false),
    };
    let mut state = store.into_data();

    let ending = match result {
        Ok(returned) => match state.check_replay_finished() {
            Some(message) => Ending::Failed(message),
            None => ending_from_return(returned, &state.limiter, engine.limits()),
        },
        Err(error) => match state.abort.take() {
            Some(Abort::Cancelled | Abort::Fenced) => return (RunEnd::Stopped, state.signals),
            Some(Abort::Evicted) => return (RunEnd::Evicted, state.signals),
            Some(Abort::Fault(fault)) => {
                tracing::error!(instance = %id, error = %fault, "instance run stopped by a host fault");
                return (RunEnd::Faulted, state.signals);
            }
            Some(Abort::Fail(message)) => Ending::Failed(message),
            None if !instantiated => Ending::Failed(instantiation_message(
                &error,
                &state.limiter,
                engine.limits(),
            )),
            None => Ending::Failed(trap_message(&error, &state.limiter, engine.limits())),
        },
    };
    let effects = state.take_effects();
    let end = finish(&context, &id, ending, effects).await;
    (end, state.signals)
}

impl InstanceState {
    /// Returns a non-determinism error when the workflow returned while the
    /// journal recorded more wait-state calls.
    fn check_replay_finished(&self) -> Option<String> {
        let recorded = self.replay.waits.get(self.step as usize)?;
        Some(format!(
            "non-determinism at step {}: the journal recorded {} but the workflow now returns",
            self.step,
            describe(&recorded.request)
        ))
    }
}

/// Converts the CPU limit to epoch ticks, at least one.
fn cpu_tick_limit(cpu_between_waits: Duration) -> u64 {
    let ticks = cpu_between_waits.as_millis() / EPOCH_TICK.as_millis();
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Turns what `run` returned into the instance's ending, checking the output
/// against the document limit.
fn ending_from_return(
    returned: Result<String, String>,
    limiter: &Limiter,
    limits: &Limits,
) -> Ending {
    let limit = limits.document_bytes;
    match returned {
        Ok(output) if output.len() > limit => Ending::Failed(format!(
            "output limit exceeded: the workflow returned {} bytes, the limit is {limit} bytes",
            output.len()
        )),
        Ok(output) => match serde_json::from_str(&output) {
            Ok(output) => Ending::Completed(output),
            Err(error) => Ending::Failed(format!("the workflow output is not valid JSON: {error}")),
        },
        // A guest whose allocation failed at the memory limit may end with its
        // own error, such as an out-of-memory message, rather than a trap. The
        // instance's error names the limit first.
        Err(message) => match &limiter.exceeded {
            Some(exceeded) => Ending::Failed(format!(
                "{exceeded}; the workflow then returned the error: {message}"
            )),
            None => Ending::Failed(message),
        },
    }
}

/// Describes a trap for the instance's error, naming the limit it broke.
fn trap_message(error: &wasmtime::Error, limiter: &Limiter, limits: &Limits) -> String {
    let trap = error.downcast_ref::<Trap>();
    if let Some(Trap::StackOverflow) = trap {
        return format!(
            "stack limit exceeded: the workflow's call stack grew past {} bytes",
            limits.wasm_stack_bytes
        );
    }
    if let Some(Trap::MemoryOutOfBounds) = trap
        && let Some(message) = linear_stack_overflow(error)
    {
        return message;
    }
    // A failed memory.grow or table.grow does not trap by itself: the guest
    // gets the failure and usually aborts, which traps as `unreachable`.
    if let Some(exceeded) = &limiter.exceeded {
        return match trap {
            Some(trap) => format!("{exceeded}; the workflow then trapped: {trap}"),
            None => format!("{exceeded}; the workflow then failed: {error:#}"),
        };
    }
    match trap {
        Some(trap) => format!("the workflow trapped: {trap}"),
        None => format!("the workflow failed: {error:#}"),
    }
}

/// Describes an out-of-bounds memory access that is, or most likely is, an
/// overflow of the stack that a Rust or C guest keeps in its linear memory.
/// The host gets such an overflow only as an out-of-bounds trap.
fn linear_stack_overflow(error: &wasmtime::Error) -> Option<String> {
    const STACK: &str = "the stack in the workflow's linear memory, whose size is fixed when \
                         the component is linked (for Rust: -C link-arg=-zstack-size=BYTES)";
    match fault_address(error) {
        Some(address) if is_below_address_zero(address) => Some(format!(
            "stack limit exceeded: the workflow overflowed {STACK} (memory fault at wasm address \
             {address:#x}, just below address 0)"
        )),
        Some(_) => None,
        // Bulk memory instructions such as memory.fill trap without an
        // address, so only the shape of the backtrace is left to go by.
        None if is_deep_recursion(error) => Some(format!(
            "stack limit exceeded, probably: the workflow trapped on an out-of-bounds memory \
             access at least {RECURSION_FRAMES} calls deep in a recursion, as it does when it \
             overflows {STACK}"
        )),
        None => None,
    }
}

/// The backtrace frames, innermost first, that must all be in a recursion
/// for an out-of-bounds access to count as a stack overflow. wasmtime 48
/// captures up to 20 frames by default.
const RECURSION_FRAMES: usize = 16;

/// Tells whether the trap's backtrace has at least `RECURSION_FRAMES` frames
/// and, apart from the innermost one, they belong to one or two functions: a
/// function calling itself, or two calling each other.
fn is_deep_recursion(error: &wasmtime::Error) -> bool {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return false;
    };
    let frames = backtrace.frames();
    if frames.len() < RECURSION_FRAMES {
        return false;
    }
    let mut functions: Vec<&FrameInfo> = Vec::new();
    for frame in &frames[1..] {
        let seen = functions.iter().any(|function| {
            function.func_index() == frame.func_index()
                && Module::same(function.module(), frame.module())
        });
        if !seen {
            functions.push(frame);
        }
    }
    functions.len() <= 2
}

/// Returns the wasm address of an out-of-bounds memory access, from the
/// context that wasmtime adds to the trap.
fn fault_address(error: &wasmtime::Error) -> Option<u64> {
    // NOTE: wasmtime 48 gives the address only in the text of that context
    // ("memory fault at wasm address 0x… in linear memory of size 0x…"), not
    // in a public type, so the text is parsed here.
    error.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("memory fault at wasm address 0x")?;
        let hex = rest.split(' ').next()?;
        u64::from_str_radix(hex, 16).ok()
    })
}

/// Tells whether a faulting address is just below 0 in 32-bit wrapping
/// arithmetic. Rust's wasm targets place the stack at the bottom of linear
/// memory, growing down, so a stack overflow moves the stack pointer past 0
/// to just under 4 GiB, and the access there faults.
fn is_below_address_zero(address: u64) -> bool {
    // The window is the largest stack frame that is taken for an overflow.
    const WINDOW: u64 = 16 << 20;
    const FOUR_GIB: u64 = 1 << 32;
    (FOUR_GIB - WINDOW..FOUR_GIB + u64::from(u32::MAX)).contains(&address)
}

/// Describes a failed instantiation for the instance's error.
fn instantiation_message(error: &wasmtime::Error, limiter: &Limiter, limits: &Limits) -> String {
    if let Some(exceeded) = &limiter.exceeded {
        return format!("{exceeded}; the workflow component could not be instantiated");
    }
    // NOTE: wasmtime 48 reports too many core instances, tables or memories
    // only in its message ("resource limit exceeded: instance count too high
    // at 3"), with no error type to match, so the text is checked here.
    let text = format!("{error:#}");
    if text.contains("resource limit exceeded") && text.contains("count too high") {
        return format!(
            "instance limit exceeded: the workflow component needs more than {} core instances, \
             tables or memories ({text})",
            limits.instances
        );
    }
    format!("the workflow component could not be instantiated: {text}")
}

async fn finish(
    context: &Arc<RunContext>,
    id: &str,
    ending: Ending,
    effects: Vec<Effect>,
) -> RunEnd {
    let store = context.store.clone();
    let owned_id = id.to_owned();
    let described = match &ending {
        Ending::Completed(_) => "completed".to_owned(),
        Ending::Failed(error) => format!("failed: {error}"),
    };
    let stored = blocking(move || store.finish(&owned_id, ending, effects, now_ms())).await;
    match stored {
        Ok(()) => {
            tracing::info!(instance = %id, "instance {described}");
            context.checkpoints.reached(id);
            RunEnd::Finished
        }
        Err(error) if error.code == "instance_fenced" => RunEnd::Stopped,
        Err(error) => {
            tracing::error!(instance = %id, %error, "cannot store the end of the instance");
            RunEnd::Faulted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter_over_memory() -> Limiter {
        let limits = Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        let mut limiter = Limiter::new(&limits);
        wasmtime::ResourceLimiter::memory_growing(&mut limiter, 0, 2 << 20, None).unwrap();
        limiter
    }

    fn failed(ending: Ending) -> String {
        match ending {
            Ending::Failed(message) => message,
            Ending::Completed(output) => panic!("completed with {output}"),
        }
    }

    #[test]
    fn stack_overflow_names_stack_limit() {
        let error = wasmtime::Error::from(Trap::StackOverflow);
        let limiter = Limiter::new(&Limits::default());
        let message = trap_message(&error, &limiter, &Limits::default());
        assert_eq!(
            message,
            "stack limit exceeded: the workflow's call stack grew past 524288 bytes"
        );
    }

    #[test]
    fn fault_below_zero_names_stack_limit() {
        let error = wasmtime::Error::from(Trap::MemoryOutOfBounds)
            .context("memory fault at wasm address 0xfffffef0 in linear memory of size 0x110000");
        let limiter = Limiter::new(&Limits::default());
        let message = trap_message(&error, &limiter, &Limits::default());
        assert!(message.starts_with("stack limit exceeded: "), "{message}");
        assert!(message.contains("0xfffffef0"), "{message}");
    }

    #[test]
    fn fault_inside_memory_is_plain_trap() {
        let error = wasmtime::Error::from(Trap::MemoryOutOfBounds)
            .context("memory fault at wasm address 0x200000 in linear memory of size 0x110000");
        let limiter = Limiter::new(&Limits::default());
        let message = trap_message(&error, &limiter, &Limits::default());
        assert!(message.starts_with("the workflow trapped: "), "{message}");
    }

    #[test]
    fn below_zero_window() {
        assert!(is_below_address_zero(0xffff_fff0));
        assert!(is_below_address_zero(0xff00_0000));
        assert!(is_below_address_zero(0x1_0000_0010));
        assert!(!is_below_address_zero(0xfe00_0000));
        assert!(!is_below_address_zero(0x0010_0000));
    }

    #[test]
    fn trap_after_memory_limit_names_it() {
        let error = wasmtime::Error::from(Trap::UnreachableCodeReached);
        let message = trap_message(&error, &limiter_over_memory(), &Limits::default());
        assert!(message.starts_with("memory limit exceeded: "), "{message}");
        assert!(message.contains("the workflow then trapped"), "{message}");
    }

    #[test]
    fn returned_error_after_memory_limit_names_it() {
        let ending = ending_from_return(
            Err("memory exhausted after 15 MiB".to_owned()),
            &limiter_over_memory(),
            &Limits::default(),
        );
        let message = failed(ending);
        assert!(message.starts_with("memory limit exceeded: "), "{message}");
        assert!(
            message
                .ends_with("the workflow then returned the error: memory exhausted after 15 MiB"),
            "{message}"
        );
    }

    #[test]
    fn returned_error_is_kept() {
        let limiter = Limiter::new(&Limits::default());
        let ending = ending_from_return(Err("no".to_owned()), &limiter, &Limits::default());
        assert_eq!(failed(ending), "no");
    }

    #[test]
    fn output_over_document_limit_fails() {
        let limits = Limits {
            document_bytes: 8,
            ..Limits::default()
        };
        let limiter = Limiter::new(&limits);
        let ending = ending_from_return(Ok("\"123456789\"".to_owned()), &limiter, &limits);
        assert_eq!(
            failed(ending),
            "output limit exceeded: the workflow returned 11 bytes, the limit is 8 bytes"
        );
        let ending = ending_from_return(Ok("[1,2]".to_owned()), &limiter, &limits);
        assert!(matches!(ending, Ending::Completed(output) if output == serde_json::json!([1, 2])));
    }

    #[test]
    fn instance_count_names_instance_limit() {
        let error = wasmtime::Error::msg("resource limit exceeded: instance count too high at 3");
        let limits = Limits {
            instances: 2,
            ..Limits::default()
        };
        let message = instantiation_message(&error, &Limiter::new(&limits), &limits);
        assert!(
            message.starts_with(
                "instance limit exceeded: the workflow component needs more than 2 core instances"
            ),
            "{message}"
        );
    }

    #[test]
    fn task_size_counts_all_text() {
        let task = types::Task {
            title: "Approve".to_owned(),
            actions: vec!["yes".to_owned(), "no".to_owned()],
            assignee: Some("ana".to_owned()),
            group: None,
            form: "{}".to_owned(),
            timeout_ms: None,
        };
        assert_eq!(task_size(&task), 7 + 5 + 3 + 2);
    }

    #[test]
    fn cpu_ticks_round_down() {
        assert_eq!(cpu_tick_limit(Duration::from_secs(2)), 200);
        assert_eq!(cpu_tick_limit(Duration::from_millis(15)), 1);
        assert_eq!(cpu_tick_limit(Duration::ZERO), 1);
    }
}
