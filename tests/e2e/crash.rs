//! Random `kill -9` under a mixed load of starts, completions and messages,
//! then a check of every acknowledged operation.
//!
//! The run is bounded for CI: `LAYOVER_CRASH_KILLS` sets the number of kills
//! (default 6) and `LAYOVER_CRASH_SEED` replays a run; the seed is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::Server;

/// A small xorshift generator, so a failing run can be replayed by its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The operations the server acknowledged to the load generator, and the
/// count of those it never responded to.
#[derive(Default)]
struct Ledger {
    /// Instance number to instance id, for acknowledged starts.
    started: BTreeMap<u64, String>,
    /// Task id to the `n` sent with its acknowledged completion.
    completed: BTreeMap<String, u64>,
    /// Instances whose `go` message was acknowledged.
    messaged: BTreeSet<u64>,
    acknowledged: u64,
    unanswered: u64,
}

fn steps() -> Value {
    json!([
        {"task": {"title": "first", "actions": ["done"], "assignee": "ASSIGNEE"}},
        {"message": {"name": "go"}},
        {"sleep_ms": 20},
        {"task": {"title": "second", "actions": ["done"], "assignee": "ASSIGNEE"}},
    ])
}

fn input(number: u64) -> Value {
    let text = steps().to_string().replace("ASSIGNEE", &assignee(number));
    json!({ "steps": serde_json::from_str::<Value>(&text).unwrap() })
}

fn assignee(number: u64) -> String {
    format!("crash-{number}")
}

fn open_task(server: &Server, number: u64) -> Option<String> {
    let response = server.try_get(&format!("/tasks?assignee={}", assignee(number)))?;
    response.body["tasks"][0]["id"].as_str().map(str::to_owned)
}

/// Sends one random operation. Returns `None` when the server did not respond.
fn one_operation(
    server: &Server,
    random: &mut Random,
    ledger: &Mutex<Ledger>,
    next: &mut u64,
) -> Option<()> {
    let known: Vec<(u64, String)> = {
        let ledger = ledger.lock().unwrap();
        ledger
            .started
            .iter()
            .map(|(n, id)| (*n, id.clone()))
            .collect()
    };
    let choice = random.below(3);
    if choice == 0 || known.is_empty() {
        // Idempotency keys make a start safe to send again after a crash.
        let number = *next;
        let path = "/workflows/scripted/instances";
        let response =
            server.try_post_with_key(path, &format!("start-{number}"), &input(number))?;
        assert!(matches!(response.status, 200 | 202), "{}", response.body);
        let mut ledger = ledger.lock().unwrap();
        ledger
            .started
            .insert(number, response.body["id"].as_str().unwrap().to_owned());
        ledger.acknowledged += 1;
        *next += 1;
        return Some(());
    }
    let (number, id) = &known[random.below(known.len() as u64) as usize];
    if choice == 1 {
        let task = open_task(server, *number)?;
        let n = random.below(1_000_000);
        let body = json!({"action": "done", "by": assignee(*number), "data": {"n": n}});
        let response = server.try_post(&format!("/tasks/{task}/complete"), &body)?;
        if response.status == 202 {
            let mut ledger = ledger.lock().unwrap();
            ledger.completed.insert(task, n);
            ledger.acknowledged += 1;
        } else {
            assert_eq!(response.status, 409, "{}", response.body);
        }
        return Some(());
    }
    if ledger.lock().unwrap().messaged.contains(number) {
        return Some(());
    }
    let body = json!({"i": number});
    let response = server.try_post(&format!("/instances/{id}/messages/go"), &body)?;
    if response.status == 202 {
        let mut ledger = ledger.lock().unwrap();
        ledger.messaged.insert(*number);
        ledger.acknowledged += 1;
    }
    Some(())
}

/// Checks that everything acknowledged so far is stored.
fn check_acknowledged(server: &Server, ledger: &Ledger) {
    for (number, id) in &ledger.started {
        let instance = server.instance(id);
        assert_eq!(instance["input"], input(*number), "instance {id}");
    }
    for (task, n) in &ledger.completed {
        let response = server.get(&format!("/tasks/{task}"));
        assert_eq!(response.body["status"], "completed", "task {task}");
        assert_eq!(response.body["outcome"]["data"]["n"], *n, "task {task}");
    }
    for number in &ledger.messaged {
        let id = &ledger.started[number];
        let history = server.get(&format!("/instances/{id}/history"));
        let events = history.body["events"].as_array().unwrap();
        let received = events.iter().any(|event| {
            event["type"] == "message-queued" || event["outcome"]["payload"] == json!({"i": number})
        });
        assert!(received, "acknowledged message to {id} is missing");
    }
}

/// Completes every instance, sending what each one still waits for.
fn drive_to_end(server: &Server, ledger: &mut Ledger) {
    for (number, id) in ledger.started.clone() {
        loop {
            let instance = server.instance(&id);
            if instance["status"] == "completed" {
                break;
            }
            assert_ne!(instance["status"], "failed", "{instance:#}");
            match instance["wait"]["kind"].as_str() {
                Some("human-task") => {
                    let task = instance["wait"]["task"]["id"].as_str().unwrap().to_owned();
                    let body = json!({"action": "done", "by": assignee(number), "data": {"n": 0}});
                    let response = server.complete(&task, "", &body);
                    assert_eq!(response.status, 202, "{}", response.body);
                    ledger.completed.insert(task, 0);
                }
                Some("message") => {
                    let body = json!({"i": number});
                    server.post(&format!("/instances/{id}/messages/go"), &body);
                    ledger.messaged.insert(number);
                }
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

fn check_final(server: &Server, ledger: &Ledger) {
    for (number, id) in &ledger.started {
        let instance = server.instance(id);
        let results = &instance["output"]["results"];
        assert_eq!(results[1], json!({"i": number}), "{instance:#}");
        assert_eq!(results[2], "slept", "{instance:#}");

        let tasks = server.get(&format!("/tasks?assignee={}&status=all", assignee(*number)));
        let tasks = tasks.body["tasks"].as_array().unwrap().clone();
        assert_eq!(tasks.len(), 2, "instance {id} has {} tasks", tasks.len());
        for (task, result) in tasks.iter().zip([&results[0], &results[3]]) {
            let task_id = task["id"].as_str().unwrap();
            assert_eq!(task["status"], "completed");
            // The workflow saw exactly the completion that was acknowledged.
            if let Some(n) = ledger.completed.get(task_id) {
                assert_eq!(result["data"]["n"], *n, "task {task_id}");
            }
        }

        let history = server.get(&format!("/instances/{id}/history"));
        let steps: Vec<u64> = history.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["type"] == "wait-started")
            .map(|event| event["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, vec![0, 1, 2, 3], "instance {id}");
    }
}

#[test]
fn random_kills_lose_nothing() {
    let kills: u64 = std::env::var("LAYOVER_CRASH_KILLS")
        .ok()
        .and_then(|kills| kills.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("LAYOVER_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: {kills} kills, LAYOVER_CRASH_SEED={seed}");
    let mut random = Random(seed);

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    server.deploy("scripted", "scripted");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut next = 0;

    for _ in 0..kills {
        let stop = AtomicBool::new(false);
        let load_seed = random.next() | 1;
        thread::scope(|scope| {
            let load = scope.spawn(|| {
                let mut load_random = Random(load_seed);
                while !stop.load(Ordering::Relaxed) {
                    if one_operation(&server, &mut load_random, &ledger, &mut next).is_none() {
                        ledger.lock().unwrap().unanswered += 1;
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            });
            thread::sleep(Duration::from_millis(200 + random.below(800)));
            server.crash();
            stop.store(true, Ordering::Relaxed);
            load.join().unwrap();
        });
        server.restart();
        check_acknowledged(&server, &ledger.lock().unwrap());
    }

    let mut ledger = ledger.lock().unwrap();
    drive_to_end(&server, &mut ledger);
    check_final(&server, &ledger);
    eprintln!(
        "crash test: {kills} kills, {} instances, {} acknowledged operations, {} unanswered",
        ledger.started.len(),
        ledger.acknowledged,
        ledger.unanswered
    );
}
