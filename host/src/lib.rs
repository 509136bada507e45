//! Layover: a workflow host that runs WebAssembly components in wasmtime and
//! parks each instance at its wait states (human tasks, timers, messages)
//! until they are satisfied.
//!
//! The modules, from the bottom up: [`model`] (stored records), [`store`]
//! (durable state), [`journal`] (replay), [`engine`] (wasmtime),
//! [`runtime`] (instances and their runners), [`scheduler`] (timers),
//! [`api`] (HTTP) and [`cli`].

pub mod api;
pub mod checkpoint;
pub mod cli;
pub mod engine;
pub mod error;
pub mod examples;
pub mod journal;
pub mod model;
pub mod runtime;
pub mod scheduler;
pub mod store;

/// Runs `work` on the blocking thread pool: store calls and compilation.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> error::Result<T> + Send + 'static,
) -> error::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error::Error::internal(format!("blocking task failed: {error}")))?
}
