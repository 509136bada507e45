//! Replay: what an instance's journal records about its wait-state calls.
//!
//! A runner that starts on an instance with a journal runs the workflow from
//! the beginning. Each wait-state call it makes is checked against the call
//! the journal recorded at that step: a recorded result is returned at once,
//! an open wait is waited on again, and a different call is non-determinism.

use crate::model::{Event, JournalEntry, Millis, WaitOutcome, WaitRequest};

/// A wait-state call as the journal recorded it.
#[derive(Debug, Clone)]
pub struct RecordedWait {
    pub request: WaitRequest,
    /// The result and the time it was recorded, once the wait is resolved.
    pub outcome: Option<(WaitOutcome, Millis)>,
}

/// The recorded wait-state calls of one instance, by step.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub started_at: Millis,
    pub waits: Vec<RecordedWait>,
}

/// The journal's record of a wait-state call that a replay makes.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The step was never reached before: the call is new.
    New,
    /// The step was reached and resolved: return this result.
    Resolved(&'a WaitOutcome, Millis),
    /// The step was reached and is still open: wait for it again.
    Open,
    /// The journal recorded another call at this step.
    Mismatch(&'a WaitRequest),
}

impl Replay {
    pub fn from_journal(entries: &[JournalEntry]) -> Self {
        let mut replay = Replay::default();
        for entry in entries {
            match &entry.event {
                Event::Started { .. } => replay.started_at = entry.at,
                Event::WaitStarted { step, request, .. } => {
                    debug_assert_eq!(*step as usize, replay.waits.len());
                    replay.waits.push(RecordedWait {
                        request: request.clone(),
                        outcome: None,
                    });
                }
                Event::WaitResolved { step, outcome } => {
                    if let Some(wait) = replay.waits.get_mut(*step as usize) {
                        wait.outcome = Some((outcome.clone(), entry.at));
                    }
                }
                _ => {}
            }
        }
        replay
    }

    pub fn lookup(&self, step: u32, request: &WaitRequest) -> Lookup<'_> {
        let Some(recorded) = self.waits.get(step as usize) else {
            return Lookup::New;
        };
        if recorded.request != *request {
            return Lookup::Mismatch(&recorded.request);
        }
        match &recorded.outcome {
            Some((outcome, at)) => Lookup::Resolved(outcome, *at),
            None => Lookup::Open,
        }
    }

    /// Tells whether the code that runs before the call at `step` already ran
    /// and had its effects journaled, because that call is recorded.
    pub fn is_replaying(&self, step: u32) -> bool {
        (step as usize) < self.waits.len()
    }

    /// Records a call made live, so that later lookups see it.
    pub fn record(&mut self, request: WaitRequest) {
        self.waits.push(RecordedWait {
            request,
            outcome: None,
        });
    }

    pub fn resolve(&mut self, step: u32, outcome: WaitOutcome, at: Millis) {
        if let Some(wait) = self.waits.get_mut(step as usize) {
            wait.outcome = Some((outcome, at));
        }
    }
}

/// Describes a recorded call for a non-determinism error.
pub fn describe(request: &WaitRequest) -> String {
    match request {
        WaitRequest::HumanTask(task) => format!("human-task({:?})", task.title),
        WaitRequest::Sleep { duration_ms } => format!("sleep({duration_ms} ms)"),
        WaitRequest::Message { name, .. } => format!("await-message({name:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;
    use serde_json::json;

    fn entry(seq: u32, at: Millis, event: Event) -> JournalEntry {
        JournalEntry { seq, at, event }
    }

    fn sleep(ms: u64) -> WaitRequest {
        WaitRequest::Sleep { duration_ms: ms }
    }

    #[test]
    fn lookup_follows_journal() {
        let journal = vec![
            entry(
                0,
                10,
                Event::Started {
                    workflow: "w".into(),
                    version: 1,
                    input: json!({}),
                },
            ),
            entry(
                1,
                11,
                Event::WaitStarted {
                    step: 0,
                    request: sleep(5),
                    task_id: None,
                    due: Some(16),
                },
            ),
            entry(
                2,
                16,
                Event::WaitResolved {
                    step: 0,
                    outcome: WaitOutcome::Slept,
                },
            ),
            entry(
                3,
                17,
                Event::WaitStarted {
                    step: 1,
                    request: sleep(7),
                    task_id: None,
                    due: Some(24),
                },
            ),
        ];
        let replay = Replay::from_journal(&journal);
        assert_eq!(replay.started_at, 10);
        assert!(matches!(
            replay.lookup(0, &sleep(5)),
            Lookup::Resolved(WaitOutcome::Slept, 16)
        ));
        assert!(matches!(replay.lookup(1, &sleep(7)), Lookup::Open));
        assert!(matches!(replay.lookup(1, &sleep(8)), Lookup::Mismatch(_)));
        assert!(matches!(replay.lookup(2, &sleep(1)), Lookup::New));
        assert!(replay.is_replaying(1));
        assert!(!replay.is_replaying(2));
    }
}
