//! Pod defaults and validation: what the API server fills in on create, and
//! the rules for `pods/ephemeralcontainers` (forbidden fields, names, targets,
//! immutability), with Kubernetes' field paths and texts.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::status::FieldCause;

/// `Always` for `:latest` or untagged images, else `IfNotPresent`.
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Container defaults (also for ephemeral containers).
pub fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default().to_string();
    let Some(obj) = c.as_object_mut() else { return };
    obj.entry("terminationMessagePath")
        .or_insert_with(|| json!("/dev/termination-log"));
    obj.entry("terminationMessagePolicy")
        .or_insert_with(|| json!("File"));
    if !image.is_empty() {
        obj.entry("imagePullPolicy")
            .or_insert_with(|| json!(default_pull_policy(&image)));
    }
}

/// Pod defaults applied on create.
pub fn default_pod(pod: &mut Value) {
    let spec = &mut pod["spec"];
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            cs.iter_mut().for_each(default_container);
        }
    }
    if let Some(obj) = spec.as_object_mut() {
        obj.entry("restartPolicy")
            .or_insert_with(|| json!("Always"));
        obj.entry("terminationGracePeriodSeconds")
            .or_insert_with(|| json!(30));
        obj.entry("dnsPolicy")
            .or_insert_with(|| json!("ClusterFirst"));
        obj.entry("securityContext").or_insert_with(|| json!({}));
        obj.entry("schedulerName")
            .or_insert_with(|| json!("default-scheduler"));
        obj.entry("serviceAccountName")
            .or_insert_with(|| json!("default"));
        obj.entry("enableServiceLinks")
            .or_insert_with(|| json!(true));
        obj.entry("priority").or_insert_with(|| json!(0));
    }
    if pod["status"].is_null() {
        pod["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn names(spec: &Value, list: &str) -> Vec<String> {
    spec[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A container's name (a DNS label, unique among `seen`) and image (required).
fn check_name_and_image(
    path: &str,
    c: &Value,
    seen: &mut HashSet<String>,
    out: &mut Vec<FieldCause>,
) {
    let name = c["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        out.push(FieldCause::required(format!("{path}.name")));
    } else if !is_dns_label(name) {
        out.push(FieldCause::invalid(
            format!("{path}.name"),
            &format!("{name:?}"),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ));
    } else if !seen.insert(name.to_string()) {
        out.push(FieldCause::duplicate(format!("{path}.name"), name));
    }
    if c["image"].as_str().unwrap_or_default().is_empty() {
        out.push(FieldCause::required(format!("{path}.image")));
    }
}

/// Validates a pod on create.
pub fn validate_pod(pod: &Value) -> Vec<FieldCause> {
    let spec = &pod["spec"];
    let mut out = vec![];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        out.push(FieldCause::required("spec.containers"));
    }
    let mut seen = HashSet::new();
    for (list, cs) in [
        ("initContainers", spec["initContainers"].as_array()),
        ("containers", Some(&containers)),
    ] {
        for (i, c) in cs.into_iter().flatten().enumerate() {
            check_name_and_image(&format!("spec.{list}[{i}]"), c, &mut seen, &mut out);
        }
    }
    if spec
        .get("ephemeralContainers")
        .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        out.push(FieldCause::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    out
}

/// Fields an ephemeral container may not set.
const FORBIDDEN_EPHEMERAL: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
    "restartPolicy",
];

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Validates the new `spec.ephemeralContainers` of `new` against the old pod:
/// each new container's fields, names unique across all containers,
/// `targetContainerName` naming a container, and existing entries neither
/// removed nor changed.
pub fn validate_ephemeral_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut out = vec![];
    let spec = &new["spec"];
    let mut taken: HashSet<String> = names(spec, "containers")
        .into_iter()
        .chain(names(spec, "initContainers"))
        .collect();
    let targets = taken.clone();
    let volumes: HashSet<String> = names(spec, "volumes").into_iter().collect();
    let eph = spec["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, c) in eph.iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        check_name_and_image(&path, c, &mut taken, &mut out);
        match c["terminationMessagePolicy"].as_str() {
            Some("File" | "FallbackToLogsOnError") => {}
            None => out.push(FieldCause::required(format!(
                "{path}.terminationMessagePolicy"
            ))),
            Some(other) => out.push(FieldCause::unsupported(
                format!("{path}.terminationMessagePolicy"),
                other,
                &["File", "FallbackToLogsOnError"],
            )),
        }
        for field in FORBIDDEN_EPHEMERAL {
            if is_set(&c[*field]) {
                out.push(FieldCause::forbidden(
                    format!("{path}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mpath = format!("{path}.volumeMounts[{j}]");
            if is_set(&m["subPath"]) {
                out.push(FieldCause::forbidden(
                    format!("{mpath}.subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            let vname = m["name"].as_str().unwrap_or_default();
            if !volumes.contains(vname) {
                out.push(FieldCause::not_found(format!("{mpath}.name"), vname));
            }
        }
        if let Some(target) = c["targetContainerName"].as_str()
            && !target.is_empty()
            && !targets.contains(target)
        {
            out.push(FieldCause::not_found(
                format!("{path}.targetContainerName"),
                target,
            ));
        }
    }
    for old_c in old["spec"]["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = old_c["name"].as_str().unwrap_or_default();
        match eph.iter().position(|c| c["name"].as_str() == Some(name)) {
            None => out.push(FieldCause::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(i) if eph[i] != *old_c => out.push(FieldCause::forbidden(
                format!("spec.ephemeralContainers[{i}]"),
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(eph: Value) -> Value {
        json!({"spec": {"containers": [{"name": "app", "image": "x"}], "ephemeralContainers": eph}})
    }

    fn ec(name: &str) -> Value {
        let mut c = json!({"name": name, "image": "busybox:1.36", "targetContainerName": "app"});
        default_container(&mut c);
        c
    }

    #[test]
    fn defaults_follow_the_tag() {
        let mut c = json!({"name": "a", "image": "busybox"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "Always");
        let mut c = json!({"name": "a", "image": "reg:5000/busybox:1.36"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePolicy"], "File");
    }

    #[test]
    fn each_forbidden_field_is_named() {
        for field in FORBIDDEN_EPHEMERAL {
            let mut c = ec("dbg");
            c[*field] = json!([{"x": 1}]);
            let causes = validate_ephemeral_update(&pod(json!([])), &pod(json!([c])));
            assert_eq!(causes.len(), 1, "{field}: {causes:?}");
            assert_eq!(
                causes[0].field,
                format!("spec.ephemeralContainers[0].{field}")
            );
            assert_eq!(
                causes[0].body,
                "Forbidden: cannot be set for an Ephemeral Container"
            );
        }
    }

    #[test]
    fn names_targets_and_immutability() {
        let dup = validate_ephemeral_update(&pod(json!([])), &pod(json!([ec("app")])));
        assert_eq!(dup[0].body, "Duplicate value: \"app\"");
        let mut bad_target = ec("dbg");
        bad_target["targetContainerName"] = json!("nope");
        let nf = validate_ephemeral_update(&pod(json!([])), &pod(json!([bad_target])));
        assert_eq!(
            nf[0].field,
            "spec.ephemeralContainers[0].targetContainerName"
        );
        assert_eq!(nf[0].body, "Not found: \"nope\"");
        let old = pod(json!([ec("dbg")]));
        let removed = validate_ephemeral_update(&old, &pod(json!([])));
        assert_eq!(
            removed[0].body,
            "Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
        );
        let mut changed = ec("dbg");
        changed["image"] = json!("other");
        let changed = validate_ephemeral_update(&old, &pod(json!([changed])));
        assert_eq!(changed[0].field, "spec.ephemeralContainers[0]");
        assert!(validate_ephemeral_update(&old, &pod(json!([ec("dbg"), ec("dbg2")]))).is_empty());
    }
}
