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

/// Caps the linear memory of a whole plugin instance — the sum over all its
/// memories (a component may have several core instances, each with its
/// own), not each one — and remembers a refused growth, so an allocation
/// failure (which a Rust guest turns into an abort) is reported as what it is.
struct MemoryLimiter {
    max_bytes: usize,
    total: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called for every memory, from 0 when it is created.
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.max_bytes {
            self.refused = Some(total);
            return Ok(false);
        }
        self.total = total;
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

/// A pollable that is ready at once (a zero-length wait).
struct Ready;

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for Ready {
    async fn ready(&mut self) {}
}

/// Replaces the monotonic clock's `subscribe-duration` and
/// `subscribe-instant`: a guest that waits for time (`sleep`) would block in
/// host code, where the epoch deadline cannot interrupt it. Zero-length
/// durations (non-blocking polls) are ready at once; any real wait, and any
/// wait for an instant, traps with a message. Plugins compute; they have
/// nothing to wait for.
pub(crate) fn forbid_sleeping(
    linker: &mut wasmtime::component::Linker<State>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: wasmtime::StoreContextMut<'_, State>,
         (nanos,): (u64,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            if nanos > 0 {
                wasmtime::bail!(
                    "the plugin tried to sleep for {} ms; plugins may not wait",
                    nanos / 1_000_000
                );
            }
            let ready = store.data_mut().table.push(Ready)?;
            Ok((wasmtime_wasi::p2::subscribe(
                &mut store.data_mut().table,
                ready,
            )?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_store: wasmtime::StoreContextMut<'_, State>,
         (_when,): (u64,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            wasmtime::bail!("the plugin tried to wait for a point in time; plugins may not wait")
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
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
            total: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_instance() {
        let mut l = MemoryLimiter {
            max_bytes: 100,
            total: 0,
            refused: None,
        };
        assert!(l.memory_growing(0, 60, None).unwrap_or(false));
        // A second memory of 60 would be within a per-memory cap, not the total.
        assert!(!l.memory_growing(0, 60, None).unwrap_or(true));
        assert_eq!(l.refused, Some(120));
        assert!(l.memory_growing(0, 40, None).unwrap_or(false));
        // Growing the first memory counts only its growth.
        assert!(!l.memory_growing(60, 70, None).unwrap_or(true));
    }
}
