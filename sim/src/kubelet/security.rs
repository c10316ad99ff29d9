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

/// The image's `/etc/passwd` entry for `uid`: (name, primary GID).
fn passwd_entry(passwd: &str, uid: u32) -> Option<(String, u32)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| Some((f[0].to_string(), f[3].parse().ok()?)))
            .flatten()
    })
}

/// GIDs of the image's `/etc/group` entries that list `user` as a member.
fn member_gids(group: &str, user: &str) -> Vec<u32> {
    group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == user))
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .collect()
}

/// The user a container runs as, by containerd's rules: `runAsUser`, else
/// the image's user; `runAsGroup`, else the primary GID of that UID in the
/// **image's** `/etc/passwd` (0 when the UID is not listed there); plus the
/// image's `/etc/group` memberships of that user, the pod's
/// `supplementalGroups` and `fsGroup`.
fn user_of(pod_sc: &Value, sc: &Value, image: &Image) -> (u32, u32, Vec<u32>) {
    let pick = |k: &str| sc[k].as_i64().or_else(|| pod_sc[k].as_i64());
    let read = |rel: &str| std::fs::read_to_string(image.rootfs.join(rel)).unwrap_or_default();
    let passwd = read("etc/passwd");
    let uid = pick("runAsUser").map_or(image.user.0, |u| u32::try_from(u).unwrap_or(u32::MAX));
    let entry = passwd_entry(&passwd, uid);
    let gid = match pick("runAsGroup") {
        Some(g) => u32::try_from(g).unwrap_or(u32::MAX),
        None if pick("runAsUser").is_some() => entry.as_ref().map_or(0, |(_, g)| *g),
        None => image.user.1,
    };
    let mut groups = entry
        .map(|(name, _)| member_gids(&read("etc/group"), &name))
        .unwrap_or_default();
    for g in pod_sc["supplementalGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .chain(pod_sc["fsGroup"].as_u64())
        .filter_map(|g| u32::try_from(g).ok())
    {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    (uid, gid, groups)
}

/// The process for a container, or the `CreateContainerConfigError` message.
pub fn process_spec(pod: &Value, container: &Value, image: &Image) -> Result<ProcessSpec, String> {
    let pod_sc = &pod["spec"]["securityContext"];
    let sc = &container["securityContext"];
    let (uid, gid, groups) = user_of(pod_sc, sc, image);
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

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice,nonroot\nnonroot:x:65532:\n";

    #[test]
    fn the_primary_gid_comes_from_the_images_passwd() {
        assert_eq!(passwd_entry(PASSWD, 65532), Some(("nonroot".into(), 65532)));
        assert_eq!(passwd_entry(PASSWD, 1000), None);
        assert_eq!(member_gids(GROUP, "nonroot"), vec![50]);
        assert!(member_gids(GROUP, "root").is_empty());
    }

    #[test]
    fn containerd_picks_gid_and_groups_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        let image = Image {
            rootfs: dir.path().into(),
            digest: String::new(),
            user: (0, 0),
            entrypoint: vec!["/x".into()],
            cmd: vec![],
            env: vec![],
        };
        let none = serde_json::json!({});
        // runAsUser listed in the image: its passwd GID and group memberships.
        let sc = serde_json::json!({"runAsUser": 65532});
        assert_eq!(user_of(&none, &sc, &image), (65532, 65532, vec![50]));
        // Not listed: GID 0.
        let sc = serde_json::json!({"runAsUser": 1000});
        assert_eq!(user_of(&none, &sc, &image), (1000, 0, vec![]));
        // runAsGroup and the pod's groups win / add.
        let sc = serde_json::json!({"runAsUser": 65532, "runAsGroup": 7});
        let pod = serde_json::json!({"supplementalGroups": [9], "fsGroup": 50});
        assert_eq!(user_of(&pod, &sc, &image), (65532, 7, vec![50, 9]));
    }
}
