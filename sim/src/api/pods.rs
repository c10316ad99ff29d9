//! Pod admission on create and the `pods/ephemeralcontainers` subresource.

use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};

use super::objects::{apply_patch, get};
use super::{Call, Shared, json, json_body};
use crate::podspec;
use crate::psa;
use crate::status::ApiError;
use crate::store::{Key, Kind};

/// Defaults, validation and Pod Security Admission for a new pod.
pub(super) fn admit_create(
    namespace: &Value,
    pod: &mut Value,
    default: psa::Level,
) -> Result<(), ApiError> {
    podspec::default_pod(pod);
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let causes = podspec::validate_pod(pod);
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "Pod", &name, &causes));
    }
    admit_security(namespace, pod, &name, default)
}

fn admit_security(
    namespace: &Value,
    pod: &Value,
    name: &str,
    default: psa::Level,
) -> Result<(), ApiError> {
    let level = psa::namespace_level(namespace, default);
    let violations = psa::evaluate(level, &pod["spec"]);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "",
            "pods",
            name,
            &psa::violation_message(level, &violations),
        ))
    }
}

/// GET, PATCH and PUT on `pods/<name>/ephemeralcontainers`. Only
/// `spec.ephemeralContainers` of the result is taken; everything else in the
/// request is ignored, as the API server's ephemeral-containers strategy does.
pub(super) async fn ephemeral(
    shared: &Shared,
    call: &Call,
    body: Body,
) -> Result<Response, ApiError> {
    if !shared.faults.ephemeral_containers_enabled() {
        return Err(ApiError::no_route());
    }
    let key = Key::new(Kind::Pod, &call.info.namespace, &call.info.name);
    let current = get(shared, &key)?;
    let requested = match call.info.verb.as_str() {
        "get" => return Ok(json(200, current)),
        "patch" => {
            let mut next = current.clone();
            apply_patch(call, &mut next, body).await?;
            next
        }
        "update" => {
            let body = json_body(body).await?;
            if body["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n != call.info.name)
            {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
                && current["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                return Err(ApiError::conflict("", "pods", &call.info.name));
            }
            body
        }
        _ => {
            return Err(ApiError::method_not_allowed());
        }
    };
    let mut next = current.clone();
    let mut eph = requested["spec"]["ephemeralContainers"].clone();
    if let Some(list) = eph.as_array_mut() {
        // Defaults apply to containers that are new; existing ones already have them.
        for c in list.iter_mut() {
            let name = c["name"].as_str().unwrap_or_default();
            let existing = current["spec"]["ephemeralContainers"]
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o["name"].as_str() == Some(name)));
            if !existing {
                podspec::default_container(c);
            }
        }
    }
    next["spec"]["ephemeralContainers"] = if eph.is_null() { json!([]) } else { eph };
    if next["spec"]["ephemeralContainers"] == json!([])
        && current["spec"].get("ephemeralContainers").is_none()
        && let Some(spec) = next["spec"].as_object_mut()
    {
        spec.remove("ephemeralContainers");
    }
    let causes = podspec::validate_ephemeral_update(&current, &next);
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "Pod", &call.info.name, &causes));
    }
    let namespace = get(shared, &Key::new(Kind::Namespace, "", &call.info.namespace))?;
    admit_security(
        &namespace,
        &next,
        &call.info.name,
        shared.config.psa_default,
    )?;
    let new_spec = next["spec"]["ephemeralContainers"].clone();
    let updated = shared.store.update(&key, |pod| {
        pod["spec"]["ephemeralContainers"] = new_spec;
        if pod["spec"]["ephemeralContainers"].is_null()
            && let Some(spec) = pod["spec"].as_object_mut()
        {
            spec.remove("ephemeralContainers");
        }
        Ok(())
    })?;
    Ok(json(200, updated))
}
