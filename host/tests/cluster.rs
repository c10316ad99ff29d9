//! Setup and cleanup against the simulator, through the `dscan` binary:
//! `dscan check` (preflight, probe, temporary identity, verified cleanup),
//! least privilege, token hygiene, a fault campaign over every API call setup
//! and cleanup make, kill -9 at every phase boundary followed by `dscan gc`,
//! and SIGINT/SIGTERM during setup.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use dscan_sim::{ApiError, KubeletMode, Level, Matcher, Sim};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use tokio::process::Command;

struct Harness {
    sim: Sim,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn record(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Harness {
    async fn new() -> Harness {
        let sim = Sim::start().await.unwrap();
        sim.create_namespace("apps", Level::Baseline).unwrap();
        Harness::new_with(sim).await
    }

    /// A simulator whose namespace `apps` exists; adds the distroless pod `web`.
    async fn new_with(sim: Sim) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig_yaml().unwrap()).unwrap();
        let h = Harness {
            sim,
            dir,
            kubeconfig,
        };
        h.pod("web", dscan_sim::images::DISTROLESS).await;
        h
    }

    /// Creates a one-container pod in `apps` and waits until it is ready.
    async fn pod(&self, name: &str, image: &str) {
        let pod = json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": image}]}});
        self.sim
            .run_pod("apps", pod, Duration::from_secs(10))
            .await
            .unwrap();
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--state-dir")
            .arg(self.state_dir())
            .env_remove("RUST_LOG")
            .env_remove("DSCAN_TEST_HOLD_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn dscan(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .expect("dscan finishes")
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn check(&self) -> Run {
        self.dscan(&["check", "-n", "apps", "-p", "web", "--output", "json"])
            .await
    }

    /// dscan-labelled objects left in the namespace.
    async fn leftovers(&self) -> Vec<String> {
        let client = self.sim.client().await.unwrap();
        let lp = ListParams::default().labels("app.kubernetes.io/managed-by=dscan");
        let mut out = vec![];
        for sa in Api::<ServiceAccount>::namespaced(client.clone(), "apps")
            .list(&lp)
            .await
            .unwrap()
        {
            out.push(format!("ServiceAccount {}", sa.metadata.name.unwrap()));
        }
        for r in Api::<Role>::namespaced(client.clone(), "apps")
            .list(&lp)
            .await
            .unwrap()
        {
            out.push(format!("Role {}", r.metadata.name.unwrap()));
        }
        for rb in Api::<RoleBinding>::namespaced(client, "apps")
            .list(&lp)
            .await
            .unwrap()
        {
            out.push(format!("RoleBinding {}", rb.metadata.name.unwrap()));
        }
        out
    }

    fn journals(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state_dir().join("runs"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// No token the server issued appears in any of the texts.
    fn assert_no_token(&self, texts: &[&str]) {
        for t in self.sim.issued_tokens() {
            for text in texts {
                assert!(!text.contains(&t), "a token leaked into output: {text}");
            }
        }
    }

    /// Starts `dscan check` held at a boundary; returns the child once it holds.
    async fn held(&self, boundary: &str) -> tokio::process::Child {
        let mut cmd = self.command(&["check", "-n", "apps", "-p", "web", "--output", "json"]);
        support::spawn_held(&mut cmd, boundary, 1, Duration::from_secs(60))
            .await
            .0
    }
}

#[tokio::test]
async fn check_runs_as_the_temporary_identity_and_leaves_nothing() {
    let h = Harness::new().await;
    h.sim.faults().clear_requests();
    let run = h
        .dscan(&[
            "check", "-n", "apps", "-p", "web", "--output", "json", "-vvv",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let record = run.record();
    assert_eq!(record["objects"].as_array().unwrap().len(), 3);
    assert_eq!(record["token_seconds"], 600);
    assert_eq!(record["cleanup"]["remaining"], json!([]));
    assert_eq!(record["cleanup"]["kubeconfig_removed"], true);
    let phases: Vec<&str> = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["preflight", "probe", "setup", "scan", "cleanup"]);
    if *h.sim.kubelet_mode() == KubeletMode::Namespaces {
        assert_eq!(record["probe"]["kind"], "no-shell", "{}", record["probe"]);
    }
    assert!(h.leftovers().await.is_empty(), "{:?}", h.leftovers().await);
    assert!(
        h.journals().is_empty(),
        "journal removed after a clean run: {:?}",
        h.journals()
    );
    assert!(!h.sim.issued_tokens().is_empty(), "the run issued a token");
    h.assert_no_token(&[&run.stdout, &run.stderr]);

    // Between setup and cleanup only the temporary identity talks to the API server.
    let identity = record["identity"].as_str().unwrap().to_string();
    let log = h.sim.faults().requests();
    let first_sa = log
        .iter()
        .position(|r| r.user == identity)
        .expect("the identity made calls");
    let last_sa = log.iter().rposition(|r| r.user == identity).unwrap();
    let admin_between: Vec<_> = log[first_sa..=last_sa]
        .iter()
        .filter(|r| r.user != identity)
        .collect();
    assert!(
        admin_between.is_empty(),
        "caller-identity calls during the scan phase: {admin_between:?}"
    );
    assert!(
        log[first_sa..=last_sa]
            .iter()
            .any(|r| r.verb == "watch" && r.code == 200),
        "watched as the identity"
    );
    let token_request = log
        .iter()
        .position(|r| r.resource == "serviceaccounts/token")
        .unwrap();
    assert!(token_request < first_sa);
    assert!(
        log[last_sa..]
            .iter()
            .any(|r| r.verb == "delete" && r.resource == "serviceaccounts"),
        "cleanup after the scan"
    );

    // Quiet: nothing printed on success, for `check` and for `gc`.
    let run = h
        .dscan(&["check", "-n", "apps", "-p", "web", "--output", "quiet"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let gc = h.dscan(&["gc", "--output", "quiet"]).await;
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert_eq!((gc.stdout.as_str(), gc.stderr.as_str()), ("", ""));
}

#[tokio::test]
async fn the_identity_is_least_privilege_and_its_kubeconfig_private() {
    let h = Harness::new().await;
    h.pod("db", dscan_sim::images::DISTROLESS).await;
    h.sim.create_namespace("other", Level::Privileged).unwrap();
    let mut child = h.held("after-setup").await;
    let run_dir = h.journals().pop().expect("a run directory");
    let kubeconfig = run_dir.join("kubeconfig");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&kubeconfig), 0o600);
    assert_eq!(mode(&run_dir), 0o700);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config["users"][0]["user"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["token"],
        "token only"
    );
    assert_eq!(config["contexts"][0]["context"]["namespace"], "apps");
    let token = config["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let sa = h.sim.client_for_token(&token).await.unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa.clone());
    // (verb, group, resource, subresource, namespace, name, allowed)
    let table = [
        ("get", "", "pods", "", "apps", "web", true),
        ("watch", "", "pods", "", "apps", "web", true),
        (
            "get",
            "",
            "pods",
            "ephemeralcontainers",
            "apps",
            "web",
            true,
        ),
        (
            "patch",
            "",
            "pods",
            "ephemeralcontainers",
            "apps",
            "web",
            true,
        ),
        ("create", "", "pods", "exec", "apps", "web", true),
        ("get", "", "pods", "exec", "apps", "web", true),
        ("get", "", "pods", "", "apps", "db", false),
        ("create", "", "pods", "exec", "apps", "db", false),
        (
            "patch",
            "",
            "pods",
            "ephemeralcontainers",
            "apps",
            "db",
            false,
        ),
        ("list", "", "pods", "", "apps", "", false),
        ("get", "", "pods", "", "other", "web", false),
        ("create", "", "pods", "", "apps", "", false),
        ("delete", "", "pods", "", "apps", "web", false),
        ("update", "", "pods", "", "apps", "web", false),
        ("get", "", "secrets", "", "apps", "", false),
        ("list", "", "secrets", "", "apps", "", false),
        (
            "create",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "apps",
            "",
            false,
        ),
        (
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "apps",
            "",
            false,
        ),
        (
            "delete",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "apps",
            "",
            false,
        ),
        ("create", "", "serviceaccounts", "token", "apps", "", false),
    ];
    for (verb, group, resource, sub, ns, name, allowed) in table {
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {"resourceAttributes": {
            "verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns, "name": name}}}))
        .unwrap();
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .unwrap()
            .status
            .unwrap();
        assert_eq!(
            answer.allowed, allowed,
            "{verb} {group}/{resource}/{sub} {ns}/{name}"
        );
    }
    // And directly: the pinned pod yes, another no.
    Api::<Pod>::namespaced(sa.clone(), "apps")
        .get("web")
        .await
        .unwrap();
    assert!(
        Api::<Pod>::namespaced(sa.clone(), "apps")
            .get("db")
            .await
            .is_err()
    );

    // SIGINT: cleanup runs in-process; the kubeconfig and every object are gone,
    // and the token no longer works.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!kubeconfig.exists());
    assert!(h.leftovers().await.is_empty(), "{:?}", h.leftovers().await);
    let err = Api::<Pod>::namespaced(sa, "apps")
        .get("web")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 401),
        "the token died with its ServiceAccount"
    );
}

#[tokio::test]
async fn token_lifetime_is_what_was_asked_or_the_server_clamp() {
    let h = Harness::new().await;
    let run = h
        .dscan(&[
            "check",
            "-n",
            "apps",
            "-p",
            "web",
            "--output",
            "json",
            "--token-ttl",
            "900",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.record()["token_seconds"], 900);
    let short = h
        .dscan(&["check", "-n", "apps", "-p", "web", "--token-ttl", "599"])
        .await;
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("600"), "{}", short.stderr);

    let sim = Sim::start_with(dscan_sim::SimConfig {
        max_token_seconds: Some(700),
        ..Default::default()
    })
    .await
    .unwrap();
    sim.create_namespace("apps", Level::Baseline).unwrap();
    let clamped = Harness::new_with(sim).await;
    let run = clamped
        .dscan(&[
            "check",
            "-n",
            "apps",
            "-p",
            "web",
            "--output",
            "json",
            "--token-ttl",
            "3600",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.record()["token_seconds"], 700);
}

#[tokio::test]
async fn preflight_lists_missing_permissions_and_creates_nothing() {
    let h = Harness::new().await;
    let alice = h.sim.add_user("alice", &["devs"]);
    let client = h.sim.client().await.unwrap();
    let rb: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "alice-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "alice"}]}))
    .unwrap();
    Api::<RoleBinding>::namespaced(client, "apps")
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
    let alice_config = h.dir.path().join("alice.kubeconfig");
    let config = h.sim.kubeconfig_for("alice", &alice, Some("apps"));
    std::fs::write(&alice_config, serde_json::to_string(&config).unwrap()).unwrap();
    h.sim.faults().clear_requests();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(["check", "-p", "web", "--kubeconfig"])
        .arg(&alice_config)
        .arg("--state-dir")
        .arg(h.state_dir())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("preflight failed; nothing was created"),
        "{stderr}"
    );
    assert!(
        stderr.contains("patch pods/ephemeralcontainers \"web\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("get pods/ephemeralcontainers \"web\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("create serviceaccounts "),
        "admin may create ServiceAccounts: {stderr}"
    );
    let writes: Vec<_> = h
        .sim
        .faults()
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(r.verb.as_str(), "create" | "delete" | "patch")
                && r.resource != "selfsubjectaccessreviews"
        })
        .collect();
    assert!(writes.is_empty(), "preflight wrote: {writes:?}");
    assert!(h.leftovers().await.is_empty());
}

/// A server that turns requests away and says "later" (a 429 from Priority
/// and Fairness, a read's `ServerTimeout` with `Retry-After`) is asked again
/// once the hold is over and the run succeeds; a write that met a 5xx is not
/// sent twice (it may have happened) and the run stops cleanly, naming it.
#[tokio::test]
async fn requests_the_server_turned_away_are_sent_again_and_writes_are_not_repeated() {
    let h = Harness::new().await;
    let faults = h.sim.faults();
    faults.clear_requests();
    faults.fail_nth(
        Matcher::call("create", "serviceaccounts"),
        1,
        ApiError::too_many_requests(1),
    );
    faults.fail_nth(
        Matcher::call("create", "serviceaccounts/token"),
        1,
        ApiError::too_many_requests(0),
    );
    faults.fail_nth(
        Matcher::call("get", "pods"),
        1,
        ApiError::server_timeout("get", "pods", 0),
    );
    let started = std::time::Instant::now();
    let run = h.check().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the resend waited for Retry-After"
    );
    let seen = |verb: &str, resource: &str, code: u16| {
        faults
            .requests()
            .iter()
            .filter(|r| r.verb == verb && r.resource == resource && r.code == code)
            .count()
    };
    for (verb, resource, ok) in [
        ("create", "serviceaccounts", 201),
        ("create", "serviceaccounts/token", 201),
        ("get", "pods", 200),
    ] {
        let refused = if verb == "get" { 500 } else { 429 };
        assert_eq!(seen(verb, resource, refused), 1, "{verb} {resource}");
        assert!(
            seen(verb, resource, ok) >= 1,
            "{verb} {resource} was sent again"
        );
    }
    assert!(h.leftovers().await.is_empty(), "{:?}", h.leftovers().await);

    // A create that met a ServerTimeout is not repeated, though the server said later.
    faults.clear_requests();
    faults.fail_next(
        Matcher::call("create", "roles"),
        ApiError::server_timeout("create", "roles.rbac.authorization.k8s.io", 0),
    );
    let run = h.check().await;
    faults.clear();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not be completed at this time"),
        "{}",
        run.stderr
    );
    assert_eq!(seen("create", "roles", 500), 1);
    assert_eq!(seen("create", "roles", 201), 0, "a write was sent twice");
    assert!(h.leftovers().await.is_empty(), "{:?}", h.leftovers().await);
    assert!(h.journals().is_empty());
}

/// Every call setup and cleanup make, failed: the run ends with nothing left
/// (after `dscan gc` where cleanup itself could not finish), the right exit
/// code, and a message naming the failed step.
#[tokio::test]
async fn fault_campaign_leaves_nothing_behind() {
    let h = Harness::new().await;
    let boom = || ApiError::internal("etcdserver: request timed out");
    let setup_calls = [
        ("create", "serviceaccounts"),
        ("create", "roles"),
        ("create", "rolebindings"),
        ("create", "serviceaccounts/token"),
        ("create", "selfsubjectaccessreviews"),
        ("get", "pods"),
        ("watch", "pods"),
        ("get", "pods/ephemeralcontainers"),
    ];
    for (verb, resource) in setup_calls {
        h.sim
            .faults()
            .fail_always(Matcher::call(verb, resource), boom());
        let run = h.check().await;
        h.sim.faults().clear();
        assert_eq!(run.code, 3, "{verb} {resource}: {}", run.stderr);
        assert!(
            run.stderr.contains("etcdserver: request timed out"),
            "{verb} {resource}: {}",
            run.stderr
        );
        assert!(
            h.leftovers().await.is_empty(),
            "{verb} {resource}: {:?}",
            h.leftovers().await
        );
        assert!(
            h.journals().is_empty(),
            "{verb} {resource}: journal left: {:?}",
            h.journals()
        );
        h.assert_no_token(&[&run.stdout, &run.stderr]);
    }

    // The two calls whose failure does not stop a run: the namespace read
    // (its PSA level is then unknown) and the distroless probe's exec (the
    // probe is then inconclusive). The run goes on, succeeds, leaves nothing.
    h.sim
        .faults()
        .fail_always(Matcher::call("get", "namespaces"), boom());
    let run = h.check().await;
    h.sim.faults().clear();
    assert_eq!(run.code, 0, "get namespaces: {}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["preflight"]["pod_security"], serde_json::Value::Null);
    assert!(h.leftovers().await.is_empty());
    let admin_exec = Matcher {
        user: Some("kubernetes-admin".into()),
        ..Matcher::call("get", "pods/exec")
    };
    h.sim.faults().fail_always(admin_exec, boom());
    let run = h.check().await;
    h.sim.faults().clear();
    assert_eq!(run.code, 0, "probe exec: {}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        record["probe"]
            .to_string()
            .contains("etcdserver: request timed out"),
        "the probe reports why it is inconclusive: {}",
        record["probe"]
    );
    assert!(h.leftovers().await.is_empty());
    assert!(h.journals().is_empty());

    // A transient cleanup failure is retried; the run succeeds.
    for resource in ["serviceaccounts", "roles", "rolebindings"] {
        h.sim
            .faults()
            .fail_nth(Matcher::call("delete", resource), 1, boom());
        let run = h.check().await;
        h.sim.faults().clear();
        assert_eq!(run.code, 0, "transient delete {resource}: {}", run.stderr);
        assert!(h.leftovers().await.is_empty());
    }
    // A lasting cleanup failure (the delete, or the read-back that verifies
    // it): exit 5, the journal stays, `dscan gc` finishes the job.
    for (verb, resource) in [
        ("delete", "serviceaccounts"),
        ("delete", "roles"),
        ("delete", "rolebindings"),
        ("get", "serviceaccounts"),
        ("get", "roles"),
        ("get", "rolebindings"),
    ] {
        h.sim
            .faults()
            .fail_always(Matcher::call(verb, resource), boom());
        let run = h.check().await;
        h.sim.faults().clear();
        assert_eq!(run.code, 5, "lasting {verb} {resource}: {}", run.stderr);
        assert!(
            run.stderr.contains("cleanup is incomplete") && run.stderr.contains("dscan gc"),
            "{}",
            run.stderr
        );
        assert_eq!(h.journals().len(), 1, "the journal stays for gc");
        let gc = h.dscan(&["gc"]).await;
        assert_eq!(gc.code, 0, "{}", gc.stdout);
        assert!(gc.stdout.contains("removed"), "{}", gc.stdout);
        assert!(h.leftovers().await.is_empty(), "{:?}", h.leftovers().await);
        assert!(h.journals().is_empty());
    }
    // Version and discovery failing: preflight stops before anything exists.
    h.sim.faults().fail_always(Matcher::call("get", ""), boom());
    let run = h.check().await;
    h.sim.faults().clear();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("read the server version failed"),
        "{}",
        run.stderr
    );
    // Latency on every call: slower, still clean.
    h.sim
        .faults()
        .latency(Matcher::any(), Duration::from_millis(50));
    let run = h.check().await;
    h.sim.faults().clear();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Dropped watch connections: the scan phase fails clearly; cleanup still runs.
    h.sim.faults().drop_watches_after(Some(0));
    let run = h.check().await;
    h.sim.faults().clear();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("watching the target"), "{}", run.stderr);
    assert!(h.leftovers().await.is_empty());
    h.assert_no_token(&[&run.stdout, &run.stderr]);
}

const BOUNDARIES: [&str; 9] = [
    "after-preflight",
    "after-service-account",
    "after-role",
    "after-role-binding",
    "after-token",
    "after-kubeconfig",
    "after-setup",
    "before-cleanup",
    "after-cleanup-kubeconfig",
];

#[tokio::test]
async fn kill_9_at_every_phase_boundary_then_gc_leaves_nothing() {
    let h = Harness::new().await;
    for boundary in BOUNDARIES {
        let mut child = h.held(boundary).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let gc = h.dscan(&["gc"]).await;
        assert_eq!(gc.code, 0, "{boundary}: {}\n{}", gc.stdout, gc.stderr);
        assert!(
            h.leftovers().await.is_empty(),
            "{boundary}: {:?}",
            h.leftovers().await
        );
        assert!(h.journals().is_empty(), "{boundary}: {:?}", h.journals());
        h.assert_no_token(&[&gc.stdout, &gc.stderr]);
    }
    // A dry run reports and removes nothing.
    let mut child = h.held("after-role-binding").await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let dry = h.dscan(&["gc", "--dry-run"]).await;
    assert!(dry.stdout.contains("would remove"), "{}", dry.stdout);
    assert_eq!(h.leftovers().await.len(), 3);
    assert_eq!(h.dscan(&["gc"]).await.code, 0);
    assert!(h.leftovers().await.is_empty());
}

#[tokio::test]
async fn sigint_and_sigterm_during_setup_clean_up_in_process() {
    let h = Harness::new().await;
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let mut child = h.held("after-role").await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
            signal,
        )
        .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{signal:?}");
        assert!(
            h.leftovers().await.is_empty(),
            "{signal:?}: {:?}",
            h.leftovers().await
        );
        assert!(h.journals().is_empty(), "{signal:?}: {:?}", h.journals());
    }
}

#[tokio::test]
async fn gc_leaves_live_runs_alone() {
    let h = Harness::new().await;
    let mut child = h.held("after-setup").await;
    let gc = h.dscan(&["gc", "-n", "apps"]).await;
    assert_eq!(gc.code, 0, "{}", gc.stdout);
    assert!(gc.stdout.contains("still in progress"), "{}", gc.stdout);
    assert_eq!(h.leftovers().await.len(), 3, "a live run keeps its objects");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert_eq!(h.dscan(&["gc"]).await.code, 0);
    assert!(h.leftovers().await.is_empty());
}

#[tokio::test]
async fn no_token_in_trace_logs_or_errors() {
    let h = Harness::new().await;
    let mut cmd = h.command(&["check", "-n", "apps", "-p", "web", "-vvv"]);
    cmd.env("RUST_LOG", "trace");
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(stderr.lines().count() > 50, "trace logging is on");
    assert!(!h.sim.issued_tokens().is_empty());
    h.assert_no_token(&[&stderr, &String::from_utf8_lossy(&out.stdout)]);
}

#[tokio::test]
async fn a_target_with_a_shell_is_recognised_and_contexts_are_honoured() {
    let h = Harness::new().await;
    h.pod("sh", dscan_sim::images::SHELL_APP).await;
    let run = h
        .dscan(&["check", "-n", "apps", "-p", "sh", "--output", "json"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    if *h.sim.kubelet_mode() == KubeletMode::Namespaces {
        assert_eq!(
            run.record()["probe"],
            json!({"kind": "shell-present", "detail": "sh"})
        );
    }

    // A kubeconfig whose current context is unreachable: --context picks the good one.
    let mut config = serde_json::to_value(h.sim.kubeconfig()).unwrap();
    config["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}));
    config["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dead", "context": {"cluster": "dead", "user": "kubernetes-admin"}}));
    config["current-context"] = json!("dead");
    let path = h.dir.path().join("two.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    let base = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
        cmd.args(["check", "-n", "apps", "-p", "web", "--kubeconfig"])
            .arg(&path)
            .arg("--state-dir")
            .arg(h.state_dir())
            .args(extra);
        cmd
    };
    let dead = base(&[]).output().await.unwrap();
    assert_eq!(
        dead.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&dead.stderr)
    );
    let good = base(&["--context", "dscan-sim"]).output().await.unwrap();
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    // KUBECONFIG is honoured when --kubeconfig is absent.
    let env = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args([
            "check",
            "-n",
            "apps",
            "-p",
            "web",
            "--context",
            "dscan-sim",
            "--state-dir",
        ])
        .arg(h.state_dir())
        .env("KUBECONFIG", &path)
        .output()
        .await
        .unwrap();
    assert_eq!(
        env.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
    assert!(h.leftovers().await.is_empty());
}

#[tokio::test]
async fn a_new_role_that_takes_effect_late_is_waited_for() {
    // The real RBAC authorizer reads informer caches: a new RoleBinding is
    // honoured after a lag. Here the identity's first 6 binding-based
    // decisions are denied (403 for requests, allowed: false for reviews).
    let h = Harness::new().await;
    h.sim.faults().rbac_lag(6);
    let run = h.check().await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let record = run.record();
    assert_eq!(record["cleanup"]["remaining"], json!([]));
    assert!(h.leftovers().await.is_empty());
    // The identity's first calls after setup were the access reviews, not a
    // request that got 403.
    let forbidden: Vec<_> = h
        .sim
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.user.starts_with("system:serviceaccount:") && r.code == 403)
        .collect();
    assert!(forbidden.is_empty(), "{forbidden:?}");

    // A lag that never ends is reported as such, and cleanup still runs.
    h.sim.faults().rbac_lag(u32::MAX);
    let run = h
        .dscan(&[
            "check",
            "-n",
            "apps",
            "-p",
            "web",
            "--output",
            "json",
            "--rbac-wait",
            "3",
        ])
        .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("waiting for the API server to honour the new Role"),
        "{}",
        run.stderr
    );
    assert!(h.leftovers().await.is_empty());
}

#[tokio::test]
async fn check_names_what_it_created_and_removed() {
    let h = Harness::new().await;
    let run = h
        .dscan(&["check", "-n", "apps", "-p", "web", "--output", "human"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {}", run.stderr))
            .to_string()
    };
    let sa = find("created ServiceAccount apps/dscan-");
    let name = sa
        .trim_start_matches("created ServiceAccount apps/")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(
        find("created Role apps/").contains("only on pod \"web\" (resourceNames)"),
        "{}",
        run.stderr
    );
    assert!(find("created RoleBinding apps/").contains(&format!("to ServiceAccount apps/{name}")));
    assert!(find("token: ").starts_with("token: 600 s, expires "));
    assert!(find("kubeconfig: ").contains("(0600, overwritten and removed at cleanup)"));
    assert_eq!(
        find("cleanup: "),
        format!(
            "cleanup: removed and verified gone: ServiceAccount apps/{name}, Role apps/{name}, RoleBinding apps/{name}"
        )
    );
    h.assert_no_token(&[&run.stdout, &run.stderr]);
}

#[tokio::test]
async fn gc_does_not_trust_what_a_journal_names() {
    let h = Harness::new().await;
    let admin = h.sim.client().await.unwrap();
    let roles: Api<Role> = Api::namespaced(admin.clone(), "apps");
    for name in ["victim", "dscan-bbbbbbbbbb"] {
        let role: Role =
            serde_json::from_value(json!({"metadata": {"name": name}, "rules": []})).unwrap();
        roles.create(&PostParams::default(), &role).await.unwrap();
    }
    let victim = h.dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let journal = |run: &str, kubeconfig: Option<&std::path::Path>, object: &str| {
        let dir = h.state_dir().join("runs").join(run);
        std::fs::create_dir_all(&dir).unwrap();
        let j = json!({"version": 1, "run_id": run, "pid": 4_000_000, "pid_start": 1,
            "server": h.sim.url(), "namespace": "apps", "pod": "web",
            "started_at": "2026-01-01T00:00:00Z", "expires_at": null,
            "entries": [{"object": {"kind": "Role", "namespace": "apps", "name": object}, "state": "created"}],
            "kubeconfig": kubeconfig});
        std::fs::write(dir.join("journal.json"), j.to_string()).unwrap();
    };
    // A journal naming a file outside its run directory as its kubeconfig,
    // and an object that is not its run's.
    journal("aaaaaaaaaa", Some(&victim), "victim");
    // A consistent journal whose object exists but is not labelled as dscan's.
    journal("bbbbbbbbbb", None, "dscan-bbbbbbbbbb");
    let gc = h.dscan(&["gc"]).await;
    assert_ne!(gc.code, 0, "{}\n{}", gc.stdout, gc.stderr);
    let text = format!("{}{}", gc.stdout, gc.stderr);
    assert!(text.contains("not the run directory's"), "{text}");
    assert!(
        text.contains("Role apps/dscan-bbbbbbbbbb is not labelled as dscan run bbbbbbbbbb's"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    for name in ["victim", "dscan-bbbbbbbbbb"] {
        assert!(
            roles.get_opt(name).await.unwrap().is_some(),
            "{name} was deleted"
        );
    }
}

#[tokio::test]
async fn a_panic_during_setup_still_cleans_up() {
    let h = Harness::new().await;
    for boundary in ["after-service-account", "after-role", "after-token"] {
        let mut cmd = h.command(&["check", "-n", "apps", "-p", "web", "--output", "json"]);
        cmd.env("DSCAN_TEST_PANIC_AT", boundary);
        let out = cmd.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{boundary}: {stderr}");
        assert!(stderr.contains("setup panicked"), "{boundary}: {stderr}");
        assert!(
            h.leftovers().await.is_empty(),
            "{boundary}: {:?}",
            h.leftovers().await
        );
        assert!(h.journals().is_empty(), "{boundary}: {:?}", h.journals());
    }
}
