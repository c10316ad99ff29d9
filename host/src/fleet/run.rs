//! A fleet run: select → preflight (once per namespace) → one temporary
//! identity per namespace, its Role pinned to exactly the selected pods →
//! the scans, `concurrency` at a time (containers of one pod one after
//! another: their debug containers patch the same pod) → every debug
//! container stopped → every namespace cleaned up. Cleanup runs after
//! errors, SIGINT and SIGTERM as in a single scan; each namespace has its own
//! journal, so `dscan gc` cleans up after a killed fleet run.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde::Serialize;

use super::select::{self, FleetTarget, Selection, Skipped};
use super::shard::Shard;
use crate::cluster::cleanup::CleanupReport;
use crate::cluster::journal::Journal;
use crate::cluster::node::{NodeNaming, NodeSlot};
use crate::cluster::preflight::{self, PreflightReport, Target};
use crate::cluster::probe::{self, ShellProbe};
use crate::cluster::session::{
    self, AbortOnDrop, DebugSlot, PhaseObserver, RunRecord, ScanContext, SessionOptions,
};
use crate::cluster::{
    CALL_TIMEOUT, ClusterConnection, ClusterError, TargetRef, bounded, debug, identity,
};

/// Settings of a fleet run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// What to select.
    pub selection: Selection,
    /// The settings each namespace's session gets (its target is replaced).
    pub session: SessionOptions,
    /// Scans at once.
    pub concurrency: usize,
    /// One scan per (image digest, container name).
    pub per_image: bool,
    /// Keep only containers the shell probe finds no shell in.
    pub only_distroless: bool,
    /// This process's share of the fleet.
    pub shard: Option<Shard>,
    /// Told as each scan starts, steps and ends.
    pub observer: Option<Arc<dyn FleetObserver>>,
}

/// Watches a fleet run's scans (the CLI draws one line per running scan).
pub trait FleetObserver: Send + Sync + std::fmt::Debug {
    /// How many scans the run will do.
    fn planned(&self, total: usize);
    /// A scan began.
    fn started(&self, target: &str);
    /// What a running scan is doing.
    fn step(&self, target: &str, what: &str);
    /// A scan ended.
    fn ended(&self, target: &str, ok: bool);
}

/// A container not scanned because another with the same image was.
#[derive(Debug, Clone, Serialize)]
pub struct Covered {
    /// The container not scanned.
    pub target: FleetTarget,
    /// The `namespace/pod/container` scanned in its place.
    pub by: String,
}

/// The record of a fleet run (`--output json`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct FleetRecord {
    /// Containers the selection matched and that can be scanned.
    pub selected: usize,
    /// Left out, with reasons.
    pub skipped: Vec<Skipped>,
    /// Covered by a scan of the same image (`--per-image`).
    pub covered: Vec<Covered>,
    /// This process's shard, and how many selected containers are other shards'.
    pub shard: Option<Shard>,
    /// Selected containers that belong to other shards.
    pub other_shards: usize,
    /// One session per namespace: identity, objects, cleanup.
    pub namespaces: Vec<RunRecord>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// API requests sent, and 429/5xx answers that held requests back.
    pub api_requests: Option<(u64, u64)>,
    /// What stopped the run as a whole, if anything did.
    pub error: Option<String>,
}

impl FleetRecord {
    /// Whether every namespace's cleanup is complete and every debug
    /// container was stopped.
    pub fn cleanup_complete(&self) -> bool {
        self.namespaces
            .iter()
            .all(|r| r.cleanup.as_ref().is_none_or(CleanupReport::complete))
    }
}

/// One scanned container and how its scan went.
#[derive(Debug)]
pub struct TargetRun<T> {
    /// The container.
    pub target: FleetTarget,
    /// The namespace session's run id.
    pub run_id: String,
    /// The shell probe's finding (with `--only-distroless`).
    pub probe: Option<ShellProbe>,
    /// The scan's outcome.
    pub outcome: Result<T, ClusterError>,
    /// Its debug container, and how stopping it went (`None`: none was added).
    pub debug_container: Option<(String, Result<String, String>)>,
    /// Seconds the scan took.
    pub seconds: f64,
}

/// What [`run`] returns: the record, every scanned container's run, and the
/// error that stopped the run as a whole (preflight, a signal).
pub type FleetResult<T> = (FleetRecord, Vec<TargetRun<T>>, Result<(), ClusterError>);

/// Runs a fleet; `work` is the scan phase of one container, as that
/// container's namespace identity.
pub async fn run<F, Fut, T>(
    conn: ClusterConnection,
    options: FleetOptions,
    work: F,
) -> FleetResult<T>
where
    F: Fn(ScanContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let mut record = FleetRecord {
        shard: options.shard,
        ..Default::default()
    };
    let signals = session::signalled();
    tokio::pin!(signals);
    let chosen = tokio::select! {
        c = choose(&conn, &options, &mut record) => c,
        sig = &mut signals => Err(ClusterError::Interrupted(sig)),
    };
    let (targets, probes, reports) = match chosen {
        Ok(c) => c,
        Err(e) => {
            record.error = Some(e.to_string());
            record.seconds = started.elapsed().as_secs_f64();
            return (record, vec![], Err(e));
        }
    };
    if let Some(o) = &options.observer {
        o.planned(targets.len());
    }
    let mut groups: BTreeMap<String, Vec<FleetTarget>> = BTreeMap::new();
    for t in targets {
        groups.entry(t.namespace.clone()).or_default().push(t);
    }
    let mut sessions: Vec<Namespaced> = vec![];
    let mut runs: Vec<TargetRun<T>> = vec![];
    let slots: Arc<Mutex<Vec<(DebugSlot, bool)>>> = Arc::default();
    let nodes: Arc<Mutex<Vec<(String, NodeSlot)>>> = Arc::default();
    let outcome = {
        let all = async {
            // Identities first, one namespace after another (a handful of
            // requests each); a namespace whose setup fails fails its targets.
            for (ns, targets) in groups {
                // Listed before its setup starts, so that a signal during
                // setup still cleans up what was created.
                let mut ns_session = Namespaced::new(&conn, &options.session, &ns, &targets);
                ns_session.targets = targets;
                sessions.push(ns_session);
                let Some(ns_session) = sessions.last_mut() else {
                    continue;
                };
                match ns_session.setup(&conn).await {
                    Ok(identity) => ns_session.identity = Some(identity),
                    Err(e) => {
                        tracing::warn!("namespace {ns}: setup failed: {e}");
                        ns_session.record.error = Some(e.to_string());
                    }
                }
            }
            session::hold(&options.session, "after-setup").await;
            scan_all(
                &conn,
                &options,
                &sessions,
                &probes,
                &reports,
                &slots,
                &nodes,
                work.clone(),
                &mut runs,
            )
            .await;
            Ok::<(), ClusterError>(())
        };
        tokio::select! {
            r = all => r,
            sig = &mut signals => Err(ClusterError::Interrupted(sig)),
        }
    };
    // After a signal the scans were dropped (and aborted): stop every debug
    // container they added, then clean up every namespace.
    let stopped: Vec<(DebugSlot, bool)> = slots.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (slot, done) in stopped {
        if done || options.session.keep_debug_container {
            continue;
        }
        if let Some(handle) = slot.handle()
            && let Err(e) = handle.stop(&conn.client).await
        {
            tracing::warn!("could not stop the debug container {}: {e}", handle.name);
        }
    }
    session::hold(&options.session, "before-cleanup").await;
    let nodes: Vec<(String, NodeSlot)> = nodes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for mut s in sessions {
        // Node-debug objects left by scans a signal cut short (a finished
        // scan removed its own); what remains keeps the journal for `gc`.
        let mut report = CleanupReport::default();
        for (_, node) in nodes.iter().filter(|(ns, _)| *ns == s.run_id) {
            let (removed, remaining) = node.remove_all().await;
            report.removed.extend(removed);
            report.remaining.extend(remaining);
        }
        s.record.cleanup =
            Some(session::cleanup_run(&conn, &s.options, &mut s.journal, report).await);
        record.namespaces.push(s.record);
    }
    if let Err(e) = &outcome {
        record.error = Some(e.to_string());
    }
    record.api_requests = conn.pacer.as_ref().map(|p| p.counts());
    record.seconds = started.elapsed().as_secs_f64();
    runs.sort_by_key(|r| r.target.key());
    (record, runs, outcome)
}

type Chosen = (
    Vec<FleetTarget>,
    BTreeMap<String, ShellProbe>,
    BTreeMap<String, PreflightReport>,
);

/// Selection, sharding, the distroless filter, per-image, and the checks
/// made once per namespace: everything before anything is created.
async fn choose(
    conn: &ClusterConnection,
    options: &FleetOptions,
    record: &mut FleetRecord,
) -> Result<Chosen, ClusterError> {
    let sel = &options.selection;
    let pods = select::list(conn, sel, &options.session.target.namespace).await?;
    let (mut targets, skipped) = select::classify(&pods, sel.container.as_deref());
    record.skipped = skipped;
    if targets.is_empty() && options.shard.is_none() {
        return Err(ClusterError::Target(format!(
            "the selection matched {} pod(s) and no container that can be scanned{}; check -n/-A, -l and --field-selector",
            pods.len(),
            if record.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} skipped, reasons in the record)", record.skipped.len())
            }
        )));
    }
    // With --per-image, a shard takes whole images, so each is scanned once
    // across all shards.
    if let Some(shard) = options.shard {
        let before = targets.len();
        targets.retain(|t| {
            shard.owns(&if options.per_image {
                t.image_key()
            } else {
                t.key()
            })
        });
        record.other_shards = before - targets.len();
    }
    let mut probes = BTreeMap::new();
    if options.only_distroless {
        use futures::StreamExt;
        let found: Vec<(FleetTarget, ShellProbe)> = futures::stream::iter(targets)
            .map(|t| async move {
                let p = probe::probe(&conn.client, &t.namespace, &t.pod, &t.container).await;
                (t, p)
            })
            .buffered(options.concurrency.max(1))
            .collect()
            .await;
        targets = vec![];
        for (t, p) in found {
            if p == ShellProbe::NoShell {
                probes.insert(t.key(), p);
                targets.push(t);
            } else {
                record.skipped.push(Skipped {
                    namespace: t.namespace.clone(),
                    pod: t.pod.clone(),
                    container: Some(t.container.clone()),
                    reason: format!("--only-distroless: {}", p.describe()),
                });
            }
        }
    }
    if options.per_image {
        let (scanned, covered) = select::per_image(targets);
        record.covered = covered
            .into_iter()
            .map(|(target, by)| Covered { target, by })
            .collect();
        targets = scanned;
    }
    record.selected = targets.len() + record.covered.len();
    let reports =
        namespace_checks(conn, &targets, options.session.node_fallback.as_deref()).await?;
    Ok((targets, probes, reports))
}

/// Server version and ephemeral containers (once), then per namespace the
/// caller's permissions and the Pod Security level: every problem listed,
/// nothing created. Returns each target's preflight report.
async fn namespace_checks(
    conn: &ClusterConnection,
    targets: &[FleetTarget],
    node_fallback: Option<&str>,
) -> Result<BTreeMap<String, PreflightReport>, ClusterError> {
    let mut out = BTreeMap::new();
    if targets.is_empty() {
        return Ok(out);
    }
    let client = &conn.client;
    let preflight::ClusterChecks {
        server_version,
        ephemeral_containers: ephemeral,
        mut problems,
    } = preflight::cluster_checks(client, node_fallback).await?;
    let mut by_ns: BTreeMap<&str, Vec<&FleetTarget>> = BTreeMap::new();
    for t in targets {
        by_ns.entry(t.namespace.as_str()).or_default().push(t);
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (ns, ts) in by_ns {
        // The Role lists every selected pod alike: one pod's name stands for all.
        let missing = preflight::missing_permissions(
            client,
            ns,
            &preflight::required_permissions(&ts[0].pod),
        )
        .await?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|p| format!("  - {p}")).collect();
            problems.push(format!(
                "your identity lacks {} permission(s) in namespace {ns:?}:\n{}",
                missing.len(),
                list.join("\n")
            ));
        }
        let pod_security = bounded("read the namespace", CALL_TIMEOUT, namespaces.get(ns))
            .await
            .ok()
            .and_then(|n| preflight::pod_security(&n));
        for t in ts {
            out.insert(
                t.key(),
                PreflightReport {
                    server_version: server_version.clone(),
                    ephemeral_containers: ephemeral,
                    pod_security: pod_security.clone(),
                    container: t.container.clone(),
                    pod_uid: t.pod_uid.clone(),
                    run_as_user: t.run_as_user,
                    image: t.image.clone(),
                    image_id: t.image_id.clone(),
                },
            );
        }
    }
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(|p| format!("- {p}")).collect();
        return Err(ClusterError::Preflight(text.join("\n")));
    }
    Ok(out)
}

/// One namespace's session: its journal, identity and record.
struct Namespaced {
    options: SessionOptions,
    run_id: String,
    journal: Journal,
    record: RunRecord,
    pods: Vec<String>,
    first: TargetRef,
    identity: Option<identity::ScanIdentity>,
    targets: Vec<FleetTarget>,
}

impl Namespaced {
    fn new(
        conn: &ClusterConnection,
        template: &SessionOptions,
        ns: &str,
        targets: &[FleetTarget],
    ) -> Namespaced {
        let run_id = identity::new_run_id();
        let pods: Vec<String> = targets
            .iter()
            .map(|t| t.pod.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let first = TargetRef {
            namespace: ns.to_string(),
            pod: targets[0].pod.clone(),
            container: targets[0].container.clone(),
            pod_uid: targets[0].pod_uid.clone(),
        };
        let target = Target {
            namespace: ns.to_string(),
            pod: first.pod.clone(),
            container: None,
        };
        let mut options = template.clone();
        options.target = target.clone();
        options.progress = None;
        let journal = Journal::new(
            &run_id,
            &conn.server,
            ns,
            &first.pod,
            &crate::cluster::identity::now_rfc3339(),
        );
        Namespaced {
            options,
            record: RunRecord::new(&run_id, target),
            run_id,
            journal,
            pods,
            first,
            identity: None,
            targets: vec![],
        }
    }

    async fn setup(
        &mut self,
        conn: &ClusterConnection,
    ) -> Result<identity::ScanIdentity, ClusterError> {
        session::setup(
            conn,
            &self.options,
            &self.run_id,
            &self.pods,
            &self.first,
            &mut self.journal,
            &mut self.record,
        )
        .await
    }
}

/// A per-scan adapter from the session's phase observer to the fleet's.
#[derive(Debug)]
struct ScanSteps {
    key: String,
    fleet: Arc<dyn FleetObserver>,
}

impl PhaseObserver for ScanSteps {
    fn started(&self, _phase: &'static str) {}
    fn ended(&self, _timing: &session::PhaseTiming) {}
    fn step(&self, what: &str) {
        self.fleet.step(&self.key, what);
    }
}

/// Runs every target's scan, `concurrency` at a time.
#[allow(clippy::too_many_arguments)]
async fn scan_all<F, Fut, T>(
    conn: &ClusterConnection,
    options: &FleetOptions,
    sessions: &[Namespaced],
    probes: &BTreeMap<String, ShellProbe>,
    reports: &BTreeMap<String, PreflightReport>,
    slots: &Arc<Mutex<Vec<(DebugSlot, bool)>>>,
    nodes: &Arc<Mutex<Vec<(String, NodeSlot)>>>,
    work: F,
    runs: &mut Vec<TargetRun<T>>,
) where
    F: Fn(ScanContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for s in sessions {
        let dir = s.journal.dir(&s.options.state_dir);
        // The containers of one pod go one after another.
        let mut by_pod: BTreeMap<&str, Vec<&FleetTarget>> = BTreeMap::new();
        for t in &s.targets {
            by_pod.entry(t.pod.as_str()).or_default().push(t);
        }
        let mut index = 0usize;
        for (pod, targets) in by_pod {
            let mut jobs = vec![];
            for t in targets {
                index += 1;
                let slot = DebugSlot::new(dir.clone(), Some(&format!("{pod}.{}", t.container)));
                slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((slot.clone(), false));
                // Unique per container: debug container and node object names derive from it.
                let target_run_id = format!("{}-{index}", s.run_id);
                let node = NodeSlot::new(
                    conn.client.clone(),
                    dir.clone(),
                    Some(&format!("{pod}.{}", t.container)),
                    NodeNaming {
                        name_id: target_run_id.clone(),
                        run_id: s.run_id.clone(),
                        service_account: (format!("dscan-{}", s.run_id), t.namespace.clone()),
                        created_by: s.options.created_by.clone(),
                        token_seconds: identity::token_seconds(s.options.token_seconds),
                    },
                );
                nodes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((s.run_id.clone(), node.clone()));
                let ctx = s.identity.as_ref().map(|id| ScanContext {
                    identity: identity::ScanIdentity {
                        client: id.client.clone(),
                        kubeconfig: id.kubeconfig.clone(),
                        username: id.username.clone(),
                        target: TargetRef {
                            namespace: t.namespace.clone(),
                            pod: t.pod.clone(),
                            container: t.container.clone(),
                            pod_uid: t.pod_uid.clone(),
                        },
                    },
                    preflight: reports
                        .get(&t.key())
                        .cloned()
                        .unwrap_or_else(|| unreachable_report(t)),
                    debug: slot.clone(),
                    node: node.clone(),
                    run_id: target_run_id.clone(),
                    hold_at: options.session.hold_at.clone(),
                    progress: options.observer.as_ref().map(|o| {
                        Arc::new(ScanSteps {
                            key: t.key(),
                            fleet: o.clone(),
                        }) as Arc<dyn PhaseObserver>
                    }),
                });
                let setup_error = s.record.error.clone();
                jobs.push((
                    t.clone(),
                    ctx,
                    (slot, node),
                    setup_error,
                    probes.get(&t.key()).cloned(),
                ));
            }
            let run_id = s.run_id.clone();
            let permits = permits.clone();
            let work = work.clone();
            let conn = conn.clone();
            let slots = slots.clone();
            let observer = options.observer.clone();
            let keep = options.session.keep_debug_container;
            tasks.spawn(async move {
                let mut out = vec![];
                for (target, ctx, (slot, node), setup_error, probe) in jobs {
                    let Ok(_permit) = permits.acquire().await else {
                        break;
                    };
                    let key = target.key();
                    if let Some(o) = &observer {
                        o.started(&key);
                    }
                    let began = Instant::now();
                    let outcome = match ctx {
                        None => Err(ClusterError::Target(format!(
                            "the namespace's temporary identity could not be set up: {}",
                            setup_error.unwrap_or_default()
                        ))),
                        Some(ctx) => {
                            let mut task = AbortOnDrop(tokio::spawn(work(ctx)));
                            match (&mut task.0).await {
                                Ok(r) => r,
                                Err(e) if e.is_panic() => Err(ClusterError::Internal(format!(
                                    "the scan of {key} panicked"
                                ))),
                                Err(e) => Err(ClusterError::Internal(e.to_string())),
                            }
                        }
                    };
                    let debug_container = match slot.handle() {
                        None => None,
                        Some(_) if keep => None,
                        Some(handle) => {
                            let stopped = match handle.stop(&conn.client).await {
                                Ok(debug::Stopped::NotStarted(why)) => {
                                    Ok(handle.not_started_note(&why))
                                }
                                Ok(_) => Ok("stopped".to_string()),
                                Err(e) => Err(e.to_string()),
                            };
                            if stopped.is_ok() {
                                mark_stopped(&slots, &slot);
                            }
                            Some((handle.name.clone(), stopped))
                        }
                    };
                    // A node-debug pod goes as soon as its scan ends; what
                    // cannot be removed now is tried again at cleanup.
                    let (_, left) = node.remove_all().await;
                    for (obj, why) in left {
                        tracing::warn!("could not remove {obj} yet: {why}");
                    }
                    if let Some(o) = &observer {
                        o.ended(&key, outcome.is_ok());
                    }
                    out.push(TargetRun {
                        target,
                        run_id: run_id.clone(),
                        probe,
                        outcome,
                        debug_container,
                        seconds: began.elapsed().as_secs_f64(),
                    });
                }
                out
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => runs.extend(r),
            Err(e) => tracing::warn!("a fleet task ended abnormally: {e}"),
        }
    }
}

fn mark_stopped(slots: &Mutex<Vec<(DebugSlot, bool)>>, slot: &DebugSlot) {
    let mut all = slots.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(entry) = all.iter_mut().find(|(s, _)| s.same(slot)) {
        entry.1 = true;
    }
}

/// Every target passed the namespace checks, so it has a report; this only
/// keeps the types total.
fn unreachable_report(t: &FleetTarget) -> PreflightReport {
    PreflightReport {
        server_version: String::new(),
        ephemeral_containers: true,
        pod_security: None,
        container: t.container.clone(),
        pod_uid: t.pod_uid.clone(),
        run_as_user: t.run_as_user,
        image: t.image.clone(),
        image_id: t.image_id.clone(),
    }
}
