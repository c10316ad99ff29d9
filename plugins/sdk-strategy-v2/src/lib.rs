//! Writing an access strategy against contract 0.2.0, which adds node-level
//! plans (`Decision::NodePlan`) and the facts that ask for them
//! (`ephemeral_refused`, `node_debug_namespace`); see `wit/README.md`.
//!
//! A crate of its own rather than a feature of `dscan-plugin-sdk`: both
//! contracts name their world `access-strategy`, and the export macros
//! wit-bindgen generates are named after the world, so the two cannot live
//! in one crate built with both.
//!
//! ```ignore
//! use dscan_plugin_sdk_strategy_v2::{CONTRACT, Decision, Guest, PluginInfo, TargetFacts};
//! struct Mine;
//! impl Guest for Mine {
//!     fn info() -> PluginInfo { dscan_plugin_sdk::info!("mine", "…", contract = CONTRACT) }
//!     fn plan(facts: TargetFacts) -> Decision { todo!() }
//! }
//! dscan_plugin_sdk_strategy_v2::export!(Mine);
//! ```

wit_bindgen::generate!({
    path: "../../wit/since_v0.2.0",
    world: "access-strategy",
    pub_export_macro: true,
    default_bindings_module: "dscan_plugin_sdk_strategy_v2",
});

pub use self::dscan::plugin::meta::{Detail, OptionPair, PluginInfo};
pub use self::exports::dscan::plugin::strategy::*;

/// The contract version of this world; report it in `info()`.
pub const CONTRACT: &str = "0.2.0";
