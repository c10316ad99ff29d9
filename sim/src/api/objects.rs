//! Create, read, update, patch, delete, list and watch for the stored kinds,
//! with the admission each kind needs (pod defaults/validation/PSA, RBAC
//! escalation checks) and ownerReference cascading on delete.

use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};

use super::select::Selector;
use super::{Call, Shared, json, json_body, pods, watch};
use crate::rbac::{self, Rule};
use crate::smp;
use crate::status::ApiError;
use crate::store::{Key, Kind};

/// Handles a request on a stored kind's collection or object.
pub(super) async fn serve(
    shared: &std::sync::Arc<Shared>,
    call: &Call,
    body: Body,
) -> Result<Response, ApiError> {
    let info = &call.info;
    let kind = Kind::from_resource(&info.group, &info.resource).ok_or_else(ApiError::no_route)?;
    let ns = if kind.namespaced() {
        info.namespace.as_str()
    } else {
        ""
    };
    if kind.namespaced() && ns.is_empty() && !matches!(info.verb.as_str(), "list" | "watch") {
        return Err(ApiError::no_route());
    }
    let key = Key::new(kind, ns, &info.name);
    match info.verb.as_str() {
        "get" => Ok(json(200, get(shared, &key)?)),
        "list" => list(shared, call, kind, ns),
        "watch" => watch::serve(shared, call, kind, (!ns.is_empty()).then_some(ns)),
        "create" => create(shared, call, kind, ns, json_body(body).await?).map(|o| json(201, o)),
        "update" => update(shared, call, &key, json_body(body).await?).map(|o| json(200, o)),
        "patch" => patch(shared, call, &key, body).await.map(|o| json(200, o)),
        "delete" => delete(shared, &key, json_body(body).await?).map(|o| json(200, o)),
        "deletecollection" => delete_collection(shared, call, kind, ns),
        _ => Err(ApiError::method_not_allowed()),
    }
}

pub(super) fn get(shared: &Shared, key: &Key) -> Result<Value, ApiError> {
    shared
        .store
        .get(key)
        .ok_or_else(|| ApiError::not_found(key.kind.group(), key.kind.resource(), &key.name))
}

fn selected(call: &Call, items: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let labels = Selector::labels(call.query.get("labelSelector").unwrap_or(""))?;
    let fields = Selector::fields(call.query.get("fieldSelector").unwrap_or(""))?;
    Ok(items
        .into_iter()
        .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
        .collect())
}

fn list(shared: &Shared, call: &Call, kind: Kind, ns: &str) -> Result<Response, ApiError> {
    let (items, rv) = shared.store.list(kind, (!ns.is_empty()).then_some(ns));
    let items = selected(call, items)?;
    Ok(json(
        200,
        json!({"kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

fn require_namespace(shared: &Shared, ns: &str) -> Result<Value, ApiError> {
    let namespace = shared
        .store
        .get(&Key::new(Kind::Namespace, "", ns))
        .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    if namespace["status"]["phase"] == "Terminating" {
        return Err(ApiError::forbidden(
            "",
            "namespaces",
            ns,
            "unable to create new content in namespace because it is being terminated",
        ));
    }
    Ok(namespace)
}

/// Creates an object after admission.
pub(super) fn create(
    shared: &Shared,
    call: &Call,
    kind: Kind,
    ns: &str,
    mut object: Value,
) -> Result<Value, ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    if let Some(body_ns) = object["metadata"]["namespace"].as_str()
        && kind.namespaced()
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if object["kind"].as_str().is_some_and(|k| k != kind.kind()) {
        return Err(ApiError::bad_request(format!(
            "the kind {:?} of the body does not match the resource {:?}",
            object["kind"].as_str().unwrap_or_default(),
            kind.resource()
        )));
    }
    match kind {
        Kind::Namespace => {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        Kind::Pod => {
            let namespace = require_namespace(shared, ns)?;
            pods::admit_create(&namespace, &mut object, shared.config.psa_default)?;
        }
        Kind::Role => {
            require_namespace(shared, ns)?;
            check_escalation(shared, call, ns, &object, &rbac::role_rules(&object))?;
        }
        Kind::RoleBinding => {
            require_namespace(shared, ns)?;
            check_bind(shared, call, ns, &object)?;
        }
        Kind::ServiceAccount | Kind::ConfigMap => {
            require_namespace(shared, ns)?;
        }
    }
    match kind {
        Kind::Namespace => object["status"] = json!({"phase": "Active"}),
        Kind::Pod => object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        _ => {
            if let Some(o) = object.as_object_mut() {
                o.remove("status");
            }
        }
    }
    let created = shared.store.create(kind, ns, object)?;
    Ok(created)
}

fn check_escalation(
    shared: &Shared,
    call: &Call,
    ns: &str,
    object: &Value,
    rules: &[Rule],
) -> Result<(), ApiError> {
    if call.user.is_admin() {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let escalate = rbac::Attributes {
        verb: "escalate".into(),
        group: "rbac.authorization.k8s.io".into(),
        resource: "roles".into(),
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    };
    if rbac::authorize(&shared.store, &call.user, &escalate).allowed() {
        return Ok(());
    }
    let missing = rbac::not_held(&shared.store, &call.user, ns, rules);
    if missing.is_empty() {
        return Ok(());
    }
    Err(escalation_error(call, "roles", name, &missing))
}

fn escalation_error(call: &Call, resource: &str, name: &str, missing: &[Rule]) -> ApiError {
    let groups = call
        .user
        .groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    let rules = missing
        .iter()
        .map(Rule::describe)
        .collect::<Vec<_>>()
        .join("\n");
    ApiError::forbidden(
        "rbac.authorization.k8s.io",
        resource,
        name,
        &format!(
            "user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{rules}",
            call.user.name
        ),
    )
}

fn check_bind(shared: &Shared, call: &Call, ns: &str, binding: &Value) -> Result<(), ApiError> {
    let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
    let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    if !matches!(role_kind, "Role" | "ClusterRole") || role_name.is_empty() {
        return Err(ApiError::invalid(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            binding["metadata"]["name"].as_str().unwrap_or_default(),
            &[crate::status::FieldCause::unsupported(
                "roleRef.kind",
                role_kind,
                &["Role", "ClusterRole"],
            )],
        ));
    }
    if call.user.is_admin() {
        return Ok(());
    }
    let name = binding["metadata"]["name"].as_str().unwrap_or_default();
    let bind = rbac::Attributes {
        verb: "bind".into(),
        group: "rbac.authorization.k8s.io".into(),
        resource: if role_kind == "Role" {
            "roles".into()
        } else {
            "clusterroles".into()
        },
        namespace: ns.into(),
        name: role_name.into(),
        ..Default::default()
    };
    if rbac::authorize(&shared.store, &call.user, &bind).allowed() {
        return Ok(());
    }
    let rules = match role_kind {
        "Role" => shared
            .store
            .get(&Key::new(Kind::Role, ns, role_name))
            .map(|r| rbac::role_rules(&r))
            .ok_or_else(|| ApiError::not_found("rbac.authorization.k8s.io", "roles", role_name))?,
        _ => rbac::cluster_role(role_name).ok_or_else(|| {
            ApiError::not_found("rbac.authorization.k8s.io", "clusterroles", role_name)
        })?,
    };
    let missing = rbac::not_held(&shared.store, &call.user, ns, &rules);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(escalation_error(call, "rolebindings", name, &missing))
    }
}

fn check_write(shared: &Shared, call: &Call, key: &Key, next: &Value) -> Result<(), ApiError> {
    match key.kind {
        Kind::Role => check_escalation(shared, call, &key.namespace, next, &rbac::role_rules(next)),
        Kind::RoleBinding => {
            if let Some(old) = shared.store.get(key)
                && old["roleRef"] != next["roleRef"]
            {
                return Err(ApiError::invalid(
                    "rbac.authorization.k8s.io",
                    "RoleBinding",
                    &key.name,
                    &[crate::status::FieldCause::invalid(
                        "roleRef",
                        "{...}",
                        "cannot change roleRef",
                    )],
                ));
            }
            check_bind(shared, call, &key.namespace, next)
        }
        Kind::Pod => {
            if let Some(old) = shared.store.get(key)
                && old["spec"] != next["spec"]
            {
                return Err(ApiError::invalid(
                    "",
                    "Pod",
                    &key.name,
                    &[crate::status::FieldCause::forbidden(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    )],
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn update(shared: &Shared, call: &Call, key: &Key, body: Value) -> Result<Value, ApiError> {
    if body["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != key.name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    check_write(shared, call, key, &body)?;
    let wanted_rv = body["metadata"]["resourceVersion"]
        .as_str()
        .map(String::from);
    shared.store.update(key, |current| {
        if let Some(rv) = &wanted_rv
            && current["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(
                key.kind.group(),
                key.kind.resource(),
                &key.name,
            ));
        }
        let status = current["status"].clone();
        *current = body;
        if key.kind == Kind::Pod || key.kind == Kind::Namespace {
            current["status"] = status;
        }
        Ok(())
    })
}

/// Applies a PATCH body by its content type.
pub(super) async fn apply_patch(
    call: &Call,
    target: &mut Value,
    body: Body,
) -> Result<(), ApiError> {
    let content_type = call
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let patch = json_body(body).await?;
    match content_type.as_str() {
        "application/strategic-merge-patch+json" => smp::apply(target, &patch),
        "application/merge-patch+json" => {
            smp::merge_patch(target, &patch);
            Ok(())
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            ),
        )),
    }
}

async fn patch(shared: &Shared, call: &Call, key: &Key, body: Body) -> Result<Value, ApiError> {
    let mut next = get(shared, key)?;
    apply_patch(call, &mut next, body).await?;
    check_write(shared, call, key, &next)?;
    shared.store.update(key, |current| {
        let status = current["status"].clone();
        *current = next;
        if key.kind == Kind::Pod || key.kind == Kind::Namespace {
            current["status"] = status;
        }
        Ok(())
    })
}

/// Deletes an object: pods gracefully through the kubelet, namespaces with
/// their contents, and everything that names the object as its owner.
pub(super) fn delete(shared: &Shared, key: &Key, options: Value) -> Result<Value, ApiError> {
    let current = get(shared, key)?;
    if let Some(uid) = options["preconditions"]["uid"].as_str()
        && current["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict(
            key.kind.group(),
            key.kind.resource(),
            &key.name,
        ));
    }
    let uid = current["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deleted = match key.kind {
        Kind::Pod => {
            let grace = options["gracePeriodSeconds"]
                .as_i64()
                .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30);
            shared
                .kubelet
                .delete_pod(&shared.store, key, grace, &shared.clock)?
        }
        Kind::Namespace => {
            let marked = shared.store.update(key, |ns| {
                ns["status"]["phase"] = json!("Terminating");
                ns["metadata"]["deletionTimestamp"] = json!(shared.clock.now_rfc3339());
                Ok(())
            })?;
            for kind in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
                for item in shared.store.list(kind, Some(&key.name)).0 {
                    let name = item["metadata"]["name"].as_str().unwrap_or_default();
                    let _ = delete(
                        shared,
                        &Key::new(kind, &key.name, name),
                        json!({"gracePeriodSeconds": 0}),
                    );
                }
            }
            shared.store.delete(key).unwrap_or(marked)
        }
        _ => shared.store.delete(key)?,
    };
    cascade(shared, &uid);
    Ok(deleted)
}

/// Background-propagation garbage collection: deletes dependents of `owner_uid`.
fn cascade(shared: &Shared, owner_uid: &str) {
    if owner_uid.is_empty() {
        return;
    }
    for kind in Kind::ALL {
        for item in shared.store.list(kind, None).0 {
            let owned = item["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid)));
            if owned {
                let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                let _ = delete(shared, &Key::new(kind, ns, name), Value::Null);
            }
        }
    }
}

fn delete_collection(
    shared: &Shared,
    call: &Call,
    kind: Kind,
    ns: &str,
) -> Result<Response, ApiError> {
    let (items, _) = shared.store.list(kind, (!ns.is_empty()).then_some(ns));
    let mut deleted = vec![];
    for item in selected(call, items)? {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        if let Ok(o) = delete(shared, &Key::new(kind, ns, name), Value::Null) {
            deleted.push(o);
        }
    }
    Ok(json(
        200,
        json!({"kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(), "metadata": {}, "items": deleted}),
    ))
}
