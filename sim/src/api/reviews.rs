//! TokenRequest (`serviceaccounts/<name>/token`) and SelfSubjectAccessReview.

use axum::body::Body;
use axum::response::Response;
use k8s_openapi::jiff::SignedDuration;
use serde_json::{Value, json};

use super::objects::get;
use super::{Call, Shared, json, json_body};
use crate::clock::rfc3339;
use crate::rbac::{Attributes, Decision};
use crate::status::{ApiError, FieldCause};
use crate::store::{Key, Kind};

const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 1 << 32;

/// `POST .../serviceaccounts/<name>/token`.
pub(super) async fn token_request(
    shared: &Shared,
    call: &Call,
    body: Body,
) -> Result<Response, ApiError> {
    if call.info.verb != "create" {
        return Err(ApiError::method_not_allowed());
    }
    let ns = &call.info.namespace;
    let sa_name = &call.info.name;
    let sa = get(shared, &Key::new(Kind::ServiceAccount, ns, sa_name))?;
    let mut request = json_body(body).await?;
    if !request.is_object() {
        request = json!({});
    }
    let requested = request["spec"]["expirationSeconds"]
        .as_i64()
        .unwrap_or(3600);
    let invalid = |detail: &str| {
        ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa_name,
            &[FieldCause::invalid(
                "spec.expirationSeconds",
                &requested.to_string(),
                detail,
            )],
        )
    };
    if requested < MIN_SECONDS {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    if requested > MAX_SECONDS {
        return Err(invalid(
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let granted = shared
        .config
        .max_token_seconds
        .map_or(requested, |max| requested.min(max));
    let mut bound = None;
    let bound_ref = request["spec"]["boundObjectRef"].clone();
    if bound_ref.is_object() {
        let kind = bound_ref["kind"].as_str().unwrap_or_default();
        let name = bound_ref["name"].as_str().unwrap_or_default();
        if kind != "Pod" {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of kind {kind:?}: the simulator binds tokens to pods only"
            )));
        }
        let pod = get(shared, &Key::new(Kind::Pod, ns, name))?;
        // TokenREST.Create: a pod binding is only for the pod's own account.
        let runs_as = pod["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        if runs_as != sa_name {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
            )));
        }
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(want) = bound_ref["uid"].as_str()
            && !want.is_empty()
            && want != uid
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        request["spec"]["boundObjectRef"]["uid"] = json!(uid);
        request["spec"]["boundObjectRef"]["apiVersion"] = json!("v1");
        bound = Some((Key::new(Kind::Pod, ns, name), uid));
    }
    let expires = shared
        .clock
        .now()
        .checked_add(SignedDuration::from_secs(granted))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
    let issued = shared
        .tokens
        .issue_service_account(ns, sa_name, sa_uid, expires, bound);
    if request["spec"]["audiences"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        request["spec"]["audiences"] = json!(["https://kubernetes.default.svc.cluster.local"]);
    }
    request["spec"]["expirationSeconds"] = json!(granted);
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] =
        json!({"name": sa_name, "namespace": ns, "creationTimestamp": shared.clock.now_rfc3339()});
    request["status"] =
        json!({"token": issued.token, "expirationTimestamp": rfc3339(issued.expires)});
    Ok(json(201, request))
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub(super) async fn self_subject_access_review(
    shared: &Shared,
    call: &Call,
    body: Body,
) -> Result<Response, ApiError> {
    if call.info.verb != "create" {
        return Err(ApiError::method_not_allowed());
    }
    let mut review = json_body(body).await?;
    let spec = &review["spec"];
    let attrs = if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        Attributes {
            verb: s("verb"),
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
            path: None,
        }
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|r| r.is_object()) {
        Attributes {
            verb: n["verb"].as_str().unwrap_or_default().into(),
            path: Some(n["path"].as_str().unwrap_or_default().into()),
            ..Default::default()
        }
    } else {
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "",
            &[FieldCause::invalid(
                "spec.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        ));
    };
    let status = match super::decide(shared, &call.user, &attrs) {
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny => json!({"allowed": false}),
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": Value::Null});
    review["status"] = status;
    Ok(json(201, review))
}
