//! On-disk cache of precompiled plugins.
//!
//! Compiling a component takes tens of milliseconds (seconds in a debug
//! build); loading a precompiled one takes well under a millisecond. Entries
//! are keyed by the engine's compatibility fingerprint and the wasm's SHA-256,
//! and carry a SHA-256 of their own contents so a truncated or corrupted entry
//! is detected, discarded and rebuilt rather than handed to the loader.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled artefacts live, one folder per engine configuration.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

/// What happened when a component was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artefact.
    Hit,
    /// Nothing cached; compiled (and stored, if the cache is writable).
    Miss,
    /// A cached entry was unreadable or corrupt; compiled and replaced it.
    Rebuilt,
    /// No cache configured; compiled.
    Disabled,
}

const HEADER: &[u8; 8] = b"DSCANPC1";

impl ArtifactCache {
    /// A cache rooted at `root`; entries go under `root/<engine-key>/`.
    pub fn new(root: &Path, engine_key: &str) -> Self {
        ArtifactCache {
            dir: root.join(engine_key),
        }
    }

    /// The file an artefact for `wasm_sha256` is stored in.
    pub fn entry_path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}.cwasm"))
    }

    /// Loads the precompiled component for `wasm_sha256`, if a sound entry
    /// exists. `Err` carries why an existing entry was rejected.
    pub fn load(&self, engine: &Engine, wasm_sha256: &str) -> Result<Option<Component>, String> {
        let path = self.entry_path(wasm_sha256);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let body = verified_body(&bytes).ok_or_else(|| format!("{} is corrupt", path.display()))?;
        deserialize(engine, body)
            .map(Some)
            .map_err(|e| format!("{} does not load: {e:#}", path.display()))
    }

    /// Stores a compiled component atomically (write to a temporary file in
    /// the same folder, then rename), so readers never see half an entry.
    pub fn store(&self, wasm_sha256: &str, component: &Component) -> Result<(), String> {
        let body = component
            .serialize()
            .map_err(|e| format!("cannot serialise compiled plugin: {e:#}"))?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| format!("cannot write in {}: {e}", self.dir.display()))?;
        let digest = Sha256::digest(&body);
        tmp.write_all(HEADER)
            .and_then(|_| tmp.write_all(&digest))
            .and_then(|_| tmp.write_all(&body))
            .map_err(|e| format!("cannot write cache entry: {e}"))?;
        let path = self.entry_path(wasm_sha256);
        tmp.persist(&path)
            .map_err(|e| format!("cannot store {}: {}", path.display(), e.error))?;
        Ok(())
    }
}

/// The serialized component inside an entry, if its checksum holds.
fn verified_body(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(HEADER.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (digest, body) = rest.split_at(32);
    (Sha256::digest(body).as_slice() == digest).then_some(body)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, body: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artefact
    // produced by `Component::serialize` with a compatible engine. Entries are
    // written only by `store` above, into a folder keyed by this engine's
    // compatibility fingerprint, and `verified_body` has checked the SHA-256
    // written with them, so the bytes are exactly what wasmtime produced.
    // wasmtime additionally checks its own header and version.
    unsafe { Component::deserialize(engine, body) }
}

/// Hex SHA-256 of a plugin's bytes, the cache key and its identity in logs.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_body_rejects_tampering() {
        let body = b"compiled code";
        let mut entry = HEADER.to_vec();
        entry.extend_from_slice(&Sha256::digest(body));
        entry.extend_from_slice(body);
        assert_eq!(verified_body(&entry), Some(&body[..]));

        let mut flipped = entry.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(verified_body(&flipped), None);
        assert_eq!(verified_body(&entry[..entry.len() - 3]), None);
        assert_eq!(verified_body(b"DSCANPC1short"), None);
        assert_eq!(verified_body(b""), None);
    }
}
