//! Loading a profile directory: `inspec.yml`, `controls/`, `libraries/`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why a profile cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}; check the profile path")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `inspec.yml` is not valid.
    #[error("{path} is not a valid inspec.yml: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A dependency would need the network or another profile.
    #[error(
        "the profile depends on {0}; dscan exec runs self-contained profiles only (vendor the dependency's controls into the profile)"
    )]
    Depends(String),
}

/// `inspec.yml`.
#[derive(Debug, Deserialize, Default)]
pub struct Metadata {
    /// Profile name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Maintainer.
    pub maintainer: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Licence.
    pub license: Option<String>,
    /// Copyright.
    pub copyright: Option<String>,
    /// Copyright e-mail.
    pub copyright_email: Option<String>,
    /// Supported platforms.
    #[serde(default)]
    pub supports: Vec<serde_json::Value>,
    /// Inputs (also the legacy `attributes`).
    #[serde(default, alias = "attributes")]
    pub inputs: Vec<serde_json::Value>,
    /// Dependencies.
    #[serde(default)]
    pub depends: Vec<serde_json::Value>,
}

/// A loaded profile.
#[derive(Debug)]
pub struct Profile {
    /// The directory.
    pub dir: PathBuf,
    /// Parsed metadata.
    pub metadata: Metadata,
    /// `controls/*.rb`, relative, sorted.
    pub control_files: Vec<String>,
    /// `libraries/*.rb`, relative, sorted.
    pub library_files: Vec<String>,
    /// InSpec's profile checksum.
    pub sha256: String,
    /// The `.rb` files' contents, by relative path.
    pub sources: std::collections::HashMap<String, Vec<u8>>,
}

fn rb_files(dir: &Path, sub: &str) -> Result<Vec<String>, ProfileError> {
    let d = dir.join(sub);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| ProfileError::Read {
            path: d.clone(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rb") && e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(format!("{sub}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Loads the profile at `dir`.
pub fn load(dir: &Path) -> Result<Profile, ProfileError> {
    let yml = dir.join("inspec.yml");
    let raw = std::fs::read_to_string(&yml).map_err(|source| ProfileError::Read {
        path: yml.clone(),
        source,
    })?;
    let mut files = Vec::new();
    for f in rb_files(dir, "libraries")?
        .into_iter()
        .chain(rb_files(dir, "controls")?)
    {
        let p = dir.join(&f);
        let bytes = std::fs::read(&p).map_err(|source| ProfileError::Read { path: p, source })?;
        files.push((f, bytes));
    }
    from_sources(dir, &raw, files)
}

/// A profile from its `inspec.yml` text and its `.rb` files (relative
/// paths under `libraries/` and `controls/`); `dir` names it in messages.
pub fn from_sources(
    dir: &Path,
    raw: &str,
    files: Vec<(String, Vec<u8>)>,
) -> Result<Profile, ProfileError> {
    let yml = dir.join("inspec.yml");
    let mut metadata: Metadata =
        serde_yaml_ng::from_str(raw).map_err(|e| ProfileError::Metadata {
            path: yml.clone(),
            message: e.to_string(),
        })?;
    if let Some(d) = metadata.depends.first() {
        return Err(ProfileError::Depends(d.to_string()));
    }
    // A bare hash is wrapped; os-* keys are renamed as InSpec reports them.
    metadata.supports = metadata
        .supports
        .iter()
        .map(|s| match s {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.replace("os-family", "platform-family")
                                .replace("os-name", "platform-name"),
                            v.clone(),
                        )
                    })
                    .collect(),
            ),
            other => other.clone(),
        })
        .collect();
    let mut control_files: Vec<String> = files
        .iter()
        .filter(|f| f.0.starts_with("controls/"))
        .map(|f| f.0.clone())
        .collect();
    let mut library_files: Vec<String> = files
        .iter()
        .filter(|f| f.0.starts_with("libraries/"))
        .map(|f| f.0.clone())
        .collect();
    control_files.sort();
    library_files.sort();
    let mut entries: Vec<(String, Vec<u8>)> = files.clone();
    entries.push(("inspec.yml".into(), raw.as_bytes().to_vec()));
    entries.push(("inspec.lock.deps".into(), b"--- {}\n".to_vec()));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (p, c) in &entries {
        h.update(p.as_bytes());
        h.update([0]);
        h.update(c);
        h.update([0]);
    }
    Ok(Profile {
        dir: dir.to_path_buf(),
        metadata,
        control_files,
        library_files,
        sha256: hex::encode(h.finalize()),
        sources: files.into_iter().collect(),
    })
}
