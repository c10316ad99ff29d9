//! `dscan check`: preflight, the distroless probe, the temporary identity,
//! a proof that the identity has exactly what the scan needs, and verified
//! cleanup — everything `dscan scan` does around the scan itself.

use clap::Args;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};

use super::cluster_args::{ClusterArgs, OutputFormat, TargetArgs, created_by, runtime};
use super::{CliError, exit};
use crate::cluster::preflight::{Permission, can_i};
use crate::cluster::{
    CALL_TIMEOUT, ClusterError, ScanContext, SessionOptions, bounded, connect, session,
};

/// Arguments of `dscan check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Token lifetime in seconds (at least 600, the API minimum).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub token_ttl: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs `dscan check`.
pub fn run(args: CheckArgs) -> Result<u8, CliError> {
    if args.token_ttl < 600 {
        return Err(CliError::Usage(format!(
            "--token-ttl {} is under the API's 600 s minimum for TokenRequest; use 600 or more",
            args.token_ttl
        )));
    }
    let state_dir = args.cluster.state_dir()?;
    let rt = runtime()?;
    rt.block_on(async move {
        let conn = connect::connect(&args.cluster.connect_options()).await?;
        let mut target = args.target.target();
        if target.namespace.is_empty() {
            target.namespace = conn.default_namespace.clone();
        }
        let options = SessionOptions {
            target,
            node_fallback: None,
            token_seconds: args.token_ttl,
            state_dir,
            created_by: created_by(args.cluster.context.as_deref()),
            hold_at: std::env::var("DSCAN_TEST_HOLD_AT").ok(),
            keep_debug_container: false,
            authorization_wait: std::time::Duration::from_secs(args.target.rbac_wait),
            progress: super::cluster_args::live_progress(args.output),
        };
        let live = options.progress.is_some();
        let (record, outcome) = session::run(conn, options, prove).await;
        let cleanup_complete = record.cleanup.as_ref().is_none_or(|c| c.complete());
        match args.output {
            OutputFormat::Json => {
                let text = serde_json::to_string_pretty(&record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
                println!("{text}");
            }
            OutputFormat::Human => print_human(&record, live),
            OutputFormat::Quiet => {}
        }
        if !cleanup_complete {
            let left: Vec<String> = record
                .cleanup
                .iter()
                .flat_map(|c| c.remaining.iter().map(|(o, why)| format!("  - {o}: {why}")))
                .collect();
            eprintln!(
                "Error: cleanup is incomplete; these may remain in the cluster:\n{}\n  Run `dscan gc` to remove them.",
                left.join("\n")
            );
            if let Err(e) = &outcome {
                eprintln!("  (the run also failed: {e})");
            }
            return Ok(exit::CLEANUP_INCOMPLETE);
        }
        match outcome {
            Ok(()) => Ok(exit::OK),
            Err(e) => Err(CliError::Cluster(e)),
        }
    })
}

fn print_human(record: &session::RunRecord, live: bool) {
    super::cluster_args::print_phases(record, live);
    super::cluster_args::print_target(record);
    if let Some(probe) = &record.probe {
        eprintln!("target: {}", probe.describe());
    }
    if let Some(id) = &record.identity {
        eprintln!("scan identity: {id}");
    }
    super::cluster_args::print_identity(record);
    if let Some(c) = &record.cleanup {
        eprintln!("{}", super::cluster_args::cleanup_line(c));
    }
}

/// The scan phase of `check`: using only the temporary identity, read and
/// watch the target and confirm by access review that the identity can do
/// what the scan needs and nothing broader.
async fn prove(ctx: ScanContext) -> Result<(), ClusterError> {
    let identity = ctx.identity;
    let pods: Api<Pod> = Api::namespaced(identity.client.clone(), &identity.target.namespace);
    bounded(
        "read the target as the scan identity",
        CALL_TIMEOUT,
        pods.get(&identity.target.pod),
    )
    .await?;
    bounded(
        "read ephemeral containers as the scan identity",
        CALL_TIMEOUT,
        pods.get_ephemeral_containers(&identity.target.pod),
    )
    .await?;
    let wp = WatchParams::default()
        .fields(&format!("metadata.name={}", identity.target.pod))
        .timeout(10);
    let mut stream = Box::pin(
        bounded(
            "watch the target as the scan identity",
            CALL_TIMEOUT,
            pods.watch(&wp, "0"),
        )
        .await?,
    );
    let first = tokio::time::timeout(CALL_TIMEOUT, stream.try_next()).await;
    match first {
        Ok(Ok(Some(WatchEvent::Added(_)))) => {}
        other => {
            return Err(ClusterError::Target(format!(
                "watching the target as the scan identity gave {other:?} instead of the pod"
            )));
        }
    }
    let pinned = |verb, resource, subresource, why| Permission {
        verb,
        group: "",
        resource,
        subresource,
        name: identity.target.pod.clone(),
        why,
    };
    // Every grant on the pod's subresources, from the table the Role is
    // built from (reading and watching the pod were just exercised).
    let needed: Vec<Permission> = crate::access::ROLE_GRANTS
        .iter()
        .filter_map(|(resource, verbs)| resource.split_once('/').map(|(r, sub)| (r, sub, *verbs)))
        .flat_map(|(resource, sub, verbs)| {
            verbs
                .iter()
                .map(move |verb| pinned(verb, resource, sub, "granted to the scan identity"))
        })
        .collect();
    for perm in &needed {
        if !can_i(&identity.client, &identity.target.namespace, perm).await? {
            return Err(ClusterError::Target(format!(
                "the scan identity cannot {perm}"
            )));
        }
    }
    let broader = [
        Permission {
            name: String::new(),
            ..pinned("list", "pods", "", "list pods")
        },
        Permission {
            name: String::new(),
            ..pinned("create", "pods", "", "create pods")
        },
        pinned("delete", "pods", "", "delete the target"),
        Permission {
            name: String::new(),
            ..pinned("get", "secrets", "", "read secrets")
        },
    ];
    for perm in &broader {
        if can_i(&identity.client, &identity.target.namespace, perm).await? {
            return Err(ClusterError::Target(format!(
                "the scan identity has more rights than the scan needs: it may {perm}"
            )));
        }
    }
    Ok(())
}
