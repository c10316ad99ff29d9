//! On-disk cache of precompiled plugins.
//!
//! Compiling a component takes tens of milliseconds (seconds in a debug
//! build); loading a precompiled one takes well under a millisecond. But a
//! precompiled artefact is native code that wasmtime loads without checking
//! it (`Component::deserialize` is `unsafe` for that reason), so the cache is
//! trusted only as far as nobody else can write it:
//!
//! - the cache root, and every folder above it, must be owned by this user
//!   (or root) and not writable by group or others — sticky folders such as
//!   `/tmp` excepted above the root — the way ssh's StrictModes treats
//!   `~/.ssh`; otherwise the cache is not used (a warning says why) and
//!   plugins are compiled in memory;
//! - every entry carries an HMAC-SHA256, keyed by a secret created in the
//!   cache root (mode 0600), over the engine's compatibility key, the
//!   plugin's SHA-256 and the compiled bytes. An entry that was swapped in for
//!   another plugin, or forged with any checksum of its own, fails the MAC and
//!   is recompiled — never deserialized. Entry files must be owned by this
//!   user and not writable by others.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

/// Where precompiled artefacts live, one folder per engine configuration.
#[derive(Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    key: [u8; 32],
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The MAC key stays out of debug output.
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What happened when a component was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artefact.
    Hit,
    /// Nothing cached; compiled (and stored, if the cache is writable).
    Miss,
    /// A cached entry was unreadable, corrupt or not authentic; compiled and
    /// replaced it.
    Rebuilt,
    /// No cache configured (or the configured one is not trusted); compiled.
    Disabled,
}

const HEADER: &[u8; 8] = b"DSCANPC2";
const KEY_FILE: &str = "cache-key";

/// Why a path cannot be trusted, or `Ok` when only this user (or root) can
/// write it. `final_dir`: the path itself must also be private (no group or
/// other write, and not a sticky shared folder).
fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    final_dir: bool,
) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, not by this user (uid {me}) or root",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode();
    let writable_by_others = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    if writable_by_others && (final_dir || !sticky) {
        return Err(format!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Checks `dir` and every folder above it (see the module docs).
fn check_trusted(dir: &Path) -> Result<(), String> {
    let canonical = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(&canonical)
        .map_err(|e| format!("cannot stat {}: {e}", canonical.display()))?;
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "{} is owned by uid {}, not by this user",
            canonical.display(),
            meta.uid()
        ));
    }
    check_owner_and_mode(&canonical, &meta, true)?;
    for ancestor in canonical.ancestors().skip(1) {
        let meta = std::fs::metadata(ancestor)
            .map_err(|e| format!("cannot stat {}: {e}", ancestor.display()))?;
        check_owner_and_mode(ancestor, &meta, false)?;
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Reads the MAC key from `root`, creating it (0600) if missing.
fn load_key(root: &Path) -> Result<[u8; 32], String> {
    let path = root.join(KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(format!("{} is not a regular file", path.display()));
            }
            if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
                return Err(format!(
                    "{} must be owned by this user with mode 0600 (it is uid {} mode {:o})",
                    path.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                ));
            }
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            bytes
                .try_into()
                .map_err(|_| format!("{} is not a 32-byte key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let mut tmp = tempfile::NamedTempFile::new_in(root)
                .map_err(|e| format!("cannot write in {}: {e}", root.display()))?;
            tmp.write_all(&key)
                .map_err(|e| format!("cannot write the cache key: {e}"))?;
            // Another dscan may have created one meanwhile: keep the first.
            match tmp.persist_noclobber(&path) {
                Ok(_) => Ok(key),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => load_key(root),
                Err(e) => Err(format!("cannot store {}: {}", path.display(), e.error)),
            }
        }
        Err(e) => Err(format!("cannot stat {}: {e}", path.display())),
    }
}

impl ArtifactCache {
    /// Opens (creating it, mode 0700) the cache rooted at `root`; entries go
    /// under `root/<engine-key>/`. Refuses a root that others could write.
    pub fn open(root: &Path, engine_key: &str) -> Result<Self, String> {
        create_private_dir(root)?;
        check_trusted(root)?;
        let key = load_key(root)?;
        let dir = root.join(engine_key);
        create_private_dir(&dir)?;
        check_trusted(&dir)?;
        Ok(ArtifactCache {
            dir,
            engine_key: engine_key.to_string(),
            key,
        })
    }

    /// The file an artefact for `wasm_sha256` is stored in.
    pub fn entry_path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}.cwasm"))
    }

    fn mac(&self, wasm_sha256: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(self.engine_key.as_bytes());
        mac.update(&[0]);
        mac.update(wasm_sha256.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac
    }

    /// The serialized component inside an entry, if it is authentic: written
    /// by this cache, for this engine and this plugin.
    fn verified_body<'a>(&self, wasm_sha256: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let rest = bytes.strip_prefix(HEADER.as_slice())?;
        if rest.len() < 32 {
            return None;
        }
        let (tag, body) = rest.split_at(32);
        self.mac(wasm_sha256, body).verify_slice(tag).ok()?;
        Some(body)
    }

    /// Loads the precompiled component for `wasm_sha256`, if an authentic
    /// entry exists. `Err` carries why an existing entry was rejected.
    pub fn load(&self, engine: &Engine, wasm_sha256: &str) -> Result<Option<Component>, String> {
        let path = self.entry_path(wasm_sha256);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
        };
        if !meta.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        check_owner_and_mode(&path, &meta, true)?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let body = self.verified_body(wasm_sha256, &bytes).ok_or_else(|| {
            format!(
                "{} is corrupt or was not written by this cache",
                path.display()
            )
        })?;
        deserialize(engine, body)
            .map(Some)
            .map_err(|e| format!("{} does not load: {e:#}", path.display()))
    }

    /// Stores a compiled component atomically (write to a temporary file,
    /// mode 0600, in the same folder, then rename), so readers never see half
    /// an entry.
    pub fn store(&self, wasm_sha256: &str, component: &Component) -> Result<(), String> {
        let body = component
            .serialize()
            .map_err(|e| format!("cannot serialise compiled plugin: {e:#}"))?;
        let mut tmp = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| format!("cannot write in {}: {e}", self.dir.display()))?;
        let tag = self.mac(wasm_sha256, &body).finalize().into_bytes();
        tmp.write_all(HEADER)
            .and_then(|_| tmp.write_all(&tag))
            .and_then(|_| tmp.write_all(&body))
            .map_err(|e| format!("cannot write cache entry: {e}"))?;
        let path = self.entry_path(wasm_sha256);
        tmp.persist(&path)
            .map_err(|e| format!("cannot store {}: {}", path.display(), e.error))?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, body: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artefact
    // produced by `Component::serialize` with a compatible engine. The bytes
    // passed here carry a valid HMAC under this cache's secret key (which only
    // this user can read, in a folder only this user can write) over this
    // engine's compatibility key and this plugin's SHA-256: they are exactly
    // what `store` wrote for this plugin. wasmtime also checks its own header.
    unsafe { Component::deserialize(engine, body) }
}

/// Hex SHA-256 of a plugin's bytes, the cache key and its identity in logs.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(root: &Path) -> ArtifactCache {
        ArtifactCache::open(root, "engine-a").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_authentic_entries_verify() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = cache(dir.path());
        let body = b"compiled code";
        let mut entry = HEADER.to_vec();
        entry.extend_from_slice(&c.mac("aa", body).finalize().into_bytes());
        entry.extend_from_slice(body);
        assert_eq!(c.verified_body("aa", &entry), Some(&body[..]));
        // The same bytes for another plugin (a swapped entry) do not verify.
        assert_eq!(c.verified_body("bb", &entry), None);
        let mut flipped = entry.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(c.verified_body("aa", &flipped), None);
        // A forged entry with a correct SHA-256 of its body (the old format's
        // only check) does not verify.
        let mut forged = HEADER.to_vec();
        forged.extend_from_slice(&Sha256::digest(body));
        forged.extend_from_slice(body);
        assert_eq!(c.verified_body("aa", &forged), None);
        assert_eq!(c.verified_body("aa", b"DSCANPC2short"), None);
        // Another cache (another key) does not accept this one's entries.
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache(other.path()).verified_body("aa", &entry), None);
    }

    #[test]
    fn the_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = cache(dir.path());
        let b = cache(dir.path());
        assert_eq!(a.key, b.key);
        let meta = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.mode() & 0o777, 0o600);
    }

    #[test]
    fn a_cache_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("cache");
        create_private_dir(&root).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = ArtifactCache::open(&root, "engine-a").expect_err("world-writable");
        assert!(err.contains("writable by group or others"), "{err}");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o770))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ArtifactCache::open(&root, "engine-a").is_err());
        // A parent others can write (not sticky) taints everything below it.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = ArtifactCache::open(&root, "engine-a").expect_err("parent");
        assert!(err.contains("writable by group or others"), "{err}");
        // Sticky and world-writable (like /tmp) is fine above the root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ArtifactCache::open(&root, "engine-a").is_ok());
    }
}
