//! The restricted kubeconfig: server, CA, namespace and the temporary token —
//! nothing else — written atomically with mode 0600 inside a private 0700
//! directory, and overwritten before it is deleted.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::json;

use super::{ClusterConnection, ClusterError};

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ClusterError + 'a {
    move |source| ClusterError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` (and parents) and makes it private (0700).
pub fn private_dir(dir: &Path) -> Result<(), ClusterError> {
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("restrict directory", dir))
}

/// Writes the kubeconfig to `dir/kubeconfig` and returns its path.
pub fn write(
    dir: &Path,
    conn: &ClusterConnection,
    namespace: &str,
    user: &str,
    token: &secrecy::SecretString,
) -> Result<PathBuf, ClusterError> {
    private_dir(dir)?;
    let mut cluster = json!({"server": conn.server});
    if let Some(ca) = &conn.ca_pem {
        use base64::Engine;
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    if conn.insecure {
        cluster["insecure-skip-tls-verify"] = json!(true);
    }
    // JSON is YAML: every kubeconfig loader reads it.
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dscan", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token.expose_secret()}}],
        "contexts": [{"name": "dscan", "context": {"cluster": "dscan", "user": user, "namespace": namespace}}],
        "current-context": "dscan",
    });
    let path = dir.join("kubeconfig");
    // NamedTempFile is created 0600; rename makes the write atomic.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io("create kubeconfig", dir))?;
    file.write_all(config.to_string().as_bytes())
        .map_err(io("write kubeconfig", &path))?;
    file.as_file()
        .sync_all()
        .map_err(io("sync kubeconfig", &path))?;
    file.persist(&path).map_err(|e| ClusterError::Io {
        what: "write kubeconfig",
        path: path.display().to_string(),
        source: e.error,
    })?;
    Ok(path)
}

/// Overwrites the file with zeros, syncs, and deletes it. A missing file is fine.
pub fn shred(path: &Path) -> Result<(), ClusterError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("stat kubeconfig", path)(e)),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open kubeconfig", path))?;
    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.write_all(&zeros)
        .map_err(io("overwrite kubeconfig", path))?;
    file.sync_all().map_err(io("sync kubeconfig", path))?;
    std::fs::remove_file(path).map_err(io("delete kubeconfig", path))
}

/// A client from the kubeconfig file, proving the file itself works.
pub async fn client_from(
    path: &Path,
    pacer: Option<std::sync::Arc<super::pacing::Pacer>>,
) -> Result<kube::Client, ClusterError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
    super::pacing::client(config, pacer)
}
