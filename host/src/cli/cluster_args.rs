//! Flags shared by the commands that talk to a cluster.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::cluster::{ClusterError, ConnectOptions, Target, journal};

/// The target pod and container (`dscan check`, `dscan scan`).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Namespace of the target pod (default: the context's namespace).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Target pod.
    #[arg(short, long)]
    pub pod: String,
    /// Target container (default: the pod's only or default container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// How long to wait for the API server to honour the run's new Role
    /// (RBAC caches lag behind writes) before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub rbac_wait: u64,
}

impl TargetArgs {
    /// The target; an empty namespace means the context's.
    pub fn target(&self) -> Target {
        Target {
            namespace: self.namespace.clone().unwrap_or_default(),
            pod: self.pod.clone(),
            container: self.container.clone(),
        }
    }
}

/// What `dscan scan` scans: one pod (`-p`), or a fleet selected like
/// kubectl selects (`-n` repeatable, `-A`, `-l`, `--field-selector`).
#[derive(Debug, Args)]
pub struct ScanTargetArgs {
    /// Namespace (repeatable for a fleet; default: the context's namespace).
    #[arg(short, long, value_name = "NS")]
    pub namespace: Vec<String>,
    /// Every namespace (a fleet run).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// One pod; without other selection flags, the single-pod scan.
    #[arg(short, long)]
    pub pod: Option<String>,
    /// Label selector, as kubectl takes it (a fleet run).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector, as kubectl takes it (a fleet run).
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// Container: in a single pod, default its only or default container;
    /// in a fleet, this container in each pod, default every regular one.
    #[arg(short, long)]
    pub container: Option<String>,
    /// How long to wait for the API server to honour the run's new Role
    /// (RBAC caches lag behind writes) before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub rbac_wait: u64,
}

impl ScanTargetArgs {
    /// Whether the selection names a fleet rather than one pod.
    pub fn selects_fleet(&self) -> bool {
        self.pod.is_none()
            || self.all_namespaces
            || self.namespace.len() > 1
            || self.selector.is_some()
            || self.field_selector.is_some()
    }

    /// The single target (an empty namespace means the context's).
    pub fn target(&self) -> Target {
        Target {
            namespace: self.namespace.first().cloned().unwrap_or_default(),
            pod: self.pod.clone().unwrap_or_default(),
            container: self.container.clone(),
        }
    }

    /// The fleet selection.
    pub fn selection(&self) -> crate::fleet::Selection {
        crate::fleet::Selection {
            namespaces: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            pod: self.pod.clone(),
            label_selector: self.selector.clone(),
            field_selector: self.field_selector.clone(),
            container: self.container.clone(),
        }
    }
}

/// How to reach the cluster and where run state lives.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Where run journals and the restricted kubeconfig live.
    #[arg(long, value_name = "DIR", env = "DSCAN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Client-side limit: API requests per second, for all of this run's
    /// identities together (429 and 5xx answers also hold requests back).
    #[arg(long, value_name = "N", default_value_t = 50.0, value_parser = parse_qps)]
    pub qps: f64,
    /// Client-side limit: requests that may go at once after a quiet spell.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,
}

fn parse_qps(raw: &str) -> Result<f64, String> {
    let qps: f64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    crate::cluster::pacing::Pacing::new(qps, 1).map(|p| p.qps)
}

/// Output for machines or humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Progress and a summary on stderr.
    Human,
    /// The run record as JSON on stdout (progress stays on stderr).
    Json,
    /// Only warnings and errors (stderr); the exit code tells the outcome.
    /// Reports asked for on stdout are still written.
    Quiet,
}

impl ClusterArgs {
    /// Connection options.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            pacing: Some(crate::cluster::pacing::Pacing {
                qps: self.qps,
                burst: self.burst,
            }),
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> Result<PathBuf, CliError> {
        self.state_dir.clone().or_else(journal::default_state_dir).ok_or_else(|| {
            CliError::Usage("no state directory: set --state-dir or DSCAN_STATE_DIR (no home directory was found)".into())
        })
    }
}

/// A multi-threaded runtime for cluster commands (the CLI itself is sync).
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "start the async runtime",
            path: String::new(),
            source,
        })
}

/// Who runs dscan, for the audit annotation.
pub fn created_by(context: Option<&str>) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut who = format!("{user}@{host}");
    if let Some(c) = context {
        who.push_str(&format!(" (context {c})"));
    }
    // Annotation values are free text, but keep them short.
    who.chars().take(200).collect()
}

impl From<ClusterError> for CliError {
    fn from(e: ClusterError) -> Self {
        CliError::Cluster(e)
    }
}

/// Prints the phase timings of a run, one line each, on stderr (unless they
/// were already shown live).
pub fn print_phases(record: &crate::cluster::RunRecord, shown_live: bool) {
    if shown_live {
        return;
    }
    for p in &record.phases {
        eprintln!("{}", p.line());
    }
}

/// The scanned container and its image (with the digest the node reports),
/// as evidence of what was scanned.
pub fn print_target(record: &crate::cluster::RunRecord) {
    let Some(p) = &record.preflight else {
        return;
    };
    let ran = if p.image_id.is_empty() || p.image_id == p.image {
        String::new()
    } else {
        format!(" (the node runs {})", p.image_id)
    };
    eprintln!(
        "target: {}/{} container {}: {}{ran}",
        record.target.namespace, record.target.pod, p.container, p.image
    );
}

/// What the run created and the privilege it took, one line each: the
/// ServiceAccount, the Role with its rules and the pod they are pinned to,
/// the RoleBinding, the token's lifetime and expiry, the kubeconfig.
pub fn print_identity(record: &crate::cluster::RunRecord) {
    use crate::cluster::identity::ObjectKind;
    let pod = &record.target.pod;
    for obj in &record.objects {
        let what = match obj.kind {
            ObjectKind::ServiceAccount => "no automounted token".to_string(),
            ObjectKind::Role => {
                let rules: Vec<String> = crate::access::ROLE_GRANTS
                    .iter()
                    .map(|(resource, verbs)| format!("{resource} {}", verbs.join(",")))
                    .collect();
                format!("{}; only on pod {pod:?} (resourceNames)", rules.join("; "))
            }
            ObjectKind::Pod => "the node-debug pod on the target's node".to_string(),
            ObjectKind::RoleBinding => format!(
                "Role {} to ServiceAccount {}/{}",
                obj.name, obj.namespace, obj.name
            ),
        };
        eprintln!("created {obj}: {what}");
    }
    if let Some(seconds) = record.token_seconds {
        eprintln!(
            "token: {seconds} s, expires {} (TokenRequest; it dies with the ServiceAccount at cleanup)",
            record.token_expires_at.as_deref().unwrap_or("?")
        );
    }
    if let Some(path) = &record.kubeconfig {
        let removed = record.cleanup.as_ref().map_or("", |c| {
            if c.kubeconfig_removed {
                ", overwritten and removed at cleanup"
            } else {
                ", NOT removed"
            }
        });
        eprintln!("kubeconfig: {} (0600{removed})", path.display());
    }
}

/// The debug container a scan added: name, image (and the digest the node
/// ran), user and capabilities.
pub fn print_debug_container(
    name: &str,
    dc: &crate::access::DebugContainer,
    image_id: Option<&str>,
) {
    let sec = &dc.security;
    let id = |v: Option<i64>| v.map_or_else(|| "image default".to_string(), |v| v.to_string());
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(",")
        }
    };
    eprintln!(
        "debug container {name}: {}{}",
        dc.image,
        image_id
            .filter(|i| *i != dc.image)
            .map(|i| format!(" (the node ran {i})"))
            .unwrap_or_default()
    );
    eprintln!(
        "debug container {name}: user {} group {}, capabilities add {} drop {}, privileged {}, allowPrivilegeEscalation {}, seccomp {}, exits by itself after {} s",
        id(sec.run_as_user),
        id(sec.run_as_group),
        list(&sec.capabilities_add),
        list(&sec.capabilities_drop),
        if sec.privileged { "YES" } else { "no" },
        if sec.allow_privilege_escalation {
            "yes"
        } else {
            "no"
        },
        if sec.seccomp_runtime_default {
            "RuntimeDefault"
        } else {
            "not set"
        },
        dc.dead_man_seconds
    );
}

/// What cleanup did, by name.
pub fn cleanup_line(c: &crate::cluster::cleanup::CleanupReport) -> String {
    let removed: Vec<String> = c.removed.iter().map(ToString::to_string).collect();
    let mut out = if removed.is_empty() {
        "cleanup: nothing to remove".to_string()
    } else {
        format!("cleanup: removed and verified gone: {}", removed.join(", "))
    };
    for (obj, why) in &c.remaining {
        out.push_str(&format!("; {obj} MAY REMAIN: {why}"));
    }
    if !c.kubeconfig_removed {
        out.push_str("; the kubeconfig could NOT be removed");
    }
    match (
        &c.debug_container,
        c.debug_container_stopped,
        c.debug_container_kept,
    ) {
        (Some(d), true, _) => out.push_str(&format!(
            "; debug container {d} stopped (it stays in the pod spec as a terminated entry)"
        )),
        (Some(d), _, true) => {
            out.push_str(&format!("; debug container {d} left running on request"))
        }
        (Some(_), false, false) if c.debug_container_not_started.is_some() => {
            out.push_str(&format!(
                "; {}",
                c.debug_container_not_started.as_deref().unwrap_or_default()
            ));
        }
        (Some(d), false, false) => {
            out.push_str(&format!("; debug container {d} could NOT be stopped"))
        }
        (None, ..) => {}
    }
    out
}

/// Phases are shown live (a spinner, then a line as each ends) for human
/// output on a terminal; otherwise their timings are printed at the end.
pub fn live_progress(
    output: OutputFormat,
) -> Option<std::sync::Arc<dyn crate::cluster::session::PhaseObserver>> {
    use std::io::IsTerminal;
    (output == OutputFormat::Human && std::io::stderr().is_terminal())
        .then(super::progress::PhaseSpinner::shared)
}
