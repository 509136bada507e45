//! A real `layover serve` process on a loopback port with its own database
//! file, and a small blocking HTTP client for it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

/// How long a test waits for a condition before it fails. This is a bound
/// against hangs, not a speed check.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Returns the bytes of a component built from `workflows/` by the build
/// script, such as `expense_approval` or `scripted`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = Path::new(env!("LAYOVER_GUESTS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Response {
    /// Returns the error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub struct Server {
    child: Option<Child>,
    pub base: String,
    db: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    client: Client,
}

impl Server {
    /// Starts a server on a fresh database in `dir`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    /// Starts a server on the database in `dir` with extra `serve` flags.
    pub fn start_with(dir: &Path, args: &[&str]) -> Server {
        let mut server = Server {
            child: None,
            base: String::new(),
            db: dir.join("layover.redb"),
            log: dir.join("server.log"),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .no_proxy()
                .build()
                .expect("http client"),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_layover"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(&self.db)
            .args(&self.args)
            .env("RUST_LOG", "info,layover=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start layover");
        let stdout = child.stdout.take().expect("server stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("server exited before listening; log:\n{}", self.log_tail()));
        let base = line
            .strip_prefix("layover listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.base = base.to_owned();
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The process may already be dead from `crash`, so only the
            // wait must succeed.
            let _ = child.kill();
            child.wait().expect("reap layover");
        }
    }

    /// Sends SIGKILL to the server while other threads still use it. Call
    /// `restart` afterwards to reap the process and start a new one.
    pub fn crash(&self) {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {pid} failed");
    }

    /// Starts the server again on the same database.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Response {
        let response = request.send().expect("request to layover");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("response is not JSON ({error}): {text}"))
        };
        Response {
            status,
            body,
            headers,
        }
    }

    /// Sends the request and returns `None` when the server does not answer,
    /// as while it is down.
    fn try_send(&self, request: reqwest::blocking::RequestBuilder) -> Option<Response> {
        let response = request.send().ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().ok()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Response {
            status,
            body,
            headers,
        })
    }

    pub fn try_get(&self, path: &str) -> Option<Response> {
        self.try_send(self.client.get(format!("{}{path}", self.base)))
    }

    pub fn try_post(&self, path: &str, body: &Value) -> Option<Response> {
        self.try_send(self.client.post(format!("{}{path}", self.base)).json(body))
    }

    pub fn try_post_with_key(&self, path: &str, key: &str, body: &Value) -> Option<Response> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", key)
            .json(body);
        self.try_send(request)
    }

    pub fn get(&self, path: &str) -> Response {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body))
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(request)
    }

    pub fn post_with_key(&self, path: &str, key: &str, body: &Value) -> Response {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", key)
            .json(body);
        self.send(request)
    }

    pub fn put_component(&self, name: &str, bytes: Vec<u8>) -> Response {
        let request = self
            .client
            .put(format!("{}/workflows/{name}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes);
        self.send(request)
    }

    /// Uploads a guest component from `workflows/` under `name` and checks
    /// that it was stored.
    pub fn deploy(&self, name: &str, guest_name: &str) {
        let response = self.put_component(name, guest(guest_name));
        assert!(
            response.status == 201 || response.status == 200,
            "upload of {guest_name} failed: {} {}",
            response.status,
            response.body
        );
    }

    /// Starts an instance and returns the response.
    pub fn start_instance(&self, workflow: &str, query: &str, input: &Value) -> Response {
        self.post(&format!("/workflows/{workflow}/instances{query}"), input)
    }

    pub fn instance(&self, id: &str) -> Value {
        let response = self.get(&format!("/instances/{id}"));
        assert_eq!(response.status, 200, "{}", response.body);
        response.body
    }

    /// Polls the instance until `done` holds for it, and returns it.
    pub fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let instance = self.instance(id);
            if done(&instance) {
                return instance;
            }
            if Instant::now() > deadline {
                panic!(
                    "instance {id} never reached {what}; last state: {instance:#}\nserver log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until the instance is parked on a human task, and returns the task.
    pub fn wait_for_task(&self, id: &str) -> Value {
        let instance = self.wait_for(id, "a human task", |instance| {
            instance["wait"]["kind"] == "human-task"
        });
        instance["wait"]["task"].clone()
    }

    /// Polls until the instance has ended, and returns it.
    pub fn wait_for_end(&self, id: &str) -> Value {
        self.wait_for(id, "its end", |instance| {
            matches!(
                instance["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
    }

    pub fn complete(&self, task_id: &str, query: &str, body: &Value) -> Response {
        self.post(&format!("/tasks/{task_id}/complete{query}"), body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("server log ({}):\n{}", self.log.display(), self.log_tail());
        }
        self.kill9();
    }
}
