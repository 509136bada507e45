//! Hostile components against a live host. Each one breaks a limit of the
//! sandbox while well-behaved instances are parked on tasks, asleep or
//! waiting for a message. It must fail alone, with an error that names the
//! limit, and the others must finish as if nothing happened. Also the upload
//! checks that need real components, and the `serve` flags that set the
//! limits.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Server, guest};

/// Small limits, so that each hostile instance fails within seconds.
const SMALL_LIMITS: &[&str] = &["--cpu-limit", "2s", "--memory-limit-mib", "16"];

/// How long a sleeping bystander sleeps: long enough to be still asleep when
/// the hostile instance starts, short enough to wake while a CPU-bound one
/// runs.
const BYSTANDER_SLEEP_MS: u64 = 1500;

/// The file that the wasi-escape fixture tries to create.
const ESCAPE_PROBE_FILE: &str = "/tmp/layover-wasi-escape-probe";

fn start_scripted(server: &Server, steps: Value) -> String {
    let response = server.start_instance("scripted", "", &json!({ "steps": steps }));
    assert_eq!(response.status, 202, "{}", response.body);
    response.body["id"].as_str().unwrap().to_owned()
}

fn task_step(assignee: &str) -> Value {
    json!({"task": {"title": "check", "actions": ["done"], "assignee": assignee}})
}

fn field_step(name: &str, value: Value) -> Value {
    json!({"field": {"name": name, "value": value}})
}

/// Returns the journal events of an instance.
fn history(server: &Server, id: &str) -> Vec<Value> {
    let response = server.get(&format!("/instances/{id}/history"));
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["events"].as_array().unwrap().clone()
}

/// Returns the messages of an instance's log lines at one level.
fn log_lines(server: &Server, id: &str, level: &str) -> Vec<String> {
    history(server, id)
        .iter()
        .filter(|event| event["type"] == "log" && event["level"] == level)
        .map(|event| event["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns the body of `GET /workflows`: every stored workflow with its
/// versions.
fn workflow_list(server: &Server) -> Value {
    let response = server.get("/workflows");
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

fn assert_host_serves(server: &Server) {
    let health = server.get("/health");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["status"], "ok", "{}", health.body);
}

/// Polls until the instance ends, and checks that it failed with an error
/// that contains every phrase.
fn assert_fails_with(server: &Server, id: &str, phrases: &[&str]) -> Value {
    let instance = server.wait_for_end(id);
    assert_eq!(instance["status"], "failed", "{instance:#}");
    let error = instance["error"].as_str().unwrap_or_default();
    for phrase in phrases {
        assert!(
            error.contains(phrase),
            "the error of {id} lacks {phrase:?}: {error}"
        );
    }
    instance
}

/// Well-behaved `scripted` instances, started before a hostile one, each
/// with the assignee of its task.
struct Bystanders {
    /// Parked on a task from the start, between two field updates.
    parked: Vec<(String, String)>,
    /// Asleep for `BYSTANDER_SLEEP_MS`, then parked on a task.
    sleeping: Vec<(String, String)>,
    /// Waiting for the message "go".
    listening: String,
}

impl Bystanders {
    /// Starts the instances and polls until each has reached its first wait.
    fn start(server: &Server) -> Self {
        let parked: Vec<(String, String)> = (0..3)
            .map(|index| {
                let assignee = format!("parked-{index}");
                let steps = json!([
                    field_step("stage", json!("parked")),
                    task_step(&assignee),
                    field_step("stage", json!("done")),
                ]);
                (start_scripted(server, steps), assignee)
            })
            .collect();
        let sleeping: Vec<(String, String)> = (0..2)
            .map(|index| {
                let assignee = format!("sleeping-{index}");
                let steps = json!([{"sleep_ms": BYSTANDER_SLEEP_MS}, task_step(&assignee)]);
                (start_scripted(server, steps), assignee)
            })
            .collect();
        let listening = start_scripted(
            server,
            json!([{"message": {"name": "go"}}, {"log": "received go"}]),
        );

        for (id, _) in &parked {
            server.wait_for_task(id);
        }
        for (id, _) in &sleeping {
            server.wait_for(id, "its sleep", |instance| {
                instance["wait"]["kind"] == "sleep"
            });
        }
        server.wait_for(&listening, "its message wait", |instance| {
            instance["wait"]["kind"] == "message"
        });
        Bystanders {
            parked,
            sleeping,
            listening,
        }
    }

    /// Completes every task, sends the message, and checks that each
    /// instance completes with the output its steps produce.
    fn finish(self, server: &Server) {
        for (id, assignee) in self.parked.iter().chain(&self.sleeping) {
            let task = server.wait_for_task(id);
            assert_eq!(task["assignee"], assignee.as_str(), "{task:#}");
            let task_id = task["id"].as_str().unwrap();
            let body = json!({"action": "done", "data": {"seen": assignee}, "by": assignee});
            let response = server.complete(task_id, "", &body);
            assert_eq!(response.status, 202, "{}", response.body);
        }
        let sent = server.post(
            &format!("/instances/{}/messages/go", self.listening),
            &json!({"n": 1}),
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(sent.body["delivered"], "wait", "{}", sent.body);

        for (id, assignee) in &self.parked {
            let instance = server.wait_for_end(id);
            assert_eq!(instance["status"], "completed", "{instance:#}");
            let outcome = json!({"action": "done", "by": assignee, "data": {"seen": assignee}});
            assert_eq!(
                instance["output"],
                json!({"results": [null, outcome, null]}),
                "{instance:#}"
            );
            assert_eq!(instance["fields"]["stage"], "done", "{instance:#}");
        }
        for (id, assignee) in &self.sleeping {
            let instance = server.wait_for_end(id);
            assert_eq!(instance["status"], "completed", "{instance:#}");
            let outcome = json!({"action": "done", "by": assignee, "data": {"seen": assignee}});
            assert_eq!(
                instance["output"],
                json!({"results": ["slept", outcome]}),
                "{instance:#}"
            );
        }
        let instance = server.wait_for_end(&self.listening);
        assert_eq!(instance["status"], "completed", "{instance:#}");
        assert_eq!(
            instance["output"],
            json!({"results": [{"n": 1}, null]}),
            "{instance:#}"
        );
    }
}

/// A server with `scripted` and one hostile workflow deployed, and
/// bystanders in flight.
struct Scene {
    server: Server,
    bystanders: Bystanders,
    _dir: TempDir,
}

impl Scene {
    /// Starts a server with `args`, deploys the fixture `guest_name` as
    /// `workflow` and starts the bystanders.
    fn start(args: &[&str], workflow: &str, guest_name: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(dir.path(), args);
        server.deploy("scripted", "scripted");
        server.deploy(workflow, guest_name);
        let bystanders = Bystanders::start(&server);
        Scene {
            server,
            bystanders,
            _dir: dir,
        }
    }

    fn start_hostile(&self, workflow: &str, input: &Value) -> String {
        let response = self.server.start_instance(workflow, "", input);
        assert_eq!(response.status, 202, "{}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    }

    /// Checks that the host still serves requests and that every bystander
    /// finishes correctly.
    fn finish(self) {
        assert_host_serves(&self.server);
        for (id, _) in &self.bystanders.parked {
            assert_eq!(self.server.instance(id)["status"], "waiting");
        }
        self.bystanders.finish(&self.server);
    }
}

#[test]
fn endless_loop_hits_cpu_limit() {
    // A longer CPU limit than the other tests use leaves time to start
    // another instance while the loop still runs.
    let args = ["--cpu-limit", "4s", "--memory-limit-mib", "16"];
    let scene = Scene::start(&args, "endless-loop", "endless_loop");
    let id = scene.start_hostile("endless-loop", &json!({}));
    scene
        .server
        .wait_for(&id, "running", |instance| instance["status"] == "running");

    let during = scene.server.start_instance(
        "scripted",
        "?sync=true",
        &json!({"steps": [{"log": "started during the loop"}]}),
    );
    assert_eq!(during.status, 201, "{}", during.body);
    assert_eq!(during.body["status"], "completed", "{}", during.body);
    assert_eq!(scene.server.instance(&id)["status"], "running");

    assert_fails_with(
        &scene.server,
        &id,
        &["CPU time limit exceeded", "more than 4s"],
    );
    scene.finish();
}

#[test]
fn busy_after_resume_hits_cpu_limit() {
    let scene = Scene::start(SMALL_LIMITS, "busy-between-waits", "busy_between_waits");
    let id = scene.start_hostile("busy-between-waits", &json!({"assignee": "starter"}));
    let task = scene.server.wait_for_task(&id);

    // Time parked on a task is not CPU time, so the instance outlives the
    // CPU limit while it waits.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(scene.server.instance(&id)["status"], "waiting");

    let task_id = task["id"].as_str().unwrap();
    let body = json!({"action": "start", "by": "starter"});
    let response = scene.server.complete(task_id, "", &body);
    assert_eq!(response.status, 202, "{}", response.body);

    assert_fails_with(&scene.server, &id, &["CPU time limit exceeded"]);
    let task = scene.server.get(&format!("/tasks/{task_id}"));
    assert_eq!(task.body["status"], "completed", "{}", task.body);
    let info = log_lines(&scene.server, &id, "info");
    assert_eq!(info, vec!["starting the busy loop"]);
    scene.finish();
}

#[test]
fn memory_bomb_hits_memory_limit() {
    let scene = Scene::start(SMALL_LIMITS, "memory-bomb", "memory_bomb");
    let id = scene.start_hostile("memory-bomb", &json!({}));
    assert_fails_with(
        &scene.server,
        &id,
        &["memory limit exceeded", "the limit is 16777216 bytes"],
    );
    scene.finish();
}

#[test]
fn deep_recursion_hits_stack_limit() {
    // With the default 512 KiB wasm stack, the fixture overflows the 1 MiB
    // stack that Rust keeps in linear memory first, which the host gets as an
    // out-of-bounds trap deep in a recursion.
    let scene = Scene::start(SMALL_LIMITS, "deep-recursion", "deep_recursion");
    let id = scene.start_hostile("deep-recursion", &json!({}));
    assert_fails_with(
        &scene.server,
        &id,
        &["stack limit exceeded", "linear memory", "-zstack-size"],
    );
    scene.finish();
}

#[test]
fn stack_limit_flag_sets_wasm_stack() {
    let mut args = SMALL_LIMITS.to_vec();
    args.extend(["--stack-limit-kib", "128"]);
    let scene = Scene::start(&args, "deep-recursion", "deep_recursion");
    let id = scene.start_hostile("deep-recursion", &json!({}));
    assert_fails_with(
        &scene.server,
        &id,
        &["stack limit exceeded", "131072 bytes"],
    );
    scene.finish();
}

#[test]
fn trap_fails_its_instance_alone() {
    let scene = Scene::start(SMALL_LIMITS, "trap", "trap");
    let unreachable = scene.start_hostile("trap", &json!({"mode": "unreachable"}));
    let panic = scene.start_hostile("trap", &json!({"mode": "panic"}));

    assert_fails_with(
        &scene.server,
        &unreachable,
        &["the workflow trapped", "unreachable"],
    );
    assert_fails_with(&scene.server, &panic, &["the workflow trapped"]);
    let stderr = log_lines(&scene.server, &panic, "stderr");
    assert!(
        stderr.iter().any(|line| line.contains("fixture panic")),
        "{stderr:#?}"
    );
    scene.finish();
}

#[test]
fn huge_output_hits_output_limit() {
    let scene = Scene::start(SMALL_LIMITS, "huge-output", "huge_output");
    let id = scene.start_hostile("huge-output", &json!({"mb": 2}));
    assert_fails_with(
        &scene.server,
        &id,
        &["output limit exceeded", "the limit is 1048576 bytes"],
    );
    assert_eq!(scene.server.instance(&id)["output"], Value::Null);
    scene.finish();
}

#[test]
fn wasi_escape_reaches_nothing() {
    if Path::new(ESCAPE_PROBE_FILE).exists() {
        std::fs::remove_file(ESCAPE_PROBE_FILE).unwrap();
    }
    let scene = Scene::start(SMALL_LIMITS, "wasi-escape", "wasi_escape");
    let id = scene.start_hostile("wasi-escape", &json!({}));
    let instance = scene.server.wait_for_end(&id);
    assert_eq!(instance["status"], "completed", "{instance:#}");
    let report = &instance["output"];

    for attempt in ["read_etc_passwd", "write_tmp", "list_root", "connect_tcp"] {
        assert_eq!(report[attempt]["ok"], false, "{attempt}: {report:#}");
    }
    assert!(!Path::new(ESCAPE_PROBE_FILE).exists());
    // WASI gives a guest "/" as its working directory even with no
    // directory opened, so that alone reveals nothing.
    if report["current_dir"]["ok"] == true {
        assert_eq!(
            report["current_dir"]["detail"], "current directory is /",
            "{report:#}"
        );
    }
    // The server runs with RUST_LOG and cargo's variables set, and the guest
    // must see none of them.
    assert_eq!(report["env_vars"], json!([]), "{report:#}");
    assert_eq!(report["args"], json!([]), "{report:#}");
    scene.finish();
}

#[test]
fn uploads_of_other_worlds_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples"]);
    let before = workflow_list(&server);

    let cases = [
        (
            "other_world",
            "unsupported_imports",
            "acme:inventory/stock@0.1.0",
        ),
        ("missing_run", "missing_export", "`run: func(input: string)"),
    ];
    for (guest_name, code, phrase) in cases {
        let response = server.put_component("rejected", guest(guest_name));
        assert_eq!(response.status, 422, "{guest_name}: {}", response.body);
        assert_eq!(response.code(), code, "{guest_name}: {}", response.body);
        let message = response.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(phrase), "{guest_name}: {message}");
        assert_eq!(workflow_list(&server), before, "{guest_name}");
    }
    let rejected = server.get("/workflows/rejected");
    assert_eq!(rejected.status, 404, "{}", rejected.body);
}

/// Starts an instance whose input is over the limit, with an idempotency
/// key, and checks that it is rejected with 413 and leaves nothing behind:
/// no task of its first step, and the key still free.
fn assert_input_rejected(server: &Server, padding: usize, limit: usize) {
    let path = "/workflows/scripted/instances";
    let assignee = format!("oversized-{padding}");
    let steps = json!([task_step(&assignee), {"log": "x".repeat(padding)}]);
    let key = format!("oversized-start-{padding}");

    let response = server.post_with_key(path, &key, &json!({ "steps": steps }));
    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(response.code(), "input_too_large", "{}", response.body);
    let message = response.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("the limit of {limit} bytes")),
        "{message}"
    );

    let tasks = server.get(&format!("/tasks?assignee={assignee}&status=all"));
    assert_eq!(tasks.body["tasks"], json!([]), "{}", tasks.body);
    let small = server.post_with_key(path, &key, &json!({"steps": []}));
    assert_eq!(small.status, 202, "{}", small.body);
    assert!(small.headers.get("idempotent-replayed").is_none());
}

#[test]
fn input_over_default_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[]);
    server.deploy("scripted", "scripted");
    assert_input_rejected(&server, 1 << 20, 1 << 20);
    assert_host_serves(&server);
}

#[test]
fn document_limit_flag_sets_input_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--document-limit-kib", "64"]);
    server.deploy("scripted", "scripted");
    assert_input_rejected(&server, 64 << 10, 64 << 10);

    // An input just under the limit runs.
    let steps = json!([{"log": "x".repeat(60 << 10)}]);
    let response = server.start_instance("scripted", "?sync=true", &json!({ "steps": steps }));
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.body["status"], "completed", "{}", response.body);
}

#[test]
fn field_limit_flags_fail_offenders() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--field-count-limit", "2", "--field-size-limit-kib", "1"];
    let server = Server::start_with(dir.path(), &args);
    server.deploy("scripted", "scripted");

    let too_many = start_scripted(
        &server,
        json!([
            field_step("a", json!(1)),
            field_step("b", json!(2)),
            field_step("c", json!(3)),
        ]),
    );
    let too_big = start_scripted(&server, json!([field_step("big", json!("x".repeat(2048)))]));
    // Setting a field again does not count it twice.
    let within = start_scripted(
        &server,
        json!([
            field_step("a", json!(1)),
            field_step("b", json!("x".repeat(1000))),
            field_step("a", json!(3)),
        ]),
    );

    assert_fails_with(
        &server,
        &too_many,
        &[
            "field count limit exceeded",
            "field \"c\"",
            "the limit is 2",
        ],
    );
    assert_fails_with(
        &server,
        &too_big,
        &["field size limit exceeded", "the limit is 1024 bytes"],
    );
    let instance = server.wait_for_end(&within);
    assert_eq!(instance["status"], "completed", "{instance:#}");
    assert_eq!(instance["fields"]["a"], 3, "{instance:#}");
    assert_host_serves(&server);
}

#[test]
fn captured_output_is_cut_per_wait() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--captured-output-limit-kib", "1"]);
    server.deploy("noisy-output", "noisy_output");
    let input = json!({"bursts": 2, "bytes": 4096});
    let response = server.start_instance("noisy-output", "?sync=true", &input);
    let id = response.body["id"].as_str().unwrap().to_owned();
    let instance = server.wait_for_end(&id);
    assert_eq!(instance["status"], "completed", "{instance:#}");
    assert_eq!(instance["output"], input, "{instance:#}");

    let note = "[3072 bytes of output dropped: over the captured output limit of 1024 bytes \
                between two wait states]";
    for (level, letters) in [("stdout", ['a', 'b']), ("stderr", ['A', 'B'])] {
        let lines = log_lines(&server, &id, level);
        // Each burst keeps its first 1024 bytes: 16 lines of 64 bytes.
        let mut expected = Vec::new();
        for letter in letters {
            expected.extend(std::iter::repeat_n(letter.to_string().repeat(63), 16));
            expected.push(note.to_owned());
        }
        assert_eq!(lines, expected, "{level}");
    }
}

#[test]
fn log_lines_are_cut_per_wait() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--log-limit-kib", "1"]);
    server.deploy("scripted", "scripted");

    // Each line costs 101 bytes against the 1024-byte limit, so 10 fit.
    let line = "x".repeat(100);
    let mut steps = vec![json!({ "log": line }); 20];
    steps.push(json!({"sleep_ms": 1}));
    steps.push(json!({"log": "after the wait"}));
    let response = server.start_instance("scripted", "", &json!({ "steps": steps }));
    assert_eq!(response.status, 202, "{}", response.body);
    let id = response.body["id"].as_str().unwrap();
    let instance = server.wait_for_end(id);
    assert_eq!(instance["status"], "completed", "{instance:#}");

    let mut expected = vec![line; 10];
    expected.push("after the wait".to_owned());
    assert_eq!(log_lines(&server, id, "info"), expected);
    assert_eq!(
        log_lines(&server, id, "warn"),
        vec!["[10 log lines dropped: over the log limit of 1024 bytes between two wait states]"]
    );
}

#[test]
fn table_and_instance_limits_fail_instantiation() {
    let cases = [
        (
            ["--table-elements-limit", "1"],
            "table limit exceeded",
            "the limit is 1",
        ),
        (
            ["--instance-limit", "1"],
            "instance limit exceeded",
            "more than 1 core instances",
        ),
    ];
    for (args, limit, detail) in cases {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(dir.path(), &args);
        server.deploy("scripted", "scripted");
        let response =
            server.start_instance("scripted", "?sync=true", &json!({"steps": [{"log": "x"}]}));
        assert_eq!(response.status, 201, "{args:?}: {}", response.body);
        let id = response.body["id"].as_str().unwrap();
        assert_fails_with(&server, id, &[limit, detail]);
        assert_host_serves(&server);
    }
}

#[test]
fn serve_help_lists_limit_defaults() {
    let output = Command::new(env!("CARGO_BIN_EXE_layover"))
        .args(["serve", "--help"])
        .output()
        .expect("run layover serve --help");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).unwrap();

    let defaults = [
        ("--memory-limit-mib", "64"),
        ("--cpu-limit", "10s"),
        ("--stack-limit-kib", "512"),
        ("--table-elements-limit", "100000"),
        ("--instance-limit", "100"),
        ("--captured-output-limit-kib", "64"),
        ("--log-limit-kib", "64"),
        ("--document-limit-kib", "1024"),
        ("--field-count-limit", "64"),
        ("--field-size-limit-kib", "64"),
    ];
    for (flag, default) in defaults {
        let start = help
            .find(&format!("{flag} "))
            .unwrap_or_else(|| panic!("{flag} is missing from the help:\n{help}"));
        let section = &help[start..];
        let end = section[flag.len()..]
            .find("\n      --")
            .map_or(section.len(), |end| end + flag.len());
        let section = &section[..end];
        assert!(
            section.contains(&format!("[default: {default}]")),
            "{flag} does not show the default {default}:\n{section}"
        );
    }
}
