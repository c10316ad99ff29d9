//! Options shared by every command.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::gate::{PluginOptions, Thresholds};
use crate::plugin::{HostConfig, Limits, PluginHost, PluginKind, PluginSet, Sources};

/// Global flags.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Load a plugin component (repeatable). A plugin with the name of a
    /// built-in one replaces it.
    #[arg(long = "plugin", value_name = "FILE.wasm", global = true)]
    pub plugins: Vec<PathBuf>,
    /// Directory of plugins loaded on every run.
    #[arg(long, value_name = "DIR", env = "DSCAN_PLUGIN_DIR", global = true)]
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached.
    #[arg(long, value_name = "DIR", env = "DSCAN_PLUGIN_CACHE", global = true)]
    pub plugin_cache: Option<PathBuf>,
    /// Compile plugins on every run instead of caching them.
    #[arg(long, global = true)]
    pub no_plugin_cache: bool,
    /// Wall-clock limit for one plugin call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000, global = true)]
    pub plugin_timeout: u64,
    /// Memory limit for one plugin instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512, global = true)]
    pub plugin_memory_mib: usize,
    /// Limit on what one plugin call may return, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 128, global = true)]
    pub plugin_output_mib: usize,
    /// An option for one plugin: `NAME:KEY=VALUE` (repeatable).
    #[arg(long = "plugin-opt", value_name = "NAME:KEY=VALUE", global = true)]
    pub plugin_opts: Vec<String>,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalOptions {
    /// Installs the tracing subscriber (stderr).
    pub fn init_logging(&self) {
        // -v raises dscan's own logs; wasmtime and cranelift stay at warn
        // unless RUST_LOG says otherwise (their debug output is per function).
        let default = match self.verbose {
            0 => "warn",
            1 => "warn,dscan=info",
            2 => "warn,dscan=debug",
            _ => "info,dscan=trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| super::progress::StderrWriter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
    }

    /// Limits from the flags.
    pub fn limits(&self) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.plugin_timeout),
            memory_bytes: self.plugin_memory_mib.saturating_mul(1 << 20),
            output_bytes: self.plugin_output_mib.saturating_mul(1 << 20),
        }
    }

    /// A plugin host configured from the flags.
    pub fn host(&self) -> Result<PluginHost, CliError> {
        let cache_dir = if self.no_plugin_cache {
            None
        } else {
            self.plugin_cache
                .clone()
                .or_else(HostConfig::default_cache_dir)
        };
        Ok(PluginHost::new(HostConfig {
            limits: self.limits(),
            cache_dir,
        })?)
    }

    /// Where plugins come from.
    pub fn sources(&self) -> Sources {
        Sources {
            builtins: true,
            plugin_dir: self.plugin_dir.clone().or_else(Sources::default_plugin_dir),
            files: self.plugins.clone(),
        }
    }

    /// Loads the plugins of `kinds`.
    pub fn load_plugins(&self, kinds: &[PluginKind]) -> Result<PluginSet, CliError> {
        let host = self.host()?;
        Ok(PluginSet::load(&host, &self.sources(), kinds)?)
    }

    /// The `--plugin-opt` options, parsed.
    pub fn plugin_options(&self) -> Result<PluginOptions, CliError> {
        Ok(PluginOptions::parse(&self.plugin_opts)?)
    }
}

/// The threshold flags, the same for every command that gates (`scan`,
/// `exec`, `report`, `validate threshold`); SAF CLI's names are aliases.
#[derive(Debug, Clone, Default, Args)]
pub struct ThresholdFlags {
    /// A threshold file (YAML or JSON, SAF CLI's format).
    #[arg(
        short = 'T',
        long = "threshold",
        visible_alias = "template-file",
        alias = "templateFile",
        value_name = "FILE",
        conflicts_with = "threshold_inline"
    )]
    pub threshold: Option<PathBuf>,
    /// Inline thresholds: "{compliance.min: 80}, {failed.total.max: 2}".
    #[arg(
        short = 'I',
        long = "threshold-inline",
        visible_alias = "template-inline",
        alias = "templateInline",
        value_name = "THRESHOLDS"
    )]
    pub threshold_inline: Option<String>,
}

impl ThresholdFlags {
    /// The thresholds given, if any (a file is read here).
    pub fn read(&self) -> Result<Option<Thresholds>, CliError> {
        Ok(Thresholds::from_flags(
            self.threshold.as_deref(),
            self.threshold_inline.as_deref(),
        )?)
    }
}
