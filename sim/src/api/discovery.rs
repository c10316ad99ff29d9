//! `/version` and the legacy discovery documents clients use for feature detection.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Call, Shared, json};
use crate::status::ApiError;

fn resource(name: &str, singular: &str, namespaced: bool, kind: &str, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs})
}

const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn core_v1(shared: &Shared) -> Value {
    let mut resources = vec![
        resource(
            "namespaces",
            "namespace",
            false,
            "Namespace",
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
        ),
        resource("pods", "pod", true, "Pod", CRUD),
        json!({"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": ["create", "get"]}),
        json!({"name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}),
        resource(
            "serviceaccounts",
            "serviceaccount",
            true,
            "ServiceAccount",
            CRUD,
        ),
        resource("configmaps", "configmap", true, "ConfigMap", CRUD),
        json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io",
            "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}),
    ];
    if shared.faults.ephemeral_containers_enabled() {
        resources.insert(
            2,
            json!({"name": "pods/ephemeralcontainers", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get", "patch", "update"]}),
        );
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources})
}

fn group(name: &str) -> Value {
    let gv = format!("{name}/v1");
    json!({"name": name, "versions": [{"groupVersion": gv, "version": "v1"}], "preferredVersion": {"groupVersion": gv, "version": "v1"}})
}

/// Serves a non-resource path.
pub(super) fn serve(shared: &Shared, call: &Call) -> Result<Response, ApiError> {
    let path = call.info.path.trim_end_matches('/');
    let doc = match path {
        "/version" => {
            let (major, minor) = shared.config.version;
            json!({
                "major": major.to_string(), "minor": minor.to_string(),
                "gitVersion": format!("v{major}.{minor}.0"), "gitCommit": "dscan-sim", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
            })
        }
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(axum::response::IntoResponse::into_response("ok"));
        }
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.server_address}]}),
        "/api/v1" => core_v1(shared),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group("rbac.authorization.k8s.io"), group("authorization.k8s.io"), group("authentication.k8s.io")]}),
        "/apis/rbac.authorization.k8s.io/v1" => {
            json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "rbac.authorization.k8s.io/v1", "resources": [
                resource("rolebindings", "rolebinding", true, "RoleBinding", CRUD),
                resource("roles", "role", true, "Role", CRUD)]})
        }
        "/apis/authorization.k8s.io/v1" => json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "authorization.k8s.io/v1", "resources": [
                resource("selfsubjectaccessreviews", "selfsubjectaccessreview", false, "SelfSubjectAccessReview", &["create"])]}),
        "/apis/authentication.k8s.io/v1" => json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "authentication.k8s.io/v1", "resources": []}),
        _ => return Err(ApiError::no_route()),
    };
    Ok(json(200, doc))
}
