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
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "LAYOVER_LISTEN")]
    pub listen: SocketAddr,

    /// Path of the redb database file, created if missing.
    #[arg(long, default_value = "layover.redb", env = "LAYOVER_DB")]
    pub db: PathBuf,

    /// Deploys the bundled example workflows (expense-approval and
    /// order-fulfilment) at start, unless the same version is already stored.
    #[arg(long)]
    pub examples: bool,

    /// Linear memory per instance, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_limit_mib: usize,

    /// CPU time a workflow may run between two wait states, such as 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub cpu_limit: Duration,

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

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&args.db)
            .with_context(|| format!("cannot open the database {}", args.db.display()))?,
    );
    let limits = Limits {
        memory_bytes: args.memory_limit_mib << 20,
        cpu_between_waits: args.cpu_limit,
        ..Limits::default()
    };
    let residency = Residency {
        idle: args.evict_after,
        max_parked: args.max_parked,
    };
    let engine = Engine::new(limits, residency)?;
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
        ..ApiConfig::default()
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
