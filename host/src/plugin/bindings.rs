//! Host-side bindings generated from `wit/since_v0.1.0` (and, for access
//! strategies, `wit/since_v0.2.0`). Generated types stay
//! inside the plugin module; callers see the domain types of `results` and
//! `plugin`.

#![allow(missing_docs, clippy::all)]

/// `threshold-evaluator` world; also owns the shared `types` and `meta`.
pub mod evaluator {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "threshold-evaluator",
    });
}

/// `reporter` world.
pub mod reporter {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "reporter",
        with: {
            "dscan:plugin/types": super::evaluator::dscan::plugin::types,
            "dscan:plugin/meta": super::evaluator::dscan::plugin::meta,
        },
    });
}

/// `access-strategy` world.
pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "access-strategy",
        with: {
            "dscan:plugin/meta": super::evaluator::dscan::plugin::meta,
        },
    });
}

/// `access-strategy` world of contract 0.2.0 (node-level plans). Its
/// package version differs, so it has its own `meta` types.
pub mod strategy_v2 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.2.0",
        world: "access-strategy",
    });
}

pub use evaluator::dscan::plugin::meta::{OptionPair, PluginInfo};
pub use evaluator::dscan::plugin::types;
