//! `dscan-sim`: an in-process Kubernetes API server that the real `kube`
//! client talks to over HTTPS, and a kubelet that runs containers as real
//! processes in Linux namespaces (when root).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dscan_sim::SimError> {
//! let sim = dscan_sim::Sim::start().await?;
//! let client = sim.client().await?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! What it does not model is listed in the crate's README.

mod api;
pub mod auth;
pub mod clock;
pub mod faults;
pub mod kubelet;
mod podspec;
pub mod psa;
pub mod rbac;
mod request;
pub mod runtime;
mod smp;
pub mod status;
pub mod store;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use auth::UserInfo;
pub use clock::Clock;
pub use faults::{Faults, Matcher, RequestRecord};
pub use kubelet::images::{self as images, Images};
pub use kubelet::{KubeletMode, RuntimeCommand};
pub use psa::Level;
pub use status::ApiError;

use api::Shared;
use store::{Key, Kind, Store};

/// What can go wrong starting or using the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Certificate generation or TLS setup failed.
    #[error("the simulator could not set up TLS: {0}")]
    Tls(String),
    /// Binding or serving failed.
    #[error("the simulator could not listen on 127.0.0.1: {0}")]
    Io(#[from] std::io::Error),
    /// Building a fixture image failed.
    #[error("the simulator could not build its images: {0}")]
    Image(String),
    /// The kube client could not be built from the generated kubeconfig.
    #[error("the kube client rejected the simulator's kubeconfig: {0}")]
    Client(String),
    /// A direct store operation was refused.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// A pod from [`Sim::run_pod`] was refused or did not become ready.
    #[error("pod {pod}: {message}")]
    Pod {
        /// `namespace/name`.
        pod: String,
        /// What went wrong.
        message: String,
    },
}

/// Settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Kubernetes version reported by `/version` (major, minor).
    pub version: (u32, u32),
    /// Clamp TokenRequest lifetimes to this many seconds (the API server's
    /// `--service-account-max-token-expiration`).
    pub max_token_seconds: Option<i64>,
    /// Longest watch before the server ends it.
    pub max_watch_timeout: Duration,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How the kubelet starts the runtime helper (`None`: look for
    /// `dscan-sim-runtime`, see [`RuntimeCommand::locate`]).
    pub runtime: Option<RuntimeCommand>,
    /// The level Pod Security Admission enforces in namespaces without an
    /// `enforce` label (the admission configuration's cluster-wide default).
    pub psa_default: Level,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            version: (1, 35),
            max_token_seconds: None,
            max_watch_timeout: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(1),
            runtime: None,
            psa_default: Level::Privileged,
        }
    }
}

impl RuntimeCommand {
    /// `$DSCAN_SIM_RUNTIME`, else `dscan-sim-runtime` beside the current
    /// executable or one directory up (test binaries live in `deps/`).
    pub fn locate() -> Option<RuntimeCommand> {
        if let Some(p) = std::env::var_os("DSCAN_SIM_RUNTIME") {
            return Some(RuntimeCommand {
                program: PathBuf::from(p),
                args: vec![],
            });
        }
        let exe = std::env::current_exe().ok()?;
        let dir = exe.parent()?;
        [
            dir.join("dscan-sim-runtime"),
            dir.parent()?.join("dscan-sim-runtime"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .map(|program| RuntimeCommand {
            program,
            args: vec![],
        })
    }
}

/// A running simulator. Dropping it stops the server and kills every container.
pub struct Sim {
    shared: Arc<Shared>,
    url: String,
    ca_pem: String,
    admin_token: String,
    server: JoinHandle<()>,
    _workdir: tempfile::TempDir,
}

impl Sim {
    /// Starts with the default settings.
    pub async fn start() -> Result<Sim, SimError> {
        Self::start_with(SimConfig::default()).await
    }

    /// Starts with the given settings: a `default` namespace exists.
    pub async fn start_with(config: SimConfig) -> Result<Sim, SimError> {
        let workdir = tempfile::Builder::new().prefix("dscan-sim-").tempdir()?;
        let images = tokio::task::spawn_blocking({
            let dir = workdir.path().join("images");
            move || Images::build(&dir)
        })
        .await
        .map_err(|e| SimError::Image(e.to_string()))??;
        let tls = tls::generate()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let clock = Clock::default();
        let store = Arc::new(Store::new(clock.clone()));
        let faults = Faults::new();
        let runtime = config.runtime.clone().or_else(RuntimeCommand::locate);
        let containers = workdir.path().join("containers");
        std::fs::create_dir_all(&containers)?;
        let kubelet = kubelet::Kubelet::start(
            store.clone(),
            clock.clone(),
            faults.clone(),
            images,
            runtime,
            containers,
        );
        let tokens = auth::Tokens::new();
        let admin_token = tokens.issue_static(UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        });
        let shared = Arc::new(Shared {
            store,
            tokens,
            clock,
            faults,
            config,
            kubelet,
            server_address: addr.to_string(),
        });
        shared.store.create(
            Kind::Namespace,
            "",
            json!({"metadata": {"name": "default",
            "labels": {"kubernetes.io/metadata.name": "default"}}, "status": {"phase": "Active"}}),
        )?;
        let router = Router::new()
            .fallback(api::handle)
            .with_state(shared.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(router.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Sim {
            shared,
            url: format!("https://{addr}"),
            ca_pem: tls.ca_pem,
            admin_token,
            server,
            _workdir: workdir,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig for a bearer token, with a default namespace.
    pub fn kubeconfig_for(&self, user: &str, token: &str, namespace: Option<&str>) -> Kubeconfig {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: "dscan-sim".into(),
                cluster: Some(Cluster {
                    server: Some(self.url.clone()),
                    certificate_authority_data: Some(ca),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: user.into(),
                auth_info: Some(AuthInfo {
                    token: Some(token.to_string().into()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: "dscan-sim".into(),
                context: Some(Context {
                    cluster: "dscan-sim".into(),
                    user: Some(user.into()),
                    namespace: namespace.map(String::from),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some("dscan-sim".into()),
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            ..Default::default()
        }
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.kubeconfig_for("kubernetes-admin", &self.admin_token, Some("default"))
    }

    /// The admin kubeconfig as YAML, for writing to a file.
    pub fn kubeconfig_yaml(&self) -> Result<String, SimError> {
        serde_yaml_ng::to_string(&self.kubeconfig()).map_err(|e| SimError::Client(e.to_string()))
    }

    /// A `kube::Client` for a kubeconfig.
    pub async fn client_from(&self, kubeconfig: Kubeconfig) -> Result<kube::Client, SimError> {
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| SimError::Client(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| SimError::Client(e.to_string()))
    }

    /// An admin client.
    pub async fn client(&self) -> Result<kube::Client, SimError> {
        self.client_from(self.kubeconfig()).await
    }

    /// A client authenticating with a bearer token.
    pub async fn client_for_token(&self, token: &str) -> Result<kube::Client, SimError> {
        self.client_from(self.kubeconfig_for("token-user", token, Some("default")))
            .await
    }

    /// Adds a (non-admin) user and returns its token; grant it rights with RoleBindings.
    pub fn add_user(&self, name: &str, groups: &[&str]) -> String {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_string()).collect();
        groups.push("system:authenticated".into());
        self.shared.tokens.issue_static(UserInfo {
            name: name.into(),
            groups,
        })
    }

    /// Every ServiceAccount token the server has issued (for leak checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.tokens.issued_service_account_tokens()
    }

    /// Creates a namespace with a Pod Security `enforce` level.
    pub fn create_namespace(&self, name: &str, level: Level) -> Result<(), SimError> {
        self.shared.store.create(
            Kind::Namespace,
            "",
            json!({"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name,
                "pod-security.kubernetes.io/enforce": level.as_str()}}, "status": {"phase": "Active"}}),
        )?;
        Ok(())
    }

    /// Creates a namespace whose `enforce` label is `enforce` verbatim (an
    /// invalid value is enforced as `restricted`), or absent (`None`: the
    /// cluster default, [`SimConfig::psa_default`], applies).
    pub fn create_namespace_labelled(
        &self,
        name: &str,
        enforce: Option<&str>,
    ) -> Result<(), SimError> {
        let mut labels = json!({"kubernetes.io/metadata.name": name});
        if let Some(v) = enforce {
            labels["pod-security.kubernetes.io/enforce"] = json!(v);
        }
        self.shared.store.create(
            Kind::Namespace,
            "",
            json!({"metadata": {"name": name, "labels": labels}, "status": {"phase": "Active"}}),
        )?;
        Ok(())
    }

    /// Sets (or, with `None`, removes) a namespace's `enforce` label, as an
    /// administrator would; running pods are not re-evaluated (as with the
    /// real admission plugin, which only checks new pods and changes).
    pub fn set_namespace_enforce(&self, name: &str, enforce: Option<&str>) -> Result<(), SimError> {
        self.shared
            .store
            .update(&Key::new(Kind::Namespace, "", name), |ns| {
                let labels = &mut ns["metadata"]["labels"];
                if let Some(map) = labels.as_object_mut() {
                    match enforce {
                        Some(v) => {
                            map.insert("pod-security.kubernetes.io/enforce".into(), json!(v));
                        }
                        None => {
                            map.remove("pod-security.kubernetes.io/enforce");
                        }
                    }
                }
                Ok(())
            })?;
        Ok(())
    }

    /// The fault-injection and request-log handle.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The simulator's clock (advance it to expire tokens).
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Forgets the watch history: older resourceVersions now get 410 Expired.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// How the kubelet runs containers.
    pub fn kubelet_mode(&self) -> &KubeletMode {
        self.shared.kubelet.mode()
    }

    /// The images the kubelet can run.
    pub fn images(&self) -> &Images {
        self.shared.kubelet.images()
    }

    /// Creates a pod (as the admin) and waits up to `limit` until all its
    /// containers are ready: the running target that tests, benchmarks and
    /// the demo start from.
    pub async fn run_pod(
        &self,
        namespace: &str,
        pod: serde_json::Value,
        limit: Duration,
    ) -> Result<k8s_openapi::api::core::v1::Pod, SimError> {
        use k8s_openapi::api::core::v1::Pod;
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let failed = |message: String| SimError::Pod {
            pod: format!("{namespace}/{name}"),
            message,
        };
        let pod: Pod = serde_json::from_value(pod).map_err(|e| failed(e.to_string()))?;
        let api: kube::Api<Pod> = kube::Api::namespaced(self.client().await?, namespace);
        api.create(&kube::api::PostParams::default(), &pod)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let current = api.get(&name).await.map_err(|e| failed(e.to_string()))?;
            let statuses = current
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            if statuses.is_some_and(|c| !c.is_empty() && c.iter().all(|s| s.ready)) {
                return Ok(current);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(failed(format!(
                    "not ready within {limit:?}: {:?}",
                    current.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Host PID of a running container's main process.
    pub fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<i32> {
        let pod = self
            .shared
            .store
            .get(&Key::new(Kind::Pod, namespace, pod))?;
        self.shared
            .kubelet
            .container_pid(pod["metadata"]["uid"].as_str()?, container)
    }

    /// Stops the server and kills every container, waiting until they are gone.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.kubelet.kill_all();
        // A container killed while it was being set up may still be writing
        // its directories for a moment: remove the work directory until it
        // stays gone (TempDir's own removal gives up at the first error).
        for _ in 0..50 {
            match std::fs::remove_dir_all(self._workdir.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break,
            }
        }
    }
}
