//! The set of plugins a command works with: built-ins, the user's plugin
//! directory and `--plugin` files, with later sources replacing earlier
//! plugins of the same kind and name.

use std::path::{Path, PathBuf};

use super::builtin::BUILTINS;
use super::{Plugin, PluginError, PluginHost, PluginKind, PluginSource, inspect};

/// Where to find plugins.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Load the embedded plugins.
    pub builtins: bool,
    /// A directory whose `*.wasm` files are loaded (sorted by name).
    pub plugin_dir: Option<PathBuf>,
    /// Files given with `--plugin`, in order.
    pub files: Vec<PathBuf>,
}

impl Sources {
    /// The default plugin directory (`$XDG_DATA_HOME/dscan/plugins`).
    pub fn default_plugin_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "dscan").map(|d| d.data_dir().join("plugins"))
    }
}

/// A loaded plugin and what it replaced.
#[derive(Debug)]
pub struct Entry {
    /// The plugin.
    pub plugin: Plugin,
    /// Plugins of the same kind and name it overrides.
    pub replaced: Vec<PluginSource>,
}

/// The plugins in effect.
#[derive(Debug, Default)]
pub struct PluginSet {
    entries: Vec<Entry>,
}

fn plugin_dir_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PluginError::ReadDir {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut files = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| PluginError::ReadDir {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl PluginSet {
    /// Loads the plugins of `kinds` from `sources`. Plugins of other kinds are
    /// inspected (cheap) but not compiled. Any plugin that fails to load is an
    /// error: a gate must not silently run without a policy it was given.
    pub fn load(
        host: &PluginHost,
        sources: &Sources,
        kinds: &[PluginKind],
    ) -> Result<PluginSet, PluginError> {
        let mut set = PluginSet::default();
        if sources.builtins {
            for builtin in BUILTINS {
                let source = PluginSource::BuiltIn(builtin.file);
                set.add_bytes(host, builtin.bytes, source, kinds)?;
            }
        }
        if let Some(dir) = &sources.plugin_dir {
            for path in plugin_dir_files(dir)? {
                let bytes = std::fs::read(&path).map_err(|e| PluginError::Read {
                    path: path.clone(),
                    source: e,
                })?;
                set.add_bytes(host, &bytes, PluginSource::PluginDir(path), kinds)?;
            }
        }
        for path in &sources.files {
            let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
                path: path.clone(),
                source: e,
            })?;
            set.add_bytes(host, &bytes, PluginSource::File(path.clone()), kinds)?;
        }
        Ok(set)
    }

    fn add_bytes(
        &mut self,
        host: &PluginHost,
        bytes: &[u8],
        source: PluginSource,
        kinds: &[PluginKind],
    ) -> Result<(), PluginError> {
        let kind = inspect(bytes)
            .map_err(|e| PluginError::Inspect {
                plugin: source.to_string(),
                source: e,
            })?
            .kind;
        if !kinds.contains(&kind) {
            return Ok(());
        }
        let plugin = host.load(bytes, source)?;
        self.add(plugin);
        Ok(())
    }

    /// Adds a loaded plugin, replacing one of the same kind and name in place
    /// (so an override of a built-in evaluator runs where the built-in did).
    pub fn add(&mut self, plugin: Plugin) {
        let same = self.entries.iter().position(|e| {
            e.plugin.kind() == plugin.kind() && e.plugin.info().name == plugin.info().name
        });
        match same {
            Some(i) => {
                let old = std::mem::replace(
                    &mut self.entries[i],
                    Entry {
                        plugin,
                        replaced: Vec::new(),
                    },
                );
                // Replacing a built-in changes what dscan does (a gate, a
                // report, how a target is reached): never silently.
                tracing::warn!(
                    "plugin {} replaces {}{}",
                    self.entries[i].plugin.label(),
                    old.plugin.label(),
                    if matches!(old.plugin.source(), super::PluginSource::BuiltIn(_)) {
                        " — a built-in; remove it from the plugin directory if that is not intended"
                    } else {
                        ""
                    }
                );
                let mut replaced = old.replaced;
                replaced.push(old.plugin.source().clone());
                self.entries[i].replaced = replaced;
            }
            None => self.entries.push(Entry {
                plugin,
                replaced: Vec::new(),
            }),
        }
    }

    /// Every plugin in effect, in load order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The plugins of one kind, in load order.
    pub fn of_kind(&self, kind: PluginKind) -> impl Iterator<Item = &Plugin> {
        self.entries
            .iter()
            .map(|e| &e.plugin)
            .filter(move |p| p.kind() == kind)
    }

    /// The plugin of `kind` named `name`.
    pub fn get(&self, kind: PluginKind, name: &str) -> Result<&Plugin, PluginError> {
        self.of_kind(kind)
            .find(|p| p.info().name == name)
            .ok_or_else(|| PluginError::NotFound {
                kind,
                name: name.to_string(),
                available: {
                    let names: Vec<&str> =
                        self.of_kind(kind).map(|p| p.info().name.as_str()).collect();
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                },
            })
    }
}
