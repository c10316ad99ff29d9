//! Strategic merge patch for the Pod fields dscan touches: lists with merge
//! keys (containers by name, volumeMounts by mountPath…), the `$patch`,
//! `$setElementOrder/…` and `$retainKeys` directives, and `null` deleting a key.
//! Lists without a merge key are replaced, as for an atomic list.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// The merge key of a list field, as the Pod schema's `x-kubernetes-patch-merge-key`.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses" => "name",
        "volumeMounts" | "volumeDevices" => "mountPath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "conditions" => "type",
        _ => return None,
    })
}

/// Applies a strategic merge patch to `target`.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => merge_map(t, p),
        _ => {
            *target = patch.clone();
            Ok(())
        }
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = patch
                .iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unknown patch type: {other:?}"
            )));
        }
        None => {}
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(Value::Object(t)), Value::Object(p)) => {
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                } else {
                    merge_map(t, p)?;
                }
            }
            (Some(Value::Array(t)), Value::Array(p)) if merge_key(key).is_some() => {
                merge_list(t, p, merge_key(key).unwrap_or("name"))?;
            }
            (_, Value::Array(p)) if merge_key(key).is_some() => {
                let mut list = vec![];
                merge_list(&mut list, p, merge_key(key).unwrap_or("name"))?;
                target.insert(key.clone(), Value::Array(list));
            }
            (_, v) => {
                target.insert(key.clone(), strip_directives(v));
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            let mk = merge_key(field).unwrap_or("name");
            if let (Some(Value::Array(list)), Value::Array(order)) = (target.get_mut(field), value)
            {
                reorder(list, order, mk);
            }
        }
    }
    Ok(())
}

fn merge_list(target: &mut Vec<Value>, patch: &[Value], key: &str) -> Result<(), ApiError> {
    for item in patch {
        let Some(k) = item.get(key) else {
            return Err(ApiError::bad_request(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let pos = target.iter().position(|t| t.get(key) == Some(k));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => apply(&mut target[i], item)?,
            (None, false) => target.push(strip_directives(item)),
        }
    }
    Ok(())
}

fn reorder(list: &mut Vec<Value>, order: &[Value], key: &str) {
    let mut rest = std::mem::take(list);
    for wanted in order {
        if let Some(i) = rest
            .iter()
            .position(|v| v.get(key).is_some() && v.get(key) == wanted.get(key))
        {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn appends_by_merge_key_and_honours_element_order() {
        let mut pod = json!({"spec": {"containers": [{"name": "app", "image": "a"}],
            "ephemeralContainers": [{"name": "one", "image": "x"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/ephemeralContainers": [{"name": "two"}, {"name": "one"}],
            "ephemeralContainers": [{"name": "two", "image": "y"}]}});
        apply(&mut pod, &patch).unwrap();
        let names: Vec<&str> = pod["spec"]["ephemeralContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["two", "one"]);
        assert_eq!(
            pod["spec"]["containers"][0]["image"], "a",
            "other lists untouched"
        );
    }

    #[test]
    fn merges_into_an_existing_element_and_deletes() {
        let mut pod =
            json!({"spec": {"ephemeralContainers": [{"name": "one", "image": "x", "tty": true}]}});
        apply(
            &mut pod,
            &json!({"spec": {"ephemeralContainers": [{"name": "one", "image": "z", "tty": null}]}}),
        )
        .unwrap();
        assert_eq!(
            pod["spec"]["ephemeralContainers"][0],
            json!({"name": "one", "image": "z"})
        );
        apply(
            &mut pod,
            &json!({"spec": {"ephemeralContainers": [{"name": "one", "$patch": "delete"}]}}),
        )
        .unwrap();
        assert_eq!(pod["spec"]["ephemeralContainers"], json!([]));
    }

    #[test]
    fn a_list_item_without_its_merge_key_is_refused() {
        let mut pod = json!({"spec": {}});
        let err = apply(
            &mut pod,
            &json!({"spec": {"ephemeralContainers": [{"image": "x"}]}}),
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
    }
}
