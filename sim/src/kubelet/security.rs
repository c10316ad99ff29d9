//! Turns a container's spec and security context into the process the runtime
//! starts: command, environment, user, groups, capabilities, no_new_privs.

use serde_json::Value;

use super::images::Image;
use crate::runtime::ProcessSpec;

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    })
}

fn cap(c: &str) -> String {
    c.trim_start_matches("CAP_").to_ascii_uppercase()
}

/// The process for a container, or the `CreateContainerConfigError` message.
pub fn process_spec(pod: &Value, container: &Value, image: &Image) -> Result<ProcessSpec, String> {
    let pod_sc = &pod["spec"]["securityContext"];
    let sc = &container["securityContext"];
    let pick = |k: &str| sc[k].as_i64().or_else(|| pod_sc[k].as_i64());
    let uid = pick("runAsUser").map_or(image.user.0, |u| u32::try_from(u).unwrap_or(u32::MAX));
    let gid = pick("runAsGroup").map_or(
        if pick("runAsUser").is_some() {
            0
        } else {
            image.user.1
        },
        |g| u32::try_from(g).unwrap_or(u32::MAX),
    );
    let non_root = sc["runAsNonRoot"]
        .as_bool()
        .or_else(|| pod_sc["runAsNonRoot"].as_bool())
        == Some(true);
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let pod_uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let name = container["name"].as_str().unwrap_or_default();
    if non_root && uid == 0 {
        return Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod_name}_{ns}({pod_uid})\", container: {name})"
        ));
    }
    let mut groups: Vec<u32> = pod_sc["supplementalGroups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_u64())
                .filter_map(|g| u32::try_from(g).ok())
                .collect()
        })
        .unwrap_or_default();
    if let Some(fs_group) = pod_sc["fsGroup"]
        .as_u64()
        .and_then(|g| u32::try_from(g).ok())
    {
        groups.push(fs_group);
    }
    let privileged = sc["privileged"].as_bool() == Some(true);
    let capabilities = if privileged {
        None
    } else {
        let drop: Vec<String> = strings(&sc["capabilities"]["drop"])
            .unwrap_or_default()
            .iter()
            .map(|c| cap(c))
            .collect();
        let add: Vec<String> = strings(&sc["capabilities"]["add"])
            .unwrap_or_default()
            .iter()
            .map(|c| cap(c))
            .collect();
        let mut set: Vec<String> = if drop.iter().any(|d| d == "ALL") {
            vec![]
        } else {
            DEFAULT_CAPS
                .iter()
                .map(|c| (*c).to_string())
                .filter(|c| !drop.contains(c))
                .collect()
        };
        if add.iter().any(|a| a == "ALL") {
            set = caps::all()
                .iter()
                .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
                .collect();
        } else {
            for a in add {
                if !set.contains(&a) {
                    set.push(a);
                }
            }
        }
        Some(set)
    };
    let command = strings(&container["command"]);
    let args = strings(&container["args"]);
    let argv: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a).collect(),
        (Some(c), None) => c,
        (None, Some(a)) => image.entrypoint.iter().cloned().chain(a).collect(),
        (None, None) => image
            .entrypoint
            .iter()
            .chain(image.cmd.iter())
            .cloned()
            .collect(),
    };
    if argv.is_empty() {
        return Err("no command specified".into());
    }
    let mut env = image.env.clone();
    env.push(format!("HOSTNAME={pod_name}"));
    for e in container["env"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            env.retain(|x| !x.starts_with(&format!("{k}=")));
            env.push(format!("{k}={v}"));
        }
    }
    Ok(ProcessSpec {
        args: argv,
        env,
        cwd: container["workingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string(),
        uid,
        gid,
        groups,
        capabilities,
        no_new_privs: !privileged && sc["allowPrivilegeEscalation"].as_bool() == Some(false),
    })
}
