//! Checkpoints: moments when an instance stops making progress on its own
//! (it parks at a wait, completes, fails or is cancelled). A sync API call
//! subscribes before it sets the instance going and returns at the next one.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Subscribers waiting for the next checkpoint of each instance.
#[derive(Default)]
pub struct Checkpoints {
    subscribers: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl Checkpoints {
    /// Returns a receiver that fires at the instance's next checkpoint.
    pub fn subscribe(&self, id: &str) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        let mut subscribers = self.subscribers.lock().expect("checkpoint lock poisoned");
        let list = subscribers.entry(id.to_owned()).or_default();
        // Subscribers whose call timed out have dropped their receivers.
        list.retain(|sender| !sender.is_closed());
        list.push(sender);
        receiver
    }

    /// Wakes every subscriber of the instance.
    pub fn reached(&self, id: &str) {
        let list = self
            .subscribers
            .lock()
            .expect("checkpoint lock poisoned")
            .remove(id);
        for sender in list.into_iter().flatten() {
            let _ = sender.send(());
        }
    }
}
