//! Measures how a host holds many instances parked on human tasks: resident
//! memory of the server process, and the time to resume an evicted instance.
//!
//! Run with:
//!
//! ```text
//! cargo build --release
//! cargo run --release --example park -- --instances 100000
//! ```
//!
//! It starts `target/release/layover serve` on a fresh database in a
//! temporary folder with the default settings, uploads the `scripted` fixture,
//! starts the instances with sync calls (each one parks on a task of its
//! own), reads the server's memory from /proc, then completes a sample of
//! tasks with sync calls. Those instances were evicted long before, so each
//! completion replays the instance's journal before it can finish.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    /// Instances to park.
    #[arg(long, default_value_t = 100_000)]
    instances: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Parked instances to resume at the end.
    #[arg(long, default_value_t = 500)]
    resume: usize,
    /// Extra flags for `layover serve`.
    #[arg(long, allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

fn layover_binary() -> PathBuf {
    let examples = std::env::current_exe().expect("current exe");
    let release = examples
        .parent()
        .and_then(Path::parent)
        .expect("target folder");
    let binary = release.join("layover");
    assert!(
        binary.exists(),
        "{} is missing; run `cargo build --release` first",
        binary.display()
    );
    binary
}

fn guest(name: &str) -> Vec<u8> {
    let path = Path::new(env!("LAYOVER_GUESTS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The server process, killed when dropped, also when the benchmark panics.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(db: &Path, extra: &[String]) -> (ServerProcess, String) {
    let mut child = Command::new(layover_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start layover");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("server exited")
        .expect("read stdout");
    let base = line
        .strip_prefix("layover listening on ")
        .expect("listening line")
        .to_owned();
    (ServerProcess(child), base)
}

/// Returns the resident and peak resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = dir.path().join("layover.redb");
    let (server, base) = start_server(&db, &args.serve_args);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let upload = client
        .put(format!("{base}/workflows/scripted"))
        .header("content-type", "application/wasm")
        .body(guest("scripted"))
        .send()
        .await
        .expect("upload");
    assert!(
        upload.status().is_success(),
        "upload failed: {}",
        upload.status()
    );

    let (idle_rss, _) = memory_kib(server.0.id());
    println!("server idle: rss={} MiB", idle_rss / 1024);

    let limit = Arc::new(Semaphore::new(args.concurrency));
    let began = Instant::now();
    let mut handles = Vec::with_capacity(args.instances);
    for n in 0..args.instances {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        let url = format!("{base}/workflows/scripted/instances?sync=true");
        let input = json!({"steps": [{"task": {"title": "park", "actions": ["done"], "assignee": format!("p{n}")}}]});
        handles.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client.post(url).json(&input).send().await.expect("start");
            assert_eq!(response.status().as_u16(), 201, "start {n}");
            let body: Value = response.json().await.expect("body");
            drop(permit);
            (
                sent.elapsed(),
                body["wait"]["task"]["id"]
                    .as_str()
                    .expect("task")
                    .to_owned(),
            )
        }));
    }
    let mut starts = Vec::with_capacity(args.instances);
    let mut tasks = Vec::with_capacity(args.instances);
    for handle in handles {
        let (latency, task) = handle.await.expect("start task");
        starts.push(latency);
        tasks.push(task);
    }
    let elapsed = began.elapsed();
    println!(
        "parked {} instances in {:.1?} ({:.0} starts/s)",
        args.instances,
        elapsed,
        args.instances as f64 / elapsed.as_secs_f64()
    );
    report("sync start to parked", starts);

    let health: Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health body");
    let (rss, peak) = memory_kib(server.0.id());
    let db_size = std::fs::metadata(&db).map(|meta| meta.len()).unwrap_or(0);
    println!(
        "server with {} parked instances: rss={} MiB peak={} MiB, in memory: {health}, database={} MiB",
        args.instances,
        rss / 1024,
        peak / 1024,
        db_size >> 20
    );

    // The first instances were evicted long ago (over the cap, or idle), so
    // each completion replays a journal before the instance can finish.
    let mut resumes = Vec::with_capacity(args.resume);
    for (n, task) in tasks.iter().enumerate().take(args.resume) {
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/tasks/{task}/complete?sync=true"))
            .json(&json!({"action": "done", "by": format!("p{n}")}))
            .send()
            .await
            .expect("complete");
        assert_eq!(response.status().as_u16(), 200, "complete {task}");
        resumes.push(sent.elapsed());
    }
    report(
        "resume evicted instance to completed (sync complete)",
        resumes,
    );

    drop(server);
}
