//! `dscan plugins list|inspect`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, GlobalOptions, exit};
use crate::plugin::{PluginKind, PluginSource, inspect};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins in effect: built-in, plugin directory and --plugin.
    List(ListArgs),
    /// Show what a plugin component is: kind, name, version, contract, imports.
    Inspect(InspectArgs),
}

/// `plugins list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `plugins inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component file.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(global: &GlobalOptions, cmd: PluginsCommand) -> Result<u8, CliError> {
    match cmd {
        PluginsCommand::List(args) => list(global, args),
        PluginsCommand::Inspect(args) => inspect_file(global, args),
    }
}

fn source_kind(s: &PluginSource) -> &'static str {
    match s {
        PluginSource::BuiltIn(_) => "built-in",
        PluginSource::File(_) => "file",
        PluginSource::PluginDir(_) => "plugin-dir",
    }
}

fn list(global: &GlobalOptions, args: ListArgs) -> Result<u8, CliError> {
    let set = global.load_plugins(&PluginKind::ALL)?;
    if args.json {
        let rows: Vec<_> = set
            .entries()
            .iter()
            .map(|e| {
                let p = &e.plugin;
                serde_json::json!({
                    "name": p.info().name,
                    "kind": p.kind().world(),
                    "version": p.info().version,
                    "contract": p.info().contract,
                    "description": p.info().description,
                    "format": p.format().map(|f| f.name.clone()),
                    "source": source_kind(p.source()),
                    "path": match p.source() { PluginSource::BuiltIn(f) => f.to_string(), other => other.to_string() },
                    "overrides": e.replaced.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "sha256": p.sha256(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    println!(
        "{:<20} {:<20} {:<9} {:<9} SOURCE",
        "NAME", "KIND", "VERSION", "CONTRACT"
    );
    for e in set.entries() {
        let p = &e.plugin;
        let mut source = p.source().to_string();
        for replaced in &e.replaced {
            source.push_str(&format!(" (overrides {replaced})"));
        }
        println!(
            "{:<20} {:<20} {:<9} {:<9} {}",
            p.info().name,
            p.kind().world(),
            p.info().version,
            p.info().contract,
            source
        );
    }
    Ok(exit::OK)
}

fn inspect_file(global: &GlobalOptions, args: InspectArgs) -> Result<u8, CliError> {
    let path = args.file;
    let bytes = std::fs::read(&path).map_err(|e| CliError::Io {
        what: "cannot read",
        path: path.display().to_string(),
        source: e,
    })?;
    let label = path.display().to_string();
    let inspection = inspect(&bytes).map_err(|e| crate::plugin::PluginError::Inspect {
        plugin: label,
        source: e,
    })?;
    let host = global.host()?;
    let plugin = host.load(&bytes, PluginSource::File(path.clone()))?;
    let info = plugin.info();
    if args.json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "kind": inspection.kind.world(),
            "name": info.name,
            "version": info.version,
            "contract": info.contract,
            "description": info.description,
            "format": plugin.format().map(|f| serde_json::json!({"name": f.name, "extension": f.extension, "media_type": f.media_type})),
            "imports": inspection.imports,
            "exports": inspection.exports,
            "sha256": plugin.sha256(),
            "size": bytes.len(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(exit::OK);
    }
    println!("file:        {}", path.display());
    println!("kind:        {}", inspection.kind.world());
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    println!("contract:    dscan:plugin@{}", info.contract);
    println!("description: {}", info.description);
    if let Some(f) = plugin.format() {
        println!(
            "format:      {} (.{}, {})",
            f.name, f.extension, f.media_type
        );
    }
    println!("size:        {} bytes", bytes.len());
    println!("sha256:      {}", plugin.sha256());
    println!("exports:");
    for e in &inspection.exports {
        println!("  {e}");
    }
    println!("imports:");
    for i in &inspection.imports {
        println!("  {i}");
    }
    Ok(exit::OK)
}
