//! Timers: fires the timers that fall due (sleeps, task and message
//! timeouts) and wakes their instances. Timers that fell due while the host
//! was down fire as soon as it starts.

use std::sync::Arc;
use std::time::Duration;

use crate::blocking;
use crate::model::now_ms;
use crate::runtime::Runtime;

/// Timers fired in one transaction.
const BATCH: usize = 512;

/// Maximum sleep between two reads of the timer table.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub async fn run(runtime: Arc<Runtime>) {
    loop {
        let store = runtime.store();
        let fired = blocking(move || store.fire_due(now_ms(), BATCH)).await;
        match fired {
            Ok(resolutions) => {
                let full = resolutions.len() == BATCH;
                for resolution in resolutions {
                    tracing::debug!(
                        instance = %resolution.instance_id,
                        step = resolution.step,
                        "timer fired"
                    );
                    let id = resolution.instance_id.clone();
                    runtime.wake(&id, Some(crate::engine::Signal::Resolved(resolution)));
                }
                if full {
                    continue;
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot fire timers; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }

        let store = runtime.store();
        let sleep = match blocking(move || store.next_due()).await {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now_ms())).min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(error) => {
                tracing::error!(%error, "cannot read the next timer; retrying in 1 s");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = runtime.context().timers.notified() => {}
        }
    }
}
