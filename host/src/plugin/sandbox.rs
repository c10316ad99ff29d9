//! The sandbox every plugin call runs in: a fresh store with no filesystem,
//! network, environment or stdin, a memory cap and a wall-clock deadline.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::{deadline_ticks, engine};

/// Limits applied to every plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call may take.
    pub deadline: Duration,
    /// Linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// Size of the data a call may return.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            output_bytes: 128 << 20,
        }
    }
}

/// What a guest may print (panic messages, mostly) before output is cut.
const CAPTURE_BYTES: usize = 64 << 10;

/// Per-call store state.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    output: MemoryOutputPipe,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers a refused growth, so an allocation
/// failure (which a Rust guest turns into an abort) is reported as what it is.
struct MemoryLimiter {
    max_bytes: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A store set up for one call under `limits`.
pub(crate) fn new_store(limits: &Limits) -> Store<State> {
    let output = MemoryOutputPipe::new(CAPTURE_BYTES);
    // The builder starts empty: no preopened directories, no environment, no
    // arguments, stdin closed. Sockets and name lookups are refused outright.
    let wasi = WasiCtx::builder()
        .stdout(output.clone())
        .stderr(output.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            max_bytes: limits.memory_bytes,
            refused: None,
        },
        output,
    };
    let mut store = Store::new(engine(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(deadline_ticks(limits.deadline));
    store.epoch_deadline_trap();
    store
}

/// How a call failed inside the sandbox, before it is given a plugin's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallFailure {
    Timeout,
    OutOfMemory { tried: usize },
    Trap { message: String, output: String },
}

/// Classifies an error from a guest call using the store's bookkeeping.
pub(crate) fn classify(store: &Store<State>, err: &wasmtime::Error) -> CallFailure {
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        return CallFailure::Timeout;
    }
    if let Some(tried) = store.data().limiter.refused {
        return CallFailure::OutOfMemory { tried };
    }
    let output = String::from_utf8_lossy(&store.data().output.contents())
        .trim()
        .to_string();
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    CallFailure::Trap { message, output }
}

/// Whatever the guest printed, for logs.
pub(crate) fn captured_output(store: &Store<State>) -> String {
    String::from_utf8_lossy(&store.data().output.contents())
        .trim()
        .to_string()
}
