//! Reading what a component is before compiling it: its top-level imports and
//! exports, which dscan world it implements and for which contract version.
//!
//! Doing this with `wasmparser` first turns "wrong kind of file" and "built
//! for another contract" into clear errors instead of link failures, and costs
//! microseconds instead of a compile.

use std::fmt;

use wasmparser::{Encoding, Parser, Payload};

/// The contract versions this host can load (for some kind of plugin).
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0"];

/// The WIT package every plugin world belongs to.
pub const PACKAGE: &str = "dscan:plugin";

/// What a plugin is for, read from the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    /// `threshold-evaluator` world: exports `dscan:plugin/evaluator`.
    ThresholdEvaluator,
    /// `reporter` world: exports `dscan:plugin/report`.
    Reporter,
    /// `access-strategy` world: exports `dscan:plugin/strategy`.
    AccessStrategy,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 3] = [
        PluginKind::ThresholdEvaluator,
        PluginKind::Reporter,
        PluginKind::AccessStrategy,
    ];

    /// The exported interface that identifies the kind.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::ThresholdEvaluator => "evaluator",
            PluginKind::Reporter => "report",
            PluginKind::AccessStrategy => "strategy",
        }
    }

    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::ThresholdEvaluator => "threshold-evaluator",
            PluginKind::Reporter => "reporter",
            PluginKind::AccessStrategy => "access-strategy",
        }
    }

    /// The contract versions this host loads plugins of this kind for: 0.2.0
    /// changed only the strategy interface (node-level plans), so
    /// evaluators and reporters stay on 0.1.0.
    pub fn contracts(self) -> &'static [&'static str] {
        match self {
            PluginKind::AccessStrategy => SUPPORTED_CONTRACTS,
            PluginKind::ThresholdEvaluator | PluginKind::Reporter => &SUPPORTED_CONTRACTS[..1],
        }
    }

    fn from_interface(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.interface() == name)
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// What a component declares, read without compiling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The dscan world it implements.
    pub kind: PluginKind,
    /// The `dscan:plugin` version it was built against.
    pub contract: String,
    /// Top-level import names (WASI interfaces, usually).
    pub imports: Vec<String>,
    /// Top-level export names.
    pub exports: Vec<String>,
}

/// Why a file is not a loadable plugin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InspectError {
    /// The bytes are not WebAssembly at all.
    #[error("it is not WebAssembly ({0})")]
    NotWasm(String),
    /// A core module rather than a component.
    #[error(
        "it is a core WebAssembly module, not a component; build plugins with \
         `cargo build --target wasm32-wasip2` (or run `wasm-tools component new`)"
    )]
    CoreModule,
    /// A component that exports no dscan interface.
    #[error(
        "it implements no dscan plugin world: it exports [{}]; expected one of {}",
        found.join(", "),
        expected_exports()
    )]
    UnknownWorld {
        /// What it does export.
        found: Vec<String>,
    },
    /// Built against a contract version this host does not speak.
    #[error(
        "it was built for contract {PACKAGE}@{found} but this dscan speaks {PACKAGE}@{supported} \
         for this kind of plugin; rebuild the plugin against that version (see wit/ in the dscan repository)"
    )]
    ContractMismatch {
        /// The version it was built for.
        found: String,
        /// The versions this host loads for the plugin's kind.
        supported: String,
    },
    /// It exports more than one dscan world.
    #[error("it exports several dscan worlds ({0}); a plugin implements exactly one")]
    SeveralWorlds(String),
}

fn expected_exports() -> String {
    PluginKind::ALL
        .iter()
        .map(|k| {
            format!(
                "{PACKAGE}/{}@{} ({} world)",
                k.interface(),
                SUPPORTED_CONTRACTS[0],
                k.world()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a component's top-level imports and exports and classifies it.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components are flattened into the payload stream;
    // only the outermost component's sections describe the plugin.
    let mut depth = 0usize;
    // wasmparser's own text for a wrong magic number is a multi-line dump of
    // byte arrays; say it in one line.
    if !bytes.starts_with(b"\0asm") {
        return Err(InspectError::NotWasm(
            "it does not start with the WebAssembly magic bytes \\0asm".into(),
        ));
    }
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::NotWasm(e.message().to_string()))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err(InspectError::CoreModule);
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import =
                        import.map_err(|e| InspectError::NotWasm(e.message().to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export =
                        export.map_err(|e| InspectError::NotWasm(e.message().to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    classify(imports, exports)
}

/// Splits `dscan:plugin/evaluator@0.1.0` into (`evaluator`, `0.1.0`).
fn dscan_export(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    match rest.split_once('@') {
        Some((iface, version)) => Some((iface, version)),
        None => Some((rest, "")),
    }
}

fn classify(imports: Vec<String>, exports: Vec<String>) -> Result<Inspection, InspectError> {
    let worlds: Vec<(PluginKind, &str)> = exports
        .iter()
        .filter_map(|e| dscan_export(e))
        .filter_map(|(iface, v)| PluginKind::from_interface(iface).map(|k| (k, v)))
        .collect();
    let (kind, version) = match worlds.as_slice() {
        [] => return Err(InspectError::UnknownWorld { found: exports }),
        [one] => *one,
        several => {
            let names: Vec<&str> = several.iter().map(|(k, _)| k.world()).collect();
            return Err(InspectError::SeveralWorlds(names.join(", ")));
        }
    };
    if !kind.contracts().contains(&version) {
        return Err(InspectError::ContractMismatch {
            found: if version.is_empty() {
                "(unversioned)".into()
            } else {
                version.to_string()
            },
            supported: kind.contracts().join(", @"),
        });
    }
    let contract = version.to_string();
    Ok(Inspection {
        kind,
        contract,
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classifies_each_world() {
        for kind in PluginKind::ALL {
            let export = format!("dscan:plugin/{}@0.1.0", kind.interface());
            let got = classify(vec![], vec![export]).expect("classify");
            assert_eq!(got.kind, kind);
            assert_eq!(got.contract, "0.1.0");
        }
    }

    #[test]
    fn rejects_other_versions_naming_both() {
        let err = classify(vec![], names(&["dscan:plugin/evaluator@9.0.0"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("dscan:plugin@9.0.0"), "{msg}");
        assert!(msg.contains("dscan:plugin@0.1.0"), "{msg}");
    }

    #[test]
    fn contract_0_2_0_is_loaded_for_strategies_only() {
        let got = classify(vec![], names(&["dscan:plugin/strategy@0.2.0"])).expect("0.2.0");
        assert_eq!(
            (got.kind, got.contract.as_str()),
            (PluginKind::AccessStrategy, "0.2.0")
        );
        for iface in ["evaluator", "report"] {
            let export = format!("dscan:plugin/{iface}@0.2.0");
            let msg = classify(vec![], vec![export]).unwrap_err().to_string();
            assert!(
                msg.contains("speaks dscan:plugin@0.1.0 for this kind"),
                "{msg}"
            );
        }
    }

    #[test]
    fn rejects_unknown_worlds_listing_what_is_expected() {
        let err = classify(vec![], names(&["acme:greeter/greet@1.0.0"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("acme:greeter/greet@1.0.0"), "{msg}");
        assert!(msg.contains("dscan:plugin/evaluator@0.1.0"), "{msg}");
    }

    #[test]
    fn rejects_several_worlds() {
        let err = classify(
            vec![],
            names(&["dscan:plugin/evaluator@0.1.0", "dscan:plugin/report@0.1.0"]),
        )
        .unwrap_err();
        assert!(matches!(err, InspectError::SeveralWorlds(_)));
    }

    #[test]
    fn rejects_garbage_and_core_modules() {
        let err = inspect(b"not wasm at all").unwrap_err();
        assert!(matches!(err, InspectError::NotWasm(_)));
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
        // The smallest valid core module: magic + version 1.
        let core = b"\0asm\x01\0\0\0";
        assert_eq!(inspect(core), Err(InspectError::CoreModule));
    }
}
