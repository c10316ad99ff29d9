//! A run: preflight → probe → setup (journaled) → the work, as the temporary
//! identity → cleanup, which always runs: after success, errors, SIGINT,
//! SIGTERM and panics in the work.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cleanup::{self, CleanupReport};
use super::identity::{self, ObjectKind, ObjectRef, ScanIdentity};
use super::journal::{EntryState, Journal};
use super::preflight::{self, PreflightReport, Target};
use super::probe::{self, ShellProbe};
use super::{ClusterConnection, ClusterError, kubeconfig};

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// What to scan.
    pub target: Target,
    /// The node-debug fallback's namespace, when the user allowed the
    /// fallback and named one: preflight then checks the permissions it
    /// needs there, and a cluster without ephemeral containers is no error.
    pub node_fallback: Option<String>,
    /// Requested token lifetime in seconds (raised to the API's 600 s minimum).
    pub token_seconds: i64,
    /// Where journals and the restricted kubeconfig live.
    pub state_dir: PathBuf,
    /// Who runs dscan (annotation).
    pub created_by: String,
    /// Test hook: stop at this phase boundary and wait (see [`hold`]).
    pub hold_at: Option<String>,
    /// How long the new Role may take to be honoured (RBAC cache lag).
    pub authorization_wait: Duration,
    /// Leave the debug container running after the run (for debugging).
    pub keep_debug_container: bool,
    /// Told as each phase starts and ends (the CLI shows them live on a
    /// terminal; without one the caller prints the timings at the end).
    pub progress: Option<Arc<dyn PhaseObserver>>,
}

/// Watches a run's phases (`preflight`, `probe`, `setup`, `scan`, `cleanup`)
/// as they happen. Called from the session's task: implementations must not
/// block for long.
pub trait PhaseObserver: Send + Sync + std::fmt::Debug {
    /// A phase began.
    fn started(&self, phase: &'static str);
    /// A phase ended (also when it failed or was interrupted).
    fn ended(&self, timing: &PhaseTiming);
    /// What the running phase is doing or waiting for now.
    fn step(&self, _what: &str) {}
}

/// The debug container a run added, recorded beside the journal as soon as it
/// exists so that cleanup (and `dscan gc`) can stop it.
#[derive(Debug, Clone)]
pub struct DebugSlot {
    dir: PathBuf,
    file: String,
    handle: Arc<Mutex<Option<super::debug::DebugHandle>>>,
}

/// The prefix of the files in a run directory that record debug containers
/// (`debug-container` for a single scan, `debug-container.<pod>` for each
/// pod of a fleet's namespace).
pub const DEBUG_RECORD: &str = "debug-container";

impl DebugSlot {
    /// A slot recorded in the run directory `dir`, for a debug container in `pod`.
    pub fn new(dir: PathBuf, pod: Option<&str>) -> Self {
        DebugSlot {
            dir,
            file: pod.map_or_else(
                || DEBUG_RECORD.to_string(),
                |p| format!("{DEBUG_RECORD}.{p}"),
            ),
            handle: Arc::new(Mutex::new(None)),
        }
    }

    /// Records the debug container as soon as it is added (and its start
    /// deadline on disk, for `dscan gc`), so cleanup can stop it.
    pub fn register(&self, handle: &super::debug::DebugHandle) -> Result<(), ClusterError> {
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
        kubeconfig::private_dir(&self.dir)?;
        let mut text = format!("{}\npod={}\n", handle.name, handle.target.pod);
        if let Some(t) = handle.start_by {
            text.push_str(&format!("start-by={t}\n"));
        }
        std::fs::write(self.dir.join(&self.file), text).map_err(|source| ClusterError::Io {
            what: "record the debug container",
            path: self.dir.display().to_string(),
            source,
        })
    }

    /// Whether both are the same slot (clones share it).
    pub fn same(&self, other: &DebugSlot) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }

    /// The recorded debug container.
    pub fn handle(&self) -> Option<super::debug::DebugHandle> {
        self.handle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A `debug-container` record, as `gc` reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugRecord {
    /// The debug container's name.
    pub name: String,
    /// The pod it was added to (`None` in records written before fleets:
    /// the journal's pod).
    pub pod: Option<String>,
    /// Its start deadline (seconds since the epoch), when one was set.
    pub start_by: Option<u64>,
}

/// Reads a `debug-container` record: the name, the pod and the start deadline.
pub fn read_debug_record(text: &str) -> Option<DebugRecord> {
    let mut lines = text.lines();
    let name = lines.next()?.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let rest: Vec<&str> = lines.collect();
    let start_by = rest
        .iter()
        .filter_map(|l| l.strip_prefix("start-by="))
        .find_map(|v| v.trim().parse().ok());
    let pod = rest
        .iter()
        .find_map(|l| l.strip_prefix("pod="))
        .map(|p| p.trim().to_string());
    Some(DebugRecord {
        name,
        pod,
        start_by,
    })
}

/// What the scan phase gets: the identity, what preflight found, and where to
/// record the debug container.
#[derive(Debug)]
pub struct ScanContext {
    /// The temporary identity.
    pub identity: ScanIdentity,
    /// Preflight's findings.
    pub preflight: PreflightReport,
    /// Record the debug container here as soon as it is added.
    pub debug: DebugSlot,
    /// Where the node-debug fallback creates its objects (as the caller).
    pub node: super::node::NodeSlot,
    /// The run id (debug container names use it).
    pub run_id: String,
    /// The test hook's boundary (see [`hold`]).
    pub hold_at: Option<String>,
    /// Told of the scan phase's steps.
    pub progress: Option<Arc<dyn PhaseObserver>>,
}

impl ScanContext {
    /// Says what the scan phase is doing now (a log line at `-v`; on a
    /// terminal, beside the spinner).
    pub fn step(&self, what: &str) {
        tracing::info!("scan: {what}");
        if let Some(o) = &self.progress {
            o.step(what);
        }
    }

    /// The test hook inside the scan phase (see [`hold`]).
    pub async fn hold(&self, boundary: &str) {
        if self.hold_at.as_deref() == Some(boundary) {
            eprintln!("dscan: holding at {boundary} (test hook)");
            held().await;
        }
    }
}

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTiming {
    /// Phase name.
    pub phase: &'static str,
    /// Seconds.
    pub seconds: f64,
    /// Whether it succeeded.
    pub ok: bool,
}

impl PhaseTiming {
    /// One human-readable line: `ok   setup         0.12s`.
    pub fn line(&self) -> String {
        format!(
            "{} {:<10} {:>7.2}s",
            if self.ok { "ok  " } else { "FAIL" },
            self.phase,
            self.seconds
        )
    }
}

/// The machine-readable record of a run (`--output json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id (part of every object name).
    pub run_id: String,
    /// The target.
    pub target: Target,
    /// What preflight found.
    pub preflight: Option<PreflightReport>,
    /// What the distroless probe found.
    pub probe: Option<ShellProbe>,
    /// Objects created in the cluster.
    pub objects: Vec<ObjectRef>,
    /// ServiceAccount the scan ran as.
    pub identity: Option<String>,
    /// Token lifetime granted by the server, seconds.
    pub token_seconds: Option<i64>,
    /// Token expiry, as the server reported it.
    pub token_expires_at: Option<String>,
    /// The restricted kubeconfig the scan phase used (removed at cleanup).
    pub kubeconfig: Option<PathBuf>,
    /// Phase timings.
    pub phases: Vec<PhaseTiming>,
    /// Cleanup outcome (absent when nothing was created).
    pub cleanup: Option<CleanupReport>,
    /// The error, if the run failed.
    pub error: Option<String>,
}

impl RunRecord {
    /// The record of a run that has not started yet.
    pub fn new(run_id: &str, target: Target) -> RunRecord {
        RunRecord {
            run_id: run_id.to_string(),
            target,
            preflight: None,
            probe: None,
            objects: vec![],
            identity: None,
            token_seconds: None,
            token_expires_at: None,
            kubeconfig: None,
            phases: vec![],
            cleanup: None,
            error: None,
        }
    }
}

/// Test hook for crash-safety tests: with `DSCAN_TEST_HOLD_AT=<boundary>`, the
/// run prints `dscan: holding at <boundary>` on stderr and waits (up to 60 s)
/// so a harness can kill it there. Boundaries are named in the README.
pub async fn hold(options: &SessionOptions, boundary: &str) {
    // Test hook: `DSCAN_TEST_PANIC_AT=<boundary>` panics there, to show that
    // cleanup still runs.
    if std::env::var("DSCAN_TEST_PANIC_AT").as_deref() == Ok(boundary) {
        panic!("test hook: panic at {boundary}");
    }
    if options.hold_at.as_deref() == Some(boundary) {
        eprintln!("dscan: holding at {boundary} (test hook)");
        held().await;
    }
}

/// The wait of the hold test hook: 60 s, or until the file named by
/// `DSCAN_TEST_HOLD_RELEASE` exists.
async fn held() {
    let release = std::env::var_os("DSCAN_TEST_HOLD_RELEASE").map(PathBuf::from);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if release.as_ref().is_some_and(|p| p.exists()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Aborts the task when dropped (a dropped `JoinHandle` would detach it).
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Phase timer; with `live`, each phase is printed as it ends.
/// Times the phases and tells the observer.
struct Clock(Instant, Option<Arc<dyn PhaseObserver>>);

impl Clock {
    fn begin(&mut self, phase: &'static str) {
        self.0 = Instant::now();
        if let Some(o) = &self.1 {
            o.started(phase);
        }
    }

    fn lap(&mut self, record: &mut RunRecord, phase: &'static str, ok: bool) {
        let timing = PhaseTiming {
            phase,
            seconds: self.0.elapsed().as_secs_f64(),
            ok,
        };
        if let Some(o) = &self.1 {
            o.ended(&timing);
        }
        record.phases.push(timing);
        self.0 = Instant::now();
    }
}

/// Waits for SIGINT or SIGTERM and names it.
pub(crate) async fn signalled() -> crate::cluster::Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers, never fire (the default disposition applies).
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => crate::cluster::Signal::Interrupt,
        _ = term.recv() => crate::cluster::Signal::Terminate,
    }
}

/// Runs the whole session; `work` runs as the temporary identity.
pub async fn run<F, Fut, T>(
    conn: ClusterConnection,
    options: SessionOptions,
    work: F,
) -> (RunRecord, Result<T, ClusterError>)
where
    F: FnOnce(ScanContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    T: Send + 'static,
{
    let run_id = identity::new_run_id();
    let mut record = RunRecord::new(&run_id, options.target.clone());
    let mut clock = Clock(Instant::now(), options.progress.clone());
    // Signal handlers are installed before anything is created, so that from
    // here on SIGINT/SIGTERM lead to cleanup instead of killing the process.
    let signals = signalled();
    tokio::pin!(signals);

    clock.begin("preflight");
    let report = tokio::select! {
        r = preflight::run(&conn, &options.target, options.node_fallback.as_deref()) => r,
        sig = &mut signals => Err(ClusterError::Interrupted(sig)),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            clock.lap(&mut record, "preflight", false);
            record.error = Some(e.to_string());
            return (record, Err(e));
        }
    };
    clock.lap(&mut record, "preflight", true);
    let target = super::TargetRef {
        namespace: options.target.namespace.clone(),
        pod: options.target.pod.clone(),
        container: report.container.clone(),
        pod_uid: report.pod_uid.clone(),
    };
    let container = target.container.clone();
    let preflight_report = report.clone();
    record.preflight = Some(report);
    clock.begin("probe");
    let shell = tokio::select! {
        s = probe::probe(&conn.client, &options.target.namespace, &options.target.pod, &container) => s,
        sig = &mut signals => {
            clock.lap(&mut record, "probe", false);
            let e = ClusterError::Interrupted(sig);
            record.error = Some(e.to_string());
            return (record, Err(e));
        }
    };
    tracing::info!(
        "target {}/{} {container}: {}",
        options.target.namespace,
        options.target.pod,
        shell.describe()
    );
    let probe_blocks = matches!(
        shell,
        ShellProbe::ExecForbidden(_) | ShellProbe::NotRunning(_)
    );
    record.probe = Some(shell.clone());
    clock.lap(&mut record, "probe", !probe_blocks);
    if probe_blocks {
        let e = ClusterError::Target(format!("the distroless probe failed: {}", shell.describe()));
        record.error = Some(e.to_string());
        return (record, Err(e));
    }
    hold(&options, "after-preflight").await;

    let mut journal = Journal::new(
        &run_id,
        &conn.server,
        &options.target.namespace,
        &options.target.pod,
        &identity::now_rfc3339(),
    );
    let debug = DebugSlot::new(journal.dir(&options.state_dir), None);
    let slot = debug.clone();
    let node = super::node::NodeSlot::new(
        conn.client.clone(),
        journal.dir(&options.state_dir),
        None,
        super::node::NodeNaming {
            name_id: run_id.clone(),
            run_id: run_id.clone(),
            service_account: (format!("dscan-{run_id}"), options.target.namespace.clone()),
            created_by: options.created_by.clone(),
            token_seconds: identity::token_seconds(options.token_seconds),
        },
    );
    let node_slot = node.clone();
    let outcome = {
        let setup_and_work = async {
            clock.begin("setup");
            let pods = [target.pod.clone()];
            let identity = setup(
                &conn,
                &options,
                &run_id,
                &pods,
                &target,
                &mut journal,
                &mut record,
            )
            .await?;
            clock.lap(&mut record, "setup", true);
            hold(&options, "after-setup").await;
            clock.begin("scan");
            // The work runs in its own task so that a panic in it is caught
            // and cleanup still runs; on a signal this future is dropped and
            // the guard aborts the task, so the scan does not go on beside cleanup.
            let mut task = AbortOnDrop(tokio::spawn(work(ScanContext {
                identity,
                preflight: preflight_report,
                debug: slot,
                node: node_slot,
                run_id: run_id.clone(),
                hold_at: options.hold_at.clone(),
                progress: options.progress.clone(),
            })));
            let result = match (&mut task.0).await {
                Ok(r) => r,
                Err(e) if e.is_panic() => {
                    Err(ClusterError::Internal("the scan phase panicked".into()))
                }
                Err(e) => Err(ClusterError::Internal(e.to_string())),
            };
            clock.lap(&mut record, "scan", result.is_ok());
            result
        };
        // A panic in setup must not skip cleanup: it is caught here and
        // becomes an error (the scan phase runs in its own task, above).
        let setup_and_work =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(setup_and_work));
        tokio::select! {
            r = setup_and_work => r.unwrap_or_else(|_| {
                Err(ClusterError::Internal("setup panicked".into()))
            }),
            sig = &mut signals => Err(ClusterError::Interrupted(sig)),
        }
    };
    // A phase cut short by an error or a signal is recorded as failed.
    match record.phases.last().map(|p| p.phase) {
        Some("probe") => clock.lap(&mut record, "setup", false),
        Some("setup") => clock.lap(&mut record, "scan", false),
        _ => {}
    }
    hold(&options, "before-cleanup").await;
    clock.begin("cleanup");
    let mut cleanup = CleanupReport::default();
    if let Some(handle) = debug.handle() {
        let name = &handle.name;
        cleanup.debug_container = Some(name.clone());
        if options.keep_debug_container {
            cleanup.debug_container_kept = true;
        } else {
            // As the admin identity: the scan identity's grant may be gone.
            match handle.stop(&conn.client).await {
                Ok(super::debug::Stopped::NotStarted(why)) => {
                    let note = handle.not_started_note(&why);
                    tracing::warn!("{note}");
                    cleanup.debug_container_not_started = Some(note);
                }
                Ok(_) => cleanup.debug_container_stopped = true,
                Err(e) => tracing::warn!("could not stop the debug container {name}: {e}"),
            }
        }
    }
    // The node-debug fallback's pod and grants, if it ran.
    let (removed, remaining) = node.remove_all().await;
    cleanup.removed.extend(removed);
    cleanup.remaining.extend(remaining);
    let cleanup = cleanup_run(&conn, &options, &mut journal, cleanup).await;
    clock.lap(&mut record, "cleanup", cleanup.complete());
    record.cleanup = Some(cleanup);
    if let Err(e) = &outcome {
        record.error = Some(e.to_string());
    }
    (record, outcome)
}

/// Creates the run's identity in `options.target.namespace` (journaled), its
/// Role pinned to `pods`, its token and restricted kubeconfig, and waits
/// until the API server honours it. The identity is handed out for `target`.
pub(crate) async fn setup(
    conn: &ClusterConnection,
    options: &SessionOptions,
    run_id: &str,
    pods: &[String],
    target: &super::TargetRef,
    journal: &mut Journal,
    record: &mut RunRecord,
) -> Result<ScanIdentity, ClusterError> {
    let ns = &options.target.namespace;
    let objects = identity::planned_objects(ns, run_id);
    let created_at = identity::now_rfc3339();
    let seconds = identity::token_seconds(options.token_seconds);
    // The annotation promises an expiry before the token exists: the requested
    // lifetime from now (the server may only shorten it).
    let expires = identity::rfc3339_in(seconds + 60);
    journal.expires_at = Some(expires.clone());
    journal.save(&options.state_dir)?;
    for obj in &objects {
        journal.mark(obj, EntryState::Planned);
        journal.save(&options.state_dir)?;
        let meta = identity::metadata(obj, run_id, &created_at, &expires, &options.created_by);
        identity::create(&conn.client, obj, meta, pods).await?;
        journal.mark(obj, EntryState::Created);
        journal.save(&options.state_dir)?;
        record.objects.push(obj.clone());
        let boundary = match obj.kind {
            ObjectKind::ServiceAccount => "after-service-account",
            ObjectKind::Role => "after-role",
            ObjectKind::RoleBinding | ObjectKind::Pod => "after-role-binding",
        };
        hold(options, boundary).await;
    }
    let sa = &objects[0].name;
    let token = identity::request_token(&conn.client, ns, sa, seconds).await?;
    record.token_seconds = Some(token.seconds);
    record.token_expires_at = Some(token.expires_at.clone());
    hold(options, "after-token").await;
    let username = format!("system:serviceaccount:{ns}:{sa}");
    let dir = journal.dir(&options.state_dir);
    journal.kubeconfig = Some(dir.join("kubeconfig"));
    journal.save(&options.state_dir)?;
    let path = kubeconfig::write(&dir, conn, ns, sa, &token.token)?;
    record.kubeconfig = Some(path.clone());
    drop(token);
    hold(options, "after-kubeconfig").await;
    let client = kubeconfig::client_from(&path, conn.pacer.clone()).await?;
    // One name is enough: the Role's rules list every pod of the run alike.
    wait_authorized_for(
        &client,
        ns,
        &target.pod,
        crate::access::ROLE_GRANTS,
        options.authorization_wait,
    )
    .await?;
    record.identity = Some(username.clone());
    Ok(ScanIdentity {
        client,
        kubeconfig: path,
        username,
        target: target.clone(),
    })
}

/// Waits until the API server honours the new Role and RoleBinding for the
/// temporary identity. The RBAC authorizer reads informer caches, so a fresh
/// binding takes effect after a lag (per API server replica); the first calls
/// as the new identity could otherwise get 403. Asks, as that identity, by
/// SelfSubjectAccessReview for every grant of the Role, with backoff, until
/// two passes in a row allow all of them (a second replica may lag behind
/// the first).
pub async fn wait_authorized_for(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    granted: &[(&'static str, &'static [&'static str])],
    limit: Duration,
) -> Result<(), ClusterError> {
    let grants: Vec<preflight::Permission> = granted
        .iter()
        .flat_map(|(resource, verbs)| {
            let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
            verbs.iter().map(move |verb| preflight::Permission {
                verb,
                group: "",
                resource,
                subresource,
                name: pod.to_string(),
                why: "granted by the run's Role",
            })
        })
        .collect();
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut clean_passes = 0;
    let mut waiting_for = String::new();
    loop {
        let mut denied = None;
        for grant in &grants {
            if !preflight::can_i(client, namespace, grant).await? {
                denied = Some(grant.to_string());
                break;
            }
        }
        match denied {
            None => {
                clean_passes += 1;
                if clean_passes == 2 {
                    if !waiting_for.is_empty() {
                        tracing::info!(
                            "the new Role took effect after {:.1}s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(());
                }
                continue;
            }
            Some(grant) => {
                clean_passes = 0;
                tracing::debug!("the temporary identity cannot {grant} yet; waiting for RBAC");
                waiting_for = grant;
            }
        }
        if started.elapsed() + delay > limit {
            return Err(ClusterError::Timeout {
                action: format!(
                    "waiting for the API server to honour the new Role (the temporary identity still cannot {waiting_for}; \
                     RBAC caches normally catch up within seconds — check the API server's health)"
                ),
                after: limit,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Cleanup in the seed's order: kubeconfig, ServiceAccount (its tokens die
/// with it), Role, RoleBinding; then the journal goes if nothing remains.
pub async fn cleanup_run(
    conn: &ClusterConnection,
    options: &SessionOptions,
    journal: &mut Journal,
    mut report: CleanupReport,
) -> CleanupReport {
    let kubeconfig_removed = match &journal.kubeconfig {
        Some(path) => match kubeconfig::shred(path) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not remove the restricted kubeconfig: {e}");
                false
            }
        },
        None => true,
    };
    report.kubeconfig_removed = kubeconfig_removed;
    hold(options, "after-cleanup-kubeconfig").await;
    for obj in journal.outstanding() {
        match cleanup::remove(&conn.client, &obj).await {
            Ok(()) => {
                journal.mark(&obj, EntryState::Deleted);
                let _ = journal.save(&options.state_dir);
                report.removed.push(obj);
            }
            Err(e) => report.remaining.push((obj, e.to_string())),
        }
    }
    if report.complete() {
        let _ = std::fs::remove_dir_all(journal.dir(&options.state_dir));
    }
    report
}
