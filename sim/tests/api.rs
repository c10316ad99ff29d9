//! The API server through the real `kube` client: discovery, pods and
//! watches, ephemeral-container validation, PSA, tokens, RBAC, faults.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod support;

use std::time::Duration;

use dscan_sim::{ApiError, Level, Matcher, Sim};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::*;

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API status, got {other:?}"),
    }
}

fn debug_container(name: &str) -> Value {
    json!({"name": name, "image": dscan_sim::images::BUSYBOX, "targetContainerName": "app",
        "command": ["sleep", "300"], "securityContext": {"capabilities": {"add": ["SYS_CHROOT"]}}})
}

async fn add_debug(
    client: &Client,
    ns: &str,
    pod: &str,
    containers: Value,
) -> Result<Pod, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.patch_ephemeral_containers(
        pod,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": containers}})),
    )
    .await
}

#[tokio::test]
async fn version_and_discovery_follow_the_feature_switch() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "35")
    );
    let core = client.list_core_api_resources("v1").await.unwrap();
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "pods/ephemeralcontainers")
    );
    assert!(core.resources.iter().any(|r| r.name == "pods/exec"));
    let groups = client.list_api_groups().await.unwrap();
    assert!(
        groups
            .groups
            .iter()
            .any(|g| g.name == "rbac.authorization.k8s.io")
    );
    let rbac = client
        .list_api_group_resources("rbac.authorization.k8s.io/v1")
        .await
        .unwrap();
    assert!(rbac.resources.iter().any(|r| r.name == "roles"));

    sim.faults().set_ephemeral_containers(false);
    let core = client.list_core_api_resources("v1").await.unwrap();
    assert!(
        !core
            .resources
            .iter()
            .any(|r| r.name == "pods/ephemeralcontainers")
    );
    create_pod(
        &client,
        "default",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    let err = api_err(
        add_debug(&client, "default", "web", json!([debug_container("dbg")]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.reason, "NotFound");
    assert_eq!(
        err.message,
        "the server could not find the requested resource"
    );
    assert!(
        err.details.as_ref().is_none_or(|d| d.name.is_empty()),
        "feature-off 404 has no details.name: {:?}",
        err.details
    );
    // A missing pod, by contrast, names it.
    sim.faults().set_ephemeral_containers(true);
    let err = api_err(
        add_debug(&client, "default", "nope", json!([debug_container("dbg")]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.details.unwrap().name, "nope");
}

#[tokio::test]
async fn pods_list_get_and_field_selectors() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    for name in ["a", "b"] {
        create_pod(
            &client,
            "default",
            distroless_pod(name, dscan_sim::images::DISTROLESS),
        )
        .await;
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
    let one = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].metadata.name.as_deref(), Some("b"));
    let pod = api.get("a").await.unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(
        spec.restart_policy.as_deref(),
        Some("Always"),
        "defaults applied"
    );
    assert_eq!(
        spec.containers[0].termination_message_policy.as_deref(),
        Some("File")
    );
    let err = api_err(api.get("zzz").await.unwrap_err());
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "pods \"zzz\" not found")
    );
    let err = api_err(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(distroless_pod("a", "x")).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = api_err(
        api.list(&ListParams::default().fields("spec.nodeName=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn watch_streams_changes_resumes_and_expires() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    create_pod(
        &client,
        "default",
        distroless_pod("w", dscan_sim::images::DISTROLESS),
    )
    .await;
    let running = wait_running(&client, "default", "w", "app").await;
    let rv = running.metadata.resource_version.clone().unwrap();

    // From "0": the current state first, then changes, filtered by name.
    create_pod(
        &client,
        "default",
        distroless_pod("other", dscan_sim::images::DISTROLESS),
    )
    .await;
    let mut stream = api
        .watch(
            &WatchParams::default().fields("metadata.name=w").timeout(5),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(p)) => assert_eq!(p.metadata.name.as_deref(), Some("w")),
        other => panic!("expected ADDED w, got {other:?}"),
    }
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(WatchEvent::Modified(p))
                if p.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("x")) =>
            {
                break;
            }
            Some(WatchEvent::Modified(p)) | Some(WatchEvent::Added(p)) => {
                assert_eq!(p.metadata.name.as_deref(), Some("w"))
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    // Resume from a version: only later changes.
    let mut resumed = api
        .watch(
            &WatchParams::default().fields("metadata.name=w").timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), resumed.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Modified(p)) => assert!(p.metadata.labels.unwrap().contains_key("x")),
        other => panic!("expected the label change, got {other:?}"),
    }

    // Bookmarks carry the current version.
    let mut marked = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=nothing")
                .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), marked.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Bookmark(b)) => assert!(
            b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
        ),
        other => panic!("expected a bookmark, got {other:?}"),
    }

    // After compaction the old version is gone: 410 Expired in the stream.
    sim.compact();
    let mut expired = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match expired.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // The server ends a watch at its timeout.
    let started = std::time::Instant::now();
    let mut short = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=nothing")
                .timeout(1)
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), short.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn ephemeral_container_validation_returns_kubernetes_causes() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    create_pod(
        &client,
        "default",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    let forbidden = [
        ("ports", json!([{"containerPort": 80}])),
        ("livenessProbe", json!({"exec": {"command": ["true"]}})),
        ("readinessProbe", json!({"exec": {"command": ["true"]}})),
        ("startupProbe", json!({"exec": {"command": ["true"]}})),
        (
            "lifecycle",
            json!({"preStop": {"exec": {"command": ["true"]}}}),
        ),
        ("resources", json!({"limits": {"cpu": "1"}})),
    ];
    for (field, value) in forbidden {
        let mut c = debug_container("dbg");
        c[field] = value;
        let err = api_err(
            add_debug(&client, "default", "web", json!([c]))
                .await
                .unwrap_err(),
        );
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{field}");
        assert_eq!(
            err.message,
            format!(
                "Pod \"web\" is invalid: spec.ephemeralContainers[0].{field}: Forbidden: cannot be set for an Ephemeral Container"
            )
        );
        let cause = &err.details.unwrap().causes[0];
        assert_eq!(
            (cause.reason.as_str(), cause.field.as_str()),
            (
                "FieldValueForbidden",
                format!("spec.ephemeralContainers[0].{field}").as_str()
            )
        );
    }
    let mut sub_path = debug_container("dbg");
    sub_path["volumeMounts"] = json!([{"name": "v", "mountPath": "/x", "subPath": "y"}]);
    let err = api_err(
        add_debug(&client, "default", "web", json!([sub_path]))
            .await
            .unwrap_err(),
    );
    assert!(
        err.details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "spec.ephemeralContainers[0].volumeMounts[0].subPath")
    );

    let err = api_err(
        add_debug(&client, "default", "web", json!([debug_container("app")]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Pod \"web\" is invalid: spec.ephemeralContainers[0].name: Duplicate value: \"app\""
    );
    let mut bad_target = debug_container("dbg");
    bad_target["targetContainerName"] = json!("nope");
    let err = api_err(
        add_debug(&client, "default", "web", json!([bad_target]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.details.unwrap().causes[0].reason, "FieldValueNotFound");

    // Added once; then neither changed nor removed (PUT), and a second one appends.
    let pod = add_debug(&client, "default", "web", json!([debug_container("dbg")]))
        .await
        .unwrap();
    let ec = &pod
        .spec
        .as_ref()
        .unwrap()
        .ephemeral_containers
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        ec.termination_message_policy.as_deref(),
        Some("File"),
        "defaults applied"
    );
    let mut changed = debug_container("dbg");
    changed["image"] = json!("other:1");
    let err = api_err(
        add_debug(&client, "default", "web", json!([changed]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("existing ephemeral containers \"dbg\" may not be changed"),
        "{}",
        err.message
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut removed = api.get_ephemeral_containers("web").await.unwrap();
    removed.spec.as_mut().unwrap().ephemeral_containers = Some(vec![]);
    // The kubelet is starting "dbg" and writes the pod status meanwhile, so a
    // read-modify-write with the old resourceVersion can lose with a 409.
    // Pods allow unconditional updates; that is what this checks.
    removed.metadata.resource_version = None;
    let err = api_err(
        api.replace_ephemeral_containers("web", &PostParams::default(), &removed)
            .await
            .unwrap_err(),
    );
    assert!(
        err.message
            .contains("existing ephemeral containers \"dbg\" may not be removed"),
        "{}",
        err.message
    );
    let patch = json!({"spec": {"$setElementOrder/ephemeralContainers": [{"name": "dbg"}, {"name": "dbg2"}],
        "ephemeralContainers": [debug_container("dbg2")]}});
    let pod = api
        .patch_ephemeral_containers("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let names: Vec<String> = pod
        .spec
        .unwrap()
        .ephemeral_containers
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["dbg", "dbg2"]);
}

#[tokio::test]
async fn pod_security_admission_by_namespace_level() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    sim.create_namespace("base", Level::Baseline).unwrap();
    sim.create_namespace("strict", Level::Restricted).unwrap();
    create_pod(
        &client,
        "base",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    let mut privileged = debug_container("priv");
    privileged["securityContext"] = json!({"privileged": true});
    let err = api_err(
        add_debug(&client, "base", "web", json!([privileged]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "pods \"web\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"priv\" must not set securityContext.privileged=true)"
    );
    add_debug(&client, "base", "web", json!([debug_container("chroot")]))
        .await
        .expect("SYS_CHROOT is allowed in baseline");

    let compliant = json!({"metadata": {"name": "web"}, "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    create_pod(&client, "strict", compliant).await;
    let mut root = debug_container("root");
    root["securityContext"] = json!({"runAsUser": 0, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let err = api_err(
        add_debug(&client, "strict", "web", json!([root]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .contains("violates PodSecurity \"restricted:latest\""),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("runAsUser=0 (container \"root\" must not set runAsUser=0)"),
        "{}",
        err.message
    );
    // Pod create is checked too.
    let api: Api<Pod> = Api::namespaced(client.clone(), "strict");
    let err = api_err(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(distroless_pod("bad", "x")).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403);
}

async fn service_account(client: &Client, ns: &str, name: &str) -> ServiceAccount {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap()
}

async fn token(
    client: &Client,
    ns: &str,
    sa: &str,
    seconds: i64,
    pod: Option<&str>,
) -> Result<TokenRequest, kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let mut spec = json!({"audiences": [], "expirationSeconds": seconds});
    if let Some(p) = pod {
        spec["boundObjectRef"] = json!({"kind": "Pod", "apiVersion": "v1", "name": p});
    }
    let req: TokenRequest = serde_json::from_value(json!({"spec": spec})).unwrap();
    api.create_token_request(sa, &PostParams::default(), &req)
        .await
}

#[tokio::test]
async fn tokens_have_a_minimum_expire_and_die_with_their_service_account() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    service_account(&admin, "default", "scanner").await;
    let err = api_err(
        token(&admin, "default", "scanner", 599, None)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "TokenRequest.authentication.k8s.io \"scanner\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let issued = token(&admin, "default", "scanner", 600, None)
        .await
        .unwrap();
    let status = issued.status.unwrap();
    let expires = status.expiration_timestamp.0;
    let lifetime = expires
        .duration_since(k8s_openapi::jiff::Timestamp::now())
        .as_secs();
    assert!((595..=601).contains(&lifetime), "lifetime {lifetime}");
    let sa_client = sim.client_for_token(&status.token).await.unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa_client.clone());
    let ssar: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}})).unwrap();
    reviews
        .create(&PostParams::default(), &ssar)
        .await
        .expect("a fresh token works");

    // Expiry: advance the clock past it.
    sim.clock().advance(Duration::from_secs(601));
    let err = api_err(
        reviews
            .create(&PostParams::default(), &ssar)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));

    // Deleting the ServiceAccount invalidates its tokens.
    let issued = token(&admin, "default", "scanner", 3600, None)
        .await
        .unwrap();
    let sa_client = sim
        .client_for_token(&issued.status.unwrap().token)
        .await
        .unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa_client);
    reviews.create(&PostParams::default(), &ssar).await.unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .delete("scanner", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        api_err(
            reviews
                .create(&PostParams::default(), &ssar)
                .await
                .unwrap_err()
        )
        .code,
        401
    );

    // Clamped by the server's maximum; bound to a pod, dies with the pod.
    let sim = Sim::start_with(dscan_sim::SimConfig {
        max_token_seconds: Some(1200),
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = sim.client().await.unwrap();
    service_account(&admin, "default", "scanner").await;
    create_pod(
        &admin,
        "default",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    // The API server binds a token to a pod only for the pod's own account.
    let err = api_err(
        token(&admin, "default", "scanner", 7200, Some("web"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        err.message,
        "cannot bind token for serviceaccount \"scanner\" to pod running with different serviceaccount name."
    );
    let mut own = distroless_pod("runs-as-scanner", dscan_sim::images::DISTROLESS);
    own["spec"]["serviceAccountName"] = json!("scanner");
    create_pod(&admin, "default", own).await;
    let issued = token(&admin, "default", "scanner", 7200, Some("runs-as-scanner"))
        .await
        .unwrap();
    assert_eq!(issued.spec.expiration_seconds, Some(1200));
    let sa_client = sim
        .client_for_token(&issued.status.unwrap().token)
        .await
        .unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa_client);
    reviews.create(&PostParams::default(), &ssar).await.unwrap();
    Api::<Pod>::namespaced(admin.clone(), "default")
        .delete("runs-as-scanner", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(
        api_err(
            reviews
                .create(&PostParams::default(), &ssar)
                .await
                .unwrap_err()
        )
        .code,
        401
    );
}

/// The pinned Role the scan identity gets (DESIGN §5).
fn pinned_role(pod: &str) -> Value {
    json!({"metadata": {"name": "scan"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": [pod], "verbs": ["get", "watch"]},
        {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "resourceNames": [pod], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["pods/exec"], "resourceNames": [pod], "verbs": ["create", "get"]},
    ]})
}

async fn scan_identity(sim: &Sim, admin: &Client, role: Value) -> Client {
    service_account(admin, "default", "scanner").await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), "default");
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(role).unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "default");
    let rb = json!({"metadata": {"name": "scan"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scan"},
        "subjects": [{"kind": "ServiceAccount", "name": "scanner", "namespace": "default"}]});
    bindings
        .create(&PostParams::default(), &serde_json::from_value(rb).unwrap())
        .await
        .unwrap();
    let t = token(admin, "default", "scanner", 600, None)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    sim.client_for_token(&t).await.unwrap()
}

#[tokio::test]
async fn rbac_table_direct_calls_and_access_reviews_agree() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    sim.create_namespace("other", Level::Privileged).unwrap();
    create_pod(
        &admin,
        "default",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    create_pod(
        &admin,
        "default",
        distroless_pod("db", dscan_sim::images::DISTROLESS),
    )
    .await;
    create_pod(
        &admin,
        "other",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    let sa = scan_identity(&sim, &admin, pinned_role("web")).await;

    // (verb, resource, subresource, namespace, name, allowed)
    let table = [
        ("get", "pods", "", "default", "web", true),
        ("watch", "pods", "", "default", "web", true),
        (
            "patch",
            "pods",
            "ephemeralcontainers",
            "default",
            "web",
            true,
        ),
        ("get", "pods", "ephemeralcontainers", "default", "web", true),
        ("create", "pods", "exec", "default", "web", true),
        ("get", "pods", "exec", "default", "web", true),
        ("get", "pods", "", "default", "db", false),
        (
            "patch",
            "pods",
            "ephemeralcontainers",
            "default",
            "db",
            false,
        ),
        ("list", "pods", "", "default", "", false),
        ("get", "pods", "", "other", "web", false),
        ("create", "pods", "", "default", "", false),
        ("delete", "pods", "", "default", "web", false),
        ("get", "secrets", "", "default", "x", false),
        ("create", "roles", "", "default", "", false),
        (
            "update",
            "pods",
            "ephemeralcontainers",
            "default",
            "web",
            false,
        ),
    ];
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa.clone());
    for (verb, resource, sub, ns, name, allowed) in table {
        let group = if resource == "roles" {
            "rbac.authorization.k8s.io"
        } else {
            ""
        };
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
            "SSAR {verb} {resource}/{sub} {ns}/{name}"
        );
    }
    // Direct calls agree.
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "default");
    pods.get("web").await.expect("get the pinned pod");
    let err = api_err(pods.get("db").await.unwrap_err());
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"db\" is forbidden: User \"system:serviceaccount:default:scanner\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(
        api_err(pods.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    // A watch narrowed to the pinned pod by name is allowed; to another, not.
    let mut w = pods
        .watch(
            &WatchParams::default()
                .fields("metadata.name=web")
                .timeout(2),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        w.try_next().await.unwrap(),
        Some(WatchEvent::Added(_))
    ));
    let denied = pods
        .watch(&WatchParams::default().fields("metadata.name=db"), "0")
        .await;
    assert_eq!(api_err(denied.err().unwrap()).code, 403);
    assert_eq!(
        api_err(
            Api::<Pod>::namespaced(sa.clone(), "other")
                .get("web")
                .await
                .unwrap_err()
        )
        .code,
        403
    );
    add_debug(&sa, "default", "web", json!([debug_container("dbg")]))
        .await
        .expect("patch ephemeral containers");
    let err = api_err(
        add_debug(&sa, "default", "db", json!([debug_container("dbg")]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .contains("cannot patch resource \"pods/ephemeralcontainers\""),
        "{}",
        err.message
    );
    let roles: Api<Role> = Api::namespaced(sa.clone(), "default");
    assert_eq!(
        api_err(
            roles
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(pinned_role("x")).unwrap()
                )
                .await
                .unwrap_err()
        )
        .code,
        403
    );
}

#[tokio::test]
async fn websocket_exec_needs_create_as_well_as_get() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    create_pod(
        &admin,
        "default",
        distroless_pod("web", dscan_sim::images::DISTROLESS),
    )
    .await;
    let mut role = pinned_role("web");
    role["rules"][2]["verbs"] = json!(["get"]);
    let sa = scan_identity(&sim, &admin, role).await;
    let pods: Api<Pod> = Api::namespaced(sa, "default");
    let err = pods
        .exec("web", ["true"], &kube::api::AttachParams::default())
        .await
        .err()
        .expect("exec refused");
    let status = api_err(err);
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("cannot create resource \"pods/exec\""),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn role_escalation_is_refused_for_non_admins() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    // alice may manage RBAC (the built-in admin ClusterRole) but does not hold
    // pods/ephemeralcontainers, so she cannot grant it.
    let alice_token = sim.add_user("alice", &["devs"]);
    let rb = json!({"metadata": {"name": "alice-admin"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "alice"}]});
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &serde_json::from_value(rb).unwrap())
        .await
        .unwrap();
    let alice = sim.client_for_token(&alice_token).await.unwrap();
    let roles: Api<Role> = Api::namespaced(alice.clone(), "default");
    let err = api_err(
        roles
            .create(
                &PostParams::default(),
                &serde_json::from_value(pinned_role("web")).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .starts_with("roles.rbac.authorization.k8s.io \"scan\" is forbidden: user \"alice\""),
        "{}",
        err.message
    );
    assert!(err.message.contains("{APIGroups:[\"\"], Resources:[\"pods/ephemeralcontainers\"], ResourceNames:[\"web\"], Verbs:[\"get\"]}"), "{}", err.message);
    // A role within her rights is fine.
    let ok = json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    roles
        .create(&PostParams::default(), &serde_json::from_value(ok).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn owner_references_cascade_on_delete() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    let sa = service_account(&admin, "default", "owner").await;
    let uid = sa.metadata.uid.unwrap();
    let owned = json!({"metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "v1", "kind": "ServiceAccount", "name": "owner", "uid": uid}]},
        "rules": []});
    let roles: Api<Role> = Api::namespaced(admin.clone(), "default");
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(owned).unwrap(),
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(roles.get("owned").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn injected_faults_look_like_cluster_failures() {
    let sim = Sim::start().await.unwrap();
    let admin = sim.client().await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    // The second create fails with a 500; the first and third succeed.
    sim.faults().fail_nth(
        Matcher::call("create", "serviceaccounts"),
        2,
        ApiError::internal("etcdserver: request timed out"),
    );
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let sa2: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "y"}})).unwrap();
    let err = api_err(sas.create(&PostParams::default(), &sa2).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    assert_eq!(
        err.message,
        "Internal error occurred: etcdserver: request timed out"
    );
    sas.create(&PostParams::default(), &sa2).await.unwrap();

    // Latency.
    sim.faults().latency(
        Matcher::call("get", "serviceaccounts"),
        Duration::from_millis(300),
    );
    let started = std::time::Instant::now();
    sas.get("x").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.faults().clear();

    // A dropped watch ends with an error on the client side.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    create_pod(
        &admin,
        "default",
        distroless_pod("w", dscan_sim::images::DISTROLESS),
    )
    .await;
    let mut stream = pods
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        stream.try_next().await.unwrap(),
        Some(WatchEvent::Added(_))
    ));
    sim.faults().drop_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Bookmark(_))) | Some(Ok(WatchEvent::Modified(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the dropped watch ends promptly");
    // kube-client reads a connection cut mid-chunk ("unexpected EOF during
    // chunk") as the end of the watch, as with a real API server; what matters
    // is that it ends long before its 30 s timeout and carries no event.
    assert!(
        matches!(end, None | Some(Err(_))),
        "the cut stream ends: {end:?}"
    );

    // Image pull and container config failures show as waiting reasons.
    sim.faults().fail_image_pull("registry.example/broken:1");
    create_pod(
        &admin,
        "default",
        distroless_pod("pull", "registry.example/broken:1"),
    )
    .await;
    let pod = wait_pod(&admin, "default", "pull", "ImagePullBackOff", |p| {
        waiting_reason(p) == Some("ImagePullBackOff".into())
    })
    .await;
    assert!(
        pod.status.unwrap().container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap()
            .message
            .unwrap()
            .contains("registry.example/broken:1")
    );
    sim.faults()
        .fail_container_config(dscan_sim::images::SHELL_APP, "secret \"creds\" not found");
    create_pod(
        &admin,
        "default",
        distroless_pod("cfg", dscan_sim::images::SHELL_APP),
    )
    .await;
    wait_pod(
        &admin,
        "default",
        "cfg",
        "CreateContainerConfigError",
        |p| waiting_reason(p) == Some("CreateContainerConfigError".into()),
    )
    .await;
    // runAsNonRoot with a root image is refused by the kubelet the same way.
    let pod = json!({"metadata": {"name": "nonroot"}, "spec": {"securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}});
    create_pod(&admin, "default", pod).await;
    wait_pod(
        &admin,
        "default",
        "nonroot",
        "CreateContainerConfigError",
        |p| waiting_reason(p) == Some("CreateContainerConfigError".into()),
    )
    .await;

    // The request log says who called what.
    let log = sim.faults().requests();
    assert!(log.iter().any(|r| r.user == "kubernetes-admin"
        && r.verb == "create"
        && r.resource == "serviceaccounts"
        && r.code == 500));
    assert!(
        log.iter()
            .any(|r| r.verb == "watch" && r.resource == "pods" && r.code == 200)
    );
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized() {
    let sim = Sim::start().await.unwrap();
    let client = sim.client_for_token("not-a-token").await.unwrap();
    let err = api_err(
        Api::<Pod>::namespaced(client, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
    let log = sim.faults().requests();
    assert_eq!(log.last().unwrap().user, "");
}

#[tokio::test]
async fn namespaces_and_delete_collection_through_kube_api() {
    use k8s_openapi::api::core::v1::Namespace;
    let sim = Sim::start().await.unwrap();
    let client = sim.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team",
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
    .unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(
        created.status.unwrap().phase.as_deref(),
        Some("Active"),
        "created active"
    );
    assert_eq!(
        created.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "team"
    );
    let err = api_err(
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    // The PSA label of a namespace made through the API is enforced.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    let root: Pod =
        serde_json::from_value(distroless_pod("web", dscan_sim::images::DISTROLESS)).unwrap();
    let err = api_err(
        pods.create(&PostParams::default(), &root)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403, "{}", err.message);
    assert!(
        err.message.contains("violates PodSecurity"),
        "{}",
        err.message
    );

    // deletecollection by label selector removes exactly the selected objects.
    for (name, team) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}}))
                .unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), "team")
            .create(&PostParams::default(), &sa)
            .await
            .unwrap();
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    let gone = sas
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("team=x"),
        )
        .await
        .unwrap()
        .left()
        .expect("the deleted objects");
    let mut names: Vec<String> = gone
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let left: Vec<String> = sas
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);

    // Deleting the namespace deletes what is in it.
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(namespaces.get_opt("team").await.unwrap().is_none());
    let err = api_err(sas.get("c").await.unwrap_err());
    assert_eq!(err.code, 404);
}
