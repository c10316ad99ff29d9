//! Connecting: a kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`)
//! with an optional `--context`, or the in-cluster service account.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterError;

/// Where the caller's credentials come from.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`, else in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// A context in it (else its current context).
    pub context: Option<String>,
    /// The client-side rate limit (`None`: unlimited).
    pub pacing: Option<super::pacing::Pacing>,
}

/// A connected client and what the restricted kubeconfig needs to reach the
/// same API server.
#[derive(Clone)]
pub struct ClusterConnection {
    /// The caller's client (setup and cleanup only).
    pub client: kube::Client,
    /// API server URL.
    pub server: String,
    /// CA certificates (PEM), when the caller's config names any.
    pub ca_pem: Option<String>,
    /// Whether the caller's config skips TLS verification.
    pub insecure: bool,
    /// Namespace of the caller's context.
    pub default_namespace: String,
    /// Context name (for the audit annotation), when known.
    pub context: Option<String>,
    /// The rate limit every client of this run shares (the temporary
    /// identities' too).
    pub pacer: Option<std::sync::Arc<super::pacing::Pacer>>,
}

impl std::fmt::Debug for ClusterConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConnection")
            .field("server", &self.server)
            .field("context", &self.context)
            .finish()
    }
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Connects with the caller's credentials.
pub async fn connect(options: &ConnectOptions) -> Result<ClusterConnection, ClusterError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let ca_pem = config
        .root_cert
        .as_ref()
        .map(|certs| certs.iter().map(|c| pem(c)).collect::<String>());
    let insecure = config.accept_invalid_certs;
    let default_namespace = config.default_namespace.clone();
    let pacer = options
        .pacing
        .map(|p| std::sync::Arc::new(super::pacing::Pacer::new(p)));
    let client = super::pacing::client(config, pacer.clone())?;
    Ok(ClusterConnection {
        client,
        pacer,
        server,
        ca_pem,
        insecure,
        default_namespace,
        context: options.context.clone(),
    })
}
