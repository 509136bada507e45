//! The wasmtime side of the host: engine configuration, validation and
//! compilation of uploaded components, the cache of ready-to-instantiate
//! components, and the runner that executes one instance.

mod bindings;
mod runner;
mod sandbox;

pub use self::runner::{RunContext, RunEnd, Signal, run_instance};

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine as WasmEngine};

use self::bindings::{Workflow, WorkflowPre};
use self::runner::InstanceState;
use crate::error::{Error, Result};
use crate::store::Store;

/// The world every uploaded component must target.
pub const WORLD: &str = "layover:workflow/workflow@0.1.0";

/// How often the epoch ticks. The CPU limit is counted in ticks, and a busy
/// instance yields to other tasks at every tick.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits for each instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, all its memories together. Default:
    /// 64 MiB.
    pub memory_bytes: usize,
    /// CPU time a workflow may spend between two wait states, and so also
    /// before the first and after the last. Default: 10 s.
    pub cpu_between_waits: Duration,
    /// Wasm stack size. Default: 512 KiB.
    pub wasm_stack_bytes: usize,
    /// Table elements per table. Default: 100,000.
    pub table_elements: usize,
    /// Core instances, tables and memories per component instance.
    /// Default: 100 each.
    pub instances: usize,
    /// Standard output or error kept between two wait states; the rest is
    /// dropped. Default: 64 KiB.
    pub captured_output_bytes: usize,
    /// Text of the log lines that a workflow writes through the context
    /// interface between two wait states, counting one byte per line for its
    /// end. Later lines are dropped and counted. Default: 64 KiB.
    pub log_bytes: usize,
    /// Size of a workflow's input or output or of a message payload, as
    /// compact JSON, and of the text of a human task with its form.
    /// Default: 1 MiB.
    pub document_bytes: usize,
    /// Data fields per instance. Default: 64.
    pub fields: usize,
    /// Size of one data field's JSON value. Default: 64 KiB.
    pub field_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_between_waits: Duration::from_secs(10),
            wasm_stack_bytes: 512 << 10,
            table_elements: 100_000,
            instances: 100,
            captured_output_bytes: 64 << 10,
            log_bytes: 64 << 10,
            document_bytes: 1 << 20,
            fields: 64,
            field_bytes: 64 << 10,
        }
    }
}

/// How many parked instances stay in memory, and for how long.
#[derive(Debug, Clone)]
pub struct Residency {
    /// A parked instance is evicted after waiting this long. Default: 30 s.
    pub idle: Duration,
    /// Parked instances over this count are evicted at once. Default: 1,000.
    pub max_parked: usize,
}

impl Default for Residency {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30),
            max_parked: 1_000,
        }
    }
}

/// Compiles, validates and caches workflow components.
pub struct Engine {
    wasm: WasmEngine,
    linker: Linker<InstanceState>,
    limits: Limits,
    residency: Residency,
    ready: Mutex<HashMap<(String, u32), WorkflowPre<InstanceState>>>,
}

impl Engine {
    pub fn new(limits: Limits, residency: Residency) -> Result<Arc<Self>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.wasm_stack_bytes);
        // The fiber stack of a parked instance contains host frames as well as
        // wasm ones, so it gets room beyond the wasm stack limit.
        config.async_stack_size(limits.wasm_stack_bytes + (1 << 20));
        let wasm = WasmEngine::new(&config)
            .map_err(|error| Error::internal(format!("cannot configure wasmtime: {error:#}")))?;

        let mut linker = Linker::new(&wasm);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|error| Error::internal(format!("cannot link WASI: {error:#}")))?;
        Workflow::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)
            .map_err(|error| Error::internal(format!("cannot link the world: {error:#}")))?;

        let ticker = wasm.weak();
        std::thread::Builder::new()
            .name("layover-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|error| Error::internal(format!("cannot start the epoch thread: {error}")))?;

        Ok(Arc::new(Self {
            wasm,
            linker,
            limits,
            residency,
            ready: Mutex::new(HashMap::new()),
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn residency(&self) -> &Residency {
        &self.residency
    }

    /// Validates component bytes against the world and compiles them.
    /// Returns the content hash and the compiled code to cache. This is slow
    /// (Cranelift), so call it off the async threads.
    pub fn compile(&self, bytes: &[u8]) -> Result<(String, Vec<u8>)> {
        check_header(bytes)?;
        let component = Component::new(&self.wasm, bytes).map_err(|error| {
            Error::unprocessable(
                "invalid_component",
                format!("the component failed to validate or compile: {error:#}"),
            )
        })?;
        self.check_world(&component)?;
        let code = component.serialize().map_err(|error| {
            Error::internal(format!("cannot serialize compiled component: {error:#}"))
        })?;
        Ok((content_hash(bytes), code))
    }

    /// Checks that the component imports only what the host provides and
    /// exports `run`.
    fn check_world(&self, component: &Component) -> Result<()> {
        let unknown: Vec<String> = component
            .component_type()
            .imports(&self.wasm)
            .map(|(name, _)| name.to_owned())
            .filter(|name| !name.starts_with("wasi:") && !name.starts_with("layover:workflow/"))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::unprocessable(
                "unsupported_imports",
                format!(
                    "the component imports {}, which this host does not provide; a workflow may \
                     import only the interfaces of {WORLD} and WASI 0.2",
                    unknown.join(", ")
                ),
            ));
        }
        let pre = self.linker.instantiate_pre(component).map_err(|error| {
            Error::unprocessable(
                "unsupported_imports",
                format!(
                    "the component's imports do not match what this host provides ({WORLD} and \
                     WASI 0.2): {error:#}"
                ),
            )
        })?;
        WorkflowPre::new(pre).map_err(|error| {
            Error::unprocessable(
                "missing_export",
                format!(
                    "the component does not export `run: func(input: string) -> \
                     result<string, string>` as the world {WORLD} requires: {error:#}"
                ),
            )
        })?;
        Ok(())
    }

    /// Returns the ready-to-instantiate component of a workflow version,
    /// loading it from the store's compiled cache, or compiling it, the first
    /// time.
    pub fn ready(
        &self,
        store: &dyn Store,
        name: &str,
        version: u32,
    ) -> Result<WorkflowPre<InstanceState>> {
        let key = (name.to_owned(), version);
        if let Some(pre) = self.ready.lock().expect("cache lock poisoned").get(&key) {
            return Ok(pre.clone());
        }
        let versions = store.versions(name)?;
        let record = versions
            .iter()
            .find(|record| record.version == version)
            .ok_or_else(|| Error::version_not_found(name, version))?;
        let component = self.load(store, &record.hash)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(WorkflowPre::new)
            .map_err(|error| {
                Error::internal(format!(
                    "stored component {name} version {version} no longer links: {error:#}"
                ))
            })?;
        self.ready
            .lock()
            .expect("cache lock poisoned")
            .insert(key, pre.clone());
        Ok(pre)
    }

    /// Caches the compiled code of a version that was just uploaded.
    pub fn cache_key(&self, hash: &str) -> String {
        let mut hasher = DefaultHasher::new();
        self.wasm.precompile_compatibility_hash().hash(&mut hasher);
        format!("{hash}:{:016x}", hasher.finish())
    }

    fn load(&self, store: &dyn Store, hash: &str) -> Result<Component> {
        let key = self.cache_key(hash);
        if let Some(code) = store.compiled(&key)? {
            // SAFETY: the code was produced by `Component::serialize` on an
            // engine with the same compatibility hash, which is part of the
            // key, and it is read back from this host's own database.
            match unsafe { Component::deserialize(&self.wasm, &code) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(%hash, %error, "cached machine code is unusable; recompiling");
                }
            }
        }
        let bytes = store.component(hash)?.ok_or_else(|| {
            Error::internal(format!("component {hash} is missing from the store"))
        })?;
        let component = Component::new(&self.wasm, &bytes)
            .map_err(|error| Error::internal(format!("stored component {hash}: {error:#}")))?;
        match component.serialize() {
            Ok(code) => store.put_compiled(&key, &code)?,
            Err(error) => tracing::warn!(%hash, %error, "cannot cache machine code"),
        }
        Ok(component)
    }
}

/// Returns `sha256:<hex>` of the bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// Rejects bytes that are not a WebAssembly component before compiling them,
/// with a message that names what they are instead.
fn check_header(bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(Error::unprocessable(
            "not_a_component",
            "the body is not a WebAssembly binary; upload a component built for \
             wasm32-wasip2 against the layover:workflow world",
        ));
    }
    match bytes[4..8] {
        // The version and layer fields: 0x0d, layer 1 is a component.
        [0x0d, 0, 1, 0] => Ok(()),
        [1, 0, 0, 0] => Err(Error::unprocessable(
            "not_a_component",
            "the body is a core WebAssembly module, not a component; build the workflow as a \
             component (for Rust: a cdylib for the wasm32-wasip2 target)",
        )),
        _ => Err(Error::unprocessable(
            "not_a_component",
            "the body is a WebAssembly binary of an unknown version; upload a component",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn header_rejects_core_module() {
        let error = check_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unprocessable);
        assert!(error.message.contains("core WebAssembly module"));
    }

    #[test]
    fn header_rejects_text() {
        let error = check_header(b"hello world").unwrap_err();
        assert_eq!(error.code, "not_a_component");
    }

    #[test]
    fn header_accepts_component() {
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
