//! The plugins compiled from `plugins/` and embedded in the binary.

/// One embedded plugin.
pub(crate) struct BuiltIn {
    /// File name it was built as, for messages.
    pub file: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

macro_rules! builtin {
    ($file:literal) => {
        BuiltIn {
            file: $file,
            bytes: include_bytes!(concat!(env!("DSCAN_GUEST_DIR"), "/", $file)),
        }
    };
}

/// Every built-in plugin, in the order they run (evaluators) or are listed.
pub(crate) const BUILTINS: &[BuiltIn] = &[
    builtin!("saf_thresholds.wasm"),
    builtin!("report_markdown.wasm"),
    builtin!("report_json.wasm"),
    builtin!("report_yaml.wasm"),
    builtin!("report_junit.wasm"),
    builtin!("report_sarif.wasm"),
    builtin!("report_csv.wasm"),
    builtin!("report_github.wasm"),
    builtin!("report_html.wasm"),
    builtin!("strategy_chroot_wrapper.wasm"),
    builtin!("strategy_graft.wasm"),
    builtin!("strategy_same_user.wasm"),
    builtin!("strategy_node_debug.wasm"),
];
