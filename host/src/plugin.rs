//! The plugin host: loads WebAssembly components implementing the
//! `dscan:plugin` contract and calls them in a sandbox.
//!
//! Loading goes inspect (wasmparser: which world, which contract version) →
//! compile or load the precompiled artefact from the cache → pre-instantiate
//! → ask the plugin for its `info()`. Every call then runs in a fresh store
//! under [`Limits`]; a plugin that loops, allocates too much, returns too much
//! or traps produces a [`PluginError`] naming it, and the host carries on.

mod bindings;
mod builtin;
mod cache;
mod convert;
mod engine;
mod inspect;
mod registry;
mod sandbox;
mod strategy;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

pub use cache::CacheOutcome;
pub use inspect::{InspectError, Inspection, PluginKind, SUPPORTED_CONTRACTS, inspect};
pub use registry::{PluginSet, Sources};
pub use sandbox::Limits;

use crate::results::Scan;
use cache::ArtifactCache;
use sandbox::{CallFailure, State};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the dscan binary.
    BuiltIn(&'static str),
    /// Given with `--plugin`.
    File(PathBuf),
    /// Found in the user's plugin directory.
    PluginDir(PathBuf),
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::BuiltIn(_) => f.write_str("built-in"),
            PluginSource::File(p) => write!(f, "{}", p.display()),
            PluginSource::PluginDir(p) => write!(f, "{} (plugin dir)", p.display()),
        }
    }
}

/// How much of a scan a plugin is given (it says before each call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// Profiles and counts only.
    Summary,
    /// Controls without results, descriptions and unmodelled fields.
    Controls,
    /// Everything.
    Full,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Unique name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Contract version it was built for.
    pub contract: String,
    /// One sentence.
    pub description: String,
    /// Wants the original document with every call.
    pub wants_raw_json: bool,
}

/// A report format's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatInfo {
    /// Name used with `-f`.
    pub name: String,
    /// File extension without the dot.
    pub extension: String,
    /// Media type.
    pub media_type: String,
}

/// What an evaluator is asked to judge against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationRequest {
    /// Threshold text, if any.
    pub threshold: Option<String>,
    /// It came from an inline `-I` string.
    pub inline: bool,
    /// Options addressed to this plugin.
    pub options: Vec<(String, String)>,
}

/// One check an evaluator made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Outcome, or why it failed.
    pub message: String,
}

/// An evaluator's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Overall pass/fail.
    pub passed: bool,
    /// Checks in the order they were made.
    pub checks: Vec<Check>,
}

/// How a plugin was loaded, for benchmarks and `-v` logs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    /// Cache behaviour.
    pub cache: CacheOutcome,
    /// Time from bytes to a ready plugin (compile or deserialize, link, info).
    pub elapsed: Duration,
}

/// A failure loading or calling a plugin. Every variant names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plugin directory could not be listed.
    #[error("cannot list plugin directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a loadable dscan plugin.
    #[error("plugin {plugin} cannot be loaded: {source}")]
    Inspect {
        /// Which plugin.
        plugin: String,
        /// Why.
        source: InspectError,
    },
    /// wasmtime refused to compile or link it.
    #[error("plugin {plugin} cannot be loaded: {message}")]
    Load {
        /// Which plugin.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// Its `info()` contradicts its exports.
    #[error(
        "plugin {plugin} reports contract {reported} but exports contract {exported}; rebuild it"
    )]
    InfoMismatch {
        /// Which plugin.
        plugin: String,
        /// From `info()`.
        reported: String,
        /// From its export names.
        exported: String,
    },
    /// Ran past its deadline.
    #[error("plugin {plugin} timed out after {} ms in {function} (raise --plugin-timeout if it is legitimately slow)", after.as_millis())]
    Timeout {
        /// Which plugin.
        plugin: String,
        /// Which call.
        function: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// Tried to grow memory past the cap.
    #[error("plugin {plugin} exceeded its memory limit of {} MiB in {function} (it tried to grow to {} MiB; raise --plugin-memory-mib if that is expected)", limit >> 20, tried.div_ceil(1 << 20))]
    OutOfMemory {
        /// Which plugin.
        plugin: String,
        /// Which call.
        function: &'static str,
        /// The cap in bytes.
        limit: usize,
        /// The size it asked for.
        tried: usize,
    },
    /// Returned more than the output cap.
    #[error("plugin {plugin} returned {} bytes from {function}, {} over the {} byte cap (raise --plugin-output-mib if that is expected)", size, size - limit, limit)]
    OutputTooLarge {
        /// Which plugin.
        plugin: String,
        /// Which call.
        function: &'static str,
        /// Bytes returned.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// Trapped (a panic, an abort, a bug).
    #[error(
        "plugin {plugin} trapped in {function}: {}",
        describe_trap(message, output)
    )]
    Trap {
        /// Which plugin.
        plugin: String,
        /// Which call.
        function: &'static str,
        /// The trap.
        message: String,
        /// What it printed (its panic message, usually).
        output: String,
    },
    /// The plugin rejected its input (a malformed threshold, a bad option).
    #[error("plugin {plugin}: {message}")]
    Rejected {
        /// Which plugin.
        plugin: String,
        /// Its explanation.
        message: String,
    },
    /// A plugin was called as another kind than it is.
    #[error("plugin {plugin} is of kind {actual}, not {expected}")]
    WrongKind {
        /// Which plugin.
        plugin: String,
        /// The kind the call needs.
        expected: PluginKind,
        /// Its kind.
        actual: PluginKind,
    },
    /// No plugin of that kind and name is loaded.
    #[error(
        "no {kind} plugin named `{name}` is loaded (loaded: {available}); see `dscan plugins list`"
    )]
    NotFound {
        /// Kind asked for.
        kind: PluginKind,
        /// Name asked for.
        name: String,
        /// What is there.
        available: String,
    },
}

fn describe_trap(message: &str, output: &str) -> String {
    if output.is_empty() {
        message.to_string()
    } else {
        format!("{output} ({message})")
    }
}

impl PluginError {
    /// True when the plugin refused its input rather than failing itself.
    pub fn is_rejection(&self) -> bool {
        matches!(self, PluginError::Rejected { .. })
    }

    /// The exit code: the user's input (a refused threshold or option, a
    /// file that is not a plugin, an unknown name) is a usage error; the
    /// plugin failing itself is a plugin error.
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::Rejected { .. }
            | PluginError::Read { .. }
            | PluginError::Inspect { .. }
            | PluginError::NotFound { .. }
            | PluginError::WrongKind { .. } => crate::exit::USAGE,
            _ => crate::exit::PLUGIN,
        }
    }
}

/// Settings for a [`PluginHost`].
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Limits for every call.
    pub limits: Limits,
    /// Root of the precompiled-artefact cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
}

impl HostConfig {
    /// The default cache location (`$XDG_CACHE_HOME/dscan/plugins`).
    pub fn default_cache_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "dscan").map(|d| d.cache_dir().join("plugins"))
    }
}

/// Compiles, caches and instantiates plugins.
pub struct PluginHost {
    limits: Limits,
    cache: Option<ArtifactCache>,
    linker: Linker<State>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .finish()
    }
}

impl PluginHost {
    /// A host with the given limits and cache.
    pub fn new(config: HostConfig) -> Result<Self, PluginError> {
        let engine = engine::engine();
        let mut linker = Linker::new(engine);
        // Guests built with std import WASI whether they use it or not; the
        // per-call WasiCtx grants nothing (see sandbox.rs).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Load {
            plugin: "(host)".into(),
            message: format!("cannot set up WASI: {e:#}"),
        })?;
        sandbox::forbid_sleeping(&mut linker).map_err(|e| PluginError::Load {
            plugin: "(host)".into(),
            message: format!("cannot set up WASI: {e:#}"),
        })?;
        let key = engine::compatibility_key(engine);
        let cache = config
            .cache_dir
            .as_deref()
            .and_then(|root| match ArtifactCache::open(root, &key) {
                Ok(c) => Some(c),
                Err(why) => {
                    tracing::warn!(
                        "not using the plugin cache {}: {why}; plugins are compiled in memory (use a private --plugin-cache, or --no-plugin-cache)",
                        root.display()
                    );
                    None
                }
            });
        Ok(PluginHost {
            limits: config.limits,
            cache,
            linker,
        })
    }

    /// The limits calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads and loads a plugin file.
    pub fn load_file(&self, path: &Path, source: PluginSource) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.load(&bytes, source)
    }

    /// Loads a plugin from its bytes.
    pub fn load(&self, bytes: &[u8], source: PluginSource) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let label = source.to_string();
        let inspection = inspect(bytes).map_err(|e| PluginError::Inspect {
            plugin: label.clone(),
            source: e,
        })?;
        let sha256 = cache::sha256_hex(bytes);
        let (component, cache) = self.compile(bytes, &sha256, &label)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Load {
                plugin: label.clone(),
                message: format!("{e:#}"),
            })?;
        let mut plugin = Plugin {
            info: PluginInfo {
                name: label.clone(),
                version: String::new(),
                contract: inspection.contract.clone(),
                description: String::new(),
                wants_raw_json: false,
            },
            label,
            kind: inspection.kind,
            source,
            inspection,
            sha256,
            format: None,
            limits: self.limits,
            pre,
            stats: LoadStats {
                cache,
                elapsed: Duration::ZERO,
            },
        };
        plugin.info = plugin.call_info()?;
        if plugin.info.contract != plugin.inspection.contract {
            return Err(PluginError::InfoMismatch {
                plugin: plugin.label.clone(),
                reported: plugin.info.contract.clone(),
                exported: plugin.inspection.contract.clone(),
            });
        }
        plugin.label = format!(
            "`{}` {} ({})",
            plugin.info.name, plugin.info.version, plugin.source
        );
        if plugin.kind == PluginKind::Reporter {
            plugin.format = Some(plugin.call_format()?);
        }
        plugin.stats.elapsed = started.elapsed();
        tracing::debug!(plugin = %plugin.label, cache = ?plugin.stats.cache, elapsed = ?plugin.stats.elapsed, "plugin loaded");
        Ok(plugin)
    }

    fn compile(
        &self,
        bytes: &[u8],
        sha256: &str,
        label: &str,
    ) -> Result<(Component, CacheOutcome), PluginError> {
        let engine = engine::engine();
        let mut outcome = CacheOutcome::Disabled;
        if let Some(cache) = &self.cache {
            match cache.load(engine, sha256) {
                Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
                Ok(None) => outcome = CacheOutcome::Miss,
                Err(why) => {
                    tracing::warn!(plugin = label, "discarding cached plugin: {why}");
                    outcome = CacheOutcome::Rebuilt;
                }
            }
        }
        let component = Component::new(engine, bytes).map_err(|e| PluginError::Load {
            plugin: label.to_string(),
            message: format!("{e:#}"),
        })?;
        if let Some(cache) = &self.cache
            && let Err(why) = cache.store(sha256, &component)
        {
            // A read-only or full cache costs speed, never correctness.
            tracing::warn!(plugin = label, "cannot cache compiled plugin: {why}");
        }
        Ok((component, outcome))
    }
}

/// A loaded plugin, ready to call. Cheap to call repeatedly: each call gets a
/// fresh store from the pre-instantiated component.
pub struct Plugin {
    info: PluginInfo,
    label: String,
    kind: PluginKind,
    source: PluginSource,
    inspection: Inspection,
    sha256: String,
    format: Option<FormatInfo>,
    limits: Limits,
    pre: InstancePre<State>,
    stats: LoadStats,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Plugin {
    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
    /// Its kind.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }
    /// Where it came from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }
    /// Imports and exports.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }
    /// SHA-256 of its bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// For reporters: the format.
    pub fn format(&self) -> Option<&FormatInfo> {
        self.format.as_ref()
    }
    /// How loading went.
    pub fn load_stats(&self) -> LoadStats {
        self.stats
    }
    /// `name version (source)`, as used in messages.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The same plugin with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs `f` in a fresh sandboxed store and maps failures to errors
    /// naming this plugin.
    fn call<R>(
        &self,
        function: &'static str,
        f: impl FnOnce(&mut Store<State>, &InstancePre<State>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut store = sandbox::new_store(&self.limits);
        let started = Instant::now();
        let result = f(&mut store, &self.pre);
        let output = sandbox::captured_output(&store);
        if !output.is_empty() {
            tracing::debug!(plugin = %self.label, function, "plugin output: {output}");
        }
        tracing::trace!(plugin = %self.label, function, elapsed = ?started.elapsed(), "plugin call");
        result.map_err(|e| match sandbox::classify(&store, &e) {
            CallFailure::Timeout => PluginError::Timeout {
                plugin: self.label.clone(),
                function,
                after: self.limits.deadline,
            },
            CallFailure::OutOfMemory { tried } => PluginError::OutOfMemory {
                plugin: self.label.clone(),
                function,
                limit: self.limits.memory_bytes,
                tried,
            },
            CallFailure::Trap { message, output } => PluginError::Trap {
                plugin: self.label.clone(),
                function,
                message,
                output,
            },
        })
    }

    fn check_output(&self, function: &'static str, size: usize) -> Result<(), PluginError> {
        if size > self.limits.output_bytes {
            return Err(PluginError::OutputTooLarge {
                plugin: self.label.clone(),
                function,
                size,
                limit: self.limits.output_bytes,
            });
        }
        Ok(())
    }

    fn call_info(&self) -> Result<PluginInfo, PluginError> {
        let info = match self.kind {
            PluginKind::ThresholdEvaluator => self.call("info", |store, pre| {
                let p = bindings::evaluator::ThresholdEvaluatorPre::new(pre.clone())?
                    .instantiate(&mut *store)?;
                p.dscan_plugin_evaluator().call_info(store)
            })?,
            PluginKind::Reporter => self.call("info", |store, pre| {
                let p =
                    bindings::reporter::ReporterPre::new(pre.clone())?.instantiate(&mut *store)?;
                p.dscan_plugin_report().call_info(store)
            })?,
            PluginKind::AccessStrategy if self.inspection.contract == "0.2.0" => {
                let info = self.call("info", |store, pre| {
                    let p = bindings::strategy_v2::AccessStrategyPre::new(pre.clone())?
                        .instantiate(&mut *store)?;
                    p.dscan_plugin_strategy().call_info(store)
                })?;
                // The same record in the other package version.
                bindings::PluginInfo {
                    name: info.name,
                    version: info.version,
                    contract: info.contract,
                    description: info.description,
                    wants_raw_json: info.wants_raw_json,
                }
            }
            PluginKind::AccessStrategy => self.call("info", |store, pre| {
                let p = bindings::strategy::AccessStrategyPre::new(pre.clone())?
                    .instantiate(&mut *store)?;
                p.dscan_plugin_strategy().call_info(store)
            })?,
        };
        self.check_output(
            "info",
            info.name.len() + info.version.len() + info.contract.len() + info.description.len(),
        )?;
        Ok(convert::plugin_info(info))
    }

    fn call_format(&self) -> Result<FormatInfo, PluginError> {
        let f = self.call("format", |store, pre| {
            let p = bindings::reporter::ReporterPre::new(pre.clone())?.instantiate(&mut *store)?;
            p.dscan_plugin_report().call_format(store)
        })?;
        self.check_output(
            "format",
            f.name.len() + f.extension.len() + f.media_type.len(),
        )?;
        Ok(FormatInfo {
            name: f.name,
            extension: f.extension,
            media_type: f.media_type,
        })
    }

    fn expect_kind(&self, kind: PluginKind) -> Result<(), PluginError> {
        if self.kind == kind {
            return Ok(());
        }
        Err(PluginError::WrongKind {
            plugin: self.label.clone(),
            expected: kind,
            actual: self.kind,
        })
    }

    /// Asks an access strategy for a plan.
    pub fn plan(
        &self,
        facts: &crate::access::TargetFacts,
    ) -> Result<crate::access::Decision, PluginError> {
        self.expect_kind(PluginKind::AccessStrategy)?;
        // Each contract version has its own bindings; the host's types are one.
        let (decision, size) = if self.inspection.contract == "0.2.0" {
            let wit_facts = strategy::facts_v2(facts);
            let answer = self.call("plan", |store, pre| {
                let p = bindings::strategy_v2::AccessStrategyPre::new(pre.clone())?
                    .instantiate(&mut *store)?;
                p.dscan_plugin_strategy().call_plan(store, &wit_facts)
            })?;
            strategy::decision_v2(answer)
        } else {
            let wit_facts = strategy::facts(facts);
            let answer = self.call("plan", |store, pre| {
                let p = bindings::strategy::AccessStrategyPre::new(pre.clone())?
                    .instantiate(&mut *store)?;
                p.dscan_plugin_strategy().call_plan(store, &wit_facts)
            })?;
            strategy::decision(answer)
        };
        self.check_output("plan", size)?;
        Ok(decision)
    }

    /// Asks a threshold evaluator for its verdict on `scan`.
    pub fn evaluate(
        &self,
        scan: &Scan,
        request: &EvaluationRequest,
    ) -> Result<Verdict, PluginError> {
        self.expect_kind(PluginKind::ThresholdEvaluator)?;
        let wit_request = convert::request(request);
        let detail = self.call("needs", |store, pre| {
            let p = bindings::evaluator::ThresholdEvaluatorPre::new(pre.clone())?
                .instantiate(&mut *store)?;
            p.dscan_plugin_evaluator().call_needs(store, &wit_request)
        })?;
        let wit_scan = convert::scan(scan, convert::detail(detail), self.info.wants_raw_json);
        let outcome = self.call("evaluate", |store, pre| {
            let p = bindings::evaluator::ThresholdEvaluatorPre::new(pre.clone())?
                .instantiate(&mut *store)?;
            p.dscan_plugin_evaluator()
                .call_evaluate(store, &wit_scan, &wit_request)
        })?;
        match outcome {
            Ok(verdict) => {
                let size: usize = verdict
                    .checks
                    .iter()
                    .map(|c| c.name.len() + c.message.len())
                    .sum();
                self.check_output("evaluate", size)?;
                Ok(convert::verdict(verdict))
            }
            Err(message) => {
                self.check_output("evaluate", message.len())?;
                Err(PluginError::Rejected {
                    plugin: self.label.clone(),
                    message,
                })
            }
        }
    }

    /// Asks a reporter to render `scans`.
    pub fn render(
        &self,
        scans: &[Scan],
        options: &[(String, String)],
    ) -> Result<Vec<u8>, PluginError> {
        self.expect_kind(PluginKind::Reporter)?;
        let wit_options = convert::options(options);
        let detail = self.call("needs", |store, pre| {
            let p = bindings::reporter::ReporterPre::new(pre.clone())?.instantiate(&mut *store)?;
            p.dscan_plugin_report().call_needs(store, &wit_options)
        })?;
        let detail = convert::detail(detail);
        let wit_scans: Vec<_> = scans
            .iter()
            .map(|s| convert::scan(s, detail, self.info.wants_raw_json))
            .collect();
        let outcome = self.call("render", |store, pre| {
            let p = bindings::reporter::ReporterPre::new(pre.clone())?.instantiate(&mut *store)?;
            p.dscan_plugin_report()
                .call_render(store, &wit_scans, &wit_options)
        })?;
        match outcome {
            Ok(bytes) => {
                self.check_output("render", bytes.len())?;
                Ok(bytes)
            }
            Err(message) => {
                self.check_output("render", message.len())?;
                Err(PluginError::Rejected {
                    plugin: self.label.clone(),
                    message,
                })
            }
        }
    }
}
