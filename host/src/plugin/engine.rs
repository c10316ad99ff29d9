//! The one wasmtime engine dscan compiles and runs plugins with.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances; the deadline resolution of a plugin call.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The process-wide engine. Every plugin is compiled and run with the same
/// configuration, so one precompiled artefact fits every store.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Wall-clock deadlines: the store's deadline is counted in epoch ticks.
        config.epoch_interruption(true);
        // Keep guest stacks small; a runaway recursion traps quickly.
        config.max_wasm_stack(1 << 20);
        let engine = match Engine::new(&config) {
            Ok(engine) => engine,
            // The configuration is fixed at compile time; failing here is a
            // build defect, not a user error.
            Err(e) => panic!("wasmtime rejected dscan's engine configuration: {e:#}"),
        };
        start_epoch_ticker(&engine);
        engine
    })
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread
/// that holds only a weak reference, so it ends with the engine.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("dscan-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker deadlines cannot fire; refuse to run plugins
        // unbounded rather than hang later.
        panic!("cannot start the plugin deadline thread: {e}");
    }
}

/// Ticks needed for `deadline`, rounded up, at least one.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros().max(1);
    (deadline.as_micros().div_ceil(tick)).max(1) as u64
}

/// A stable fingerprint of everything that makes a precompiled artefact
/// loadable by this engine (wasmtime version, compiler settings, tunables).
pub(crate) fn compatibility_key(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
        assert_eq!(deadline_ticks(EPOCH_TICK), 1);
        assert_eq!(deadline_ticks(EPOCH_TICK + Duration::from_micros(1)), 2);
        assert_eq!(deadline_ticks(Duration::from_secs(1)), 200);
    }

    #[test]
    fn compatibility_key_is_stable_for_one_engine() {
        let e = engine();
        assert_eq!(compatibility_key(e), compatibility_key(e));
        assert_eq!(compatibility_key(e).len(), 16);
    }
}
