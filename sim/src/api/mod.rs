//! The HTTP front: authentication, faults, authorization and the request log
//! for every request (in kube-apiserver's filter order), then dispatch.

mod discovery;
mod exec;
mod objects;
mod pods;
mod reviews;
pub(crate) mod select;
mod watch;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::auth::{UserInfo, bearer};
use crate::clock::Clock;
use crate::faults::{Faults, RequestRecord};
use crate::kubelet::Kubelet;
use crate::rbac::{self, Attributes};
use crate::request::{self, RequestInfo};
use crate::status::ApiError;
use crate::store::Store;
use crate::{SimConfig, auth::Tokens};

/// Everything handlers share.
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub tokens: Tokens,
    pub clock: Clock,
    pub faults: Faults,
    pub config: SimConfig,
    pub kubelet: Kubelet,
    pub server_address: String,
}

/// Query parameters, in order (repeated keys such as `command` kept).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
        Ok(Self(pairs))
    }

    /// The first value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a key.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// One request, parsed, for handlers.
pub(crate) struct Call {
    pub info: RequestInfo,
    pub user: UserInfo,
    pub query: Query,
    pub headers: HeaderMap,
}

/// The single entry point.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = match Query::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let mut info = request::parse(&parts.method, &path, query.flag("watch"));
    // As kube-apiserver does, a list/watch narrowed to one object by
    // `metadata.name` is authorized as a request for that name, so rules
    // pinned with resourceNames can watch their object.
    if matches!(info.verb.as_str(), "list" | "watch")
        && info.name.is_empty()
        && let Some(name) = query.get("fieldSelector").and_then(single_name)
    {
        info.name = name;
    }
    let token = bearer(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let mut record = RequestRecord {
        user: String::new(),
        method: parts.method.to_string(),
        path: path.clone(),
        verb: info.verb.clone(),
        resource: info.resource_path(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        code: 0,
    };
    let user = match shared
        .tokens
        .authenticate(token, &shared.store, &shared.clock)
    {
        Ok(u) => u,
        Err(e) => {
            record.code = e.code;
            shared.faults.record(record);
            return e.into_response();
        }
    };
    record.user = user.name.clone();
    if let Some(delay) = shared.faults.delay(&info, &user.name) {
        tokio::time::sleep(delay).await;
    }
    let is_upgrade = parts.headers.get(header::UPGRADE).is_some();
    let call = Call {
        info,
        user,
        query,
        headers: parts.headers.clone(),
    };
    let response = match shared.faults.injected_error(&call.info, &call.user.name) {
        Some(e) => e.into_response(),
        None => match authorize(&shared, &call, is_upgrade) {
            Err(e) => e.into_response(),
            Ok(()) => dispatch(&shared, call, parts, body).await,
        },
    };
    record.code = response.status().as_u16();
    shared.faults.record(record);
    response
}

/// `metadata.name=x` (or `==`) as the only requirement of a field selector.
fn single_name(selector: &str) -> Option<String> {
    let (key, value) = selector
        .split_once("==")
        .or_else(|| selector.split_once('='))?;
    (key.trim() == "metadata.name" && !value.contains(',') && !key.contains('!'))
        .then(|| value.trim().to_string())
}

fn attributes(info: &RequestInfo) -> Attributes {
    Attributes {
        verb: info.verb.clone(),
        group: info.group.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        path: (!info.is_resource).then(|| info.path.clone()),
    }
}

/// The authorizer's decision as the server makes it: RBAC, then the RBAC-lag
/// fault hiding allows that come from (new) RoleBindings.
pub(crate) fn decide(shared: &Shared, user: &UserInfo, a: &Attributes) -> rbac::Decision {
    match rbac::authorize(&shared.store, user, a) {
        rbac::Decision::Allow(reason)
            if reason.starts_with("RBAC: allowed by RoleBinding")
                && shared.faults.rbac_lagging(&user.name) =>
        {
            rbac::Decision::Deny
        }
        d => d,
    }
}

fn authorize(shared: &Shared, call: &Call, is_upgrade: bool) -> Result<(), ApiError> {
    let mut checks = vec![attributes(&call.info)];
    // Since 1.35 a WebSocket upgrade (GET) of exec/attach/portforward also
    // needs `create` on the subresource.
    if is_upgrade
        && call.info.verb == "get"
        && matches!(
            call.info.subresource.as_str(),
            "exec" | "attach" | "portforward"
        )
    {
        checks.push(Attributes {
            verb: "create".into(),
            ..attributes(&call.info)
        });
    }
    for a in checks {
        if !decide(shared, &call.user, &a).allowed() {
            let why = rbac::forbidden_reason(&call.user, &a);
            return Err(if a.path.is_some() {
                ApiError::new(403, "Forbidden", format!("forbidden: {why}"))
                    .with_details(serde_json::json!({}))
            } else {
                ApiError::forbidden(&a.group, &a.resource, &a.name, &why)
            });
        }
    }
    Ok(())
}

async fn dispatch(
    shared: &Arc<Shared>,
    call: Call,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    if !call.info.is_resource {
        return discovery::serve(shared, &call).unwrap_or_else(|e| e.into_response());
    }
    let sub = call.info.subresource.clone();
    let result = match (
        call.info.group.as_str(),
        call.info.resource.as_str(),
        sub.as_str(),
    ) {
        ("", "pods", "exec") => return exec::serve(shared.clone(), call, parts).await,
        ("", "pods", "ephemeralcontainers") => pods::ephemeral(shared, &call, body).await,
        ("", "pods", "status") if call.info.verb == "get" => {
            objects::serve(shared, &call, body).await
        }
        ("", "serviceaccounts", "token") => reviews::token_request(shared, &call, body).await,
        ("authorization.k8s.io", "selfsubjectaccessreviews", "") => {
            reviews::self_subject_access_review(shared, &call, body).await
        }
        (_, _, "") => objects::serve(shared, &call, body).await,
        _ => Err(ApiError::no_route()),
    };
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Reads a JSON request body (capped).
pub(crate) async fn json_body(body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, 3 * 1024 * 1024)
        .await
        .map_err(|e| {
            ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("the request body could not be read: {e}"),
            )
        })?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })
}

/// A JSON response.
pub(crate) fn json(code: u16, value: Value) -> Response {
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    (status, axum::Json(value)).into_response()
}
