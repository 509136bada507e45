//! The `layover` command line: `layover serve` runs the host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncWriteExt as _;

use crate::api::{self, ApiConfig};
use crate::engine::{Engine, Limits, Residency};
use crate::examples::EXAMPLES;
use crate::runtime::Runtime;
use crate::scheduler;
use crate::store::{RedbStore, Store};

#[derive(Debug, Parser)]
#[command(
    name = "layover",
    version,
    about = "A WebAssembly-sandboxed workflow host"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the host: the HTTP API, the instances and their timers.
    Serve(ServeArgs),
    /// Prints the OpenAPI 3.1 document of the HTTP API as JSON, as
    /// `GET /openapi.json` serves it.
    Openapi,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "LAYOVER_LISTEN")]
    pub listen: SocketAddr,

    /// Path of the redb database file, created if missing.
    #[arg(long, default_value = "layover.redb", env = "LAYOVER_DB")]
    pub db: PathBuf,

    /// Page cache of the database, in MiB.
    #[arg(long, default_value_t = 256)]
    pub db_cache_mib: usize,

    /// Deploys the bundled example workflows (expense-approval and
    /// order-fulfilment) at start, unless the same version is already stored.
    #[arg(long)]
    pub examples: bool,

    /// Linear memory per instance, all its memories together, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_limit_mib: usize,

    /// CPU time a workflow may run between two wait states, such as 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub cpu_limit: Duration,

    /// WebAssembly call stack per instance, in KiB.
    #[arg(long, default_value_t = Limits::default().wasm_stack_bytes >> 10)]
    pub stack_limit_kib: usize,

    /// Elements per table of an instance.
    #[arg(long, default_value_t = Limits::default().table_elements)]
    pub table_elements_limit: usize,

    /// Core module instances per workflow instance. The same number caps its
    /// tables and its linear memories.
    #[arg(long, default_value_t = Limits::default().instances)]
    pub instance_limit: usize,

    /// Standard output, and separately standard error, kept from an instance
    /// between two wait states, in KiB; the rest is dropped.
    #[arg(long, default_value_t = Limits::default().captured_output_bytes >> 10)]
    pub captured_output_limit_kib: usize,

    /// Log lines an instance writes between two wait states, in KiB of text;
    /// later lines are dropped.
    #[arg(long, default_value_t = Limits::default().log_bytes >> 10)]
    pub log_limit_kib: usize,

    /// Largest workflow input, output or message payload, as compact JSON,
    /// and largest human task with its form, in KiB.
    #[arg(long, default_value_t = Limits::default().document_bytes >> 10)]
    pub document_limit_kib: usize,

    /// Data fields per instance.
    #[arg(long, default_value_t = Limits::default().fields)]
    pub field_count_limit: usize,

    /// Largest JSON value of one data field, in KiB.
    #[arg(long, default_value_t = Limits::default().field_bytes >> 10)]
    pub field_size_limit_kib: usize,

    /// Largest component upload, in MiB.
    #[arg(long, default_value_t = 64)]
    pub upload_limit_mib: usize,

    /// Time after which a parked instance is dropped from memory, such as 30s.
    /// It resumes by replaying its journal.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub evict_after: Duration,

    /// Parked instances kept in memory; those over it are evicted at once.
    #[arg(long, default_value_t = 1000)]
    pub max_parked: usize,
}

impl ServeArgs {
    /// Builds the instance limits from the flags, rejecting sizes that do not
    /// fit in memory addresses.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        Ok(Limits {
            memory_bytes: scale(self.memory_limit_mib, 20, "--memory-limit-mib")?,
            cpu_between_waits: self.cpu_limit,
            wasm_stack_bytes: scale(self.stack_limit_kib, 10, "--stack-limit-kib")?,
            table_elements: self.table_elements_limit,
            instances: self.instance_limit,
            captured_output_bytes: scale(
                self.captured_output_limit_kib,
                10,
                "--captured-output-limit-kib",
            )?,
            log_bytes: scale(self.log_limit_kib, 10, "--log-limit-kib")?,
            document_bytes: scale(self.document_limit_kib, 10, "--document-limit-kib")?,
            fields: self.field_count_limit,
            field_bytes: scale(self.field_size_limit_kib, 10, "--field-size-limit-kib")?,
        })
    }
}

/// Converts a flag's value from KiB (`shift` 10) or MiB (`shift` 20) to bytes.
fn scale(value: usize, shift: u32, flag: &str) -> anyhow::Result<usize> {
    value
        .checked_mul(1 << shift)
        .with_context(|| format!("{flag} {value} is too large; the size must fit in usize bytes"))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&args.db, args.db_cache_mib << 20)
            .with_context(|| format!("cannot open the database {}", args.db.display()))?,
    );
    let limits = args.limits()?;
    let residency = Residency {
        idle: args.evict_after,
        max_parked: args.max_parked,
    };
    let engine = Engine::new(limits.clone(), residency)?;
    let runtime = Runtime::new(engine, store);

    if args.examples {
        for (name, bytes) in EXAMPLES {
            let (version, created) = runtime
                .deploy(name, bytes.to_vec())
                .await
                .with_context(|| format!("cannot deploy the example {name}"))?;
            if created {
                tracing::info!(
                    workflow = name,
                    version = version.version,
                    "example deployed"
                );
            }
        }
    }

    let resumed = runtime.recover().await?;
    tracing::info!(
        instances = resumed,
        "resumed the instances that were running"
    );
    tokio::spawn(scheduler::run(runtime.clone()));

    let config = ApiConfig {
        upload_bytes: args.upload_limit_mib << 20,
        // A request body may contain the same JSON with whitespace, so it
        // gets twice the document limit before the HTTP layer rejects it.
        json_bytes: ApiConfig::default()
            .json_bytes
            .max(limits.document_bytes.saturating_mul(2)),
    };
    let app = api::router(runtime, &config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, db = %args.db.display(), "layover listening");
    // Scripts and tests read the bound address from this line.
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("layover listening on http://{address}\n").as_bytes())
        .await?;
    stdout.flush().await?;

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("layover stopped");
    Ok(())
}

/// Writes the OpenAPI document of the HTTP API to standard output.
pub fn print_openapi() -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(api::document_json().as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write the OpenAPI document to standard output")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("cannot install the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `serve` flags alone, so the tests do not depend on the other
    /// subcommands.
    #[derive(Debug, Parser)]
    struct ServeOnly {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn serve_args(flags: &[&str]) -> ServeArgs {
        let argv = ["layover"].iter().chain(flags);
        ServeOnly::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn flag_defaults_match_limits() {
        assert_eq!(serve_args(&[]).limits().unwrap(), Limits::default());
    }

    #[test]
    fn limit_flags_set_every_limit() {
        let args = serve_args(&[
            "--memory-limit-mib",
            "16",
            "--cpu-limit",
            "2s",
            "--stack-limit-kib",
            "128",
            "--table-elements-limit",
            "50",
            "--instance-limit",
            "3",
            "--captured-output-limit-kib",
            "1",
            "--log-limit-kib",
            "8",
            "--document-limit-kib",
            "64",
            "--field-count-limit",
            "2",
            "--field-size-limit-kib",
            "4",
        ]);
        let expected = Limits {
            memory_bytes: 16 << 20,
            cpu_between_waits: Duration::from_secs(2),
            wasm_stack_bytes: 128 << 10,
            table_elements: 50,
            instances: 3,
            captured_output_bytes: 1 << 10,
            log_bytes: 8 << 10,
            document_bytes: 64 << 10,
            fields: 2,
            field_bytes: 4 << 10,
        };
        assert_eq!(args.limits().unwrap(), expected);
    }

    #[test]
    fn oversized_limit_flag_is_rejected() {
        let too_large = (usize::MAX >> 9).to_string();
        let args = serve_args(&["--document-limit-kib", &too_large]);
        let error = args.limits().unwrap_err().to_string();
        assert!(error.starts_with("--document-limit-kib "), "{error}");
    }
}
