//! The `chroot-wrapper` access strategy (DESIGN §6.1).
//!
//! A busybox debug container runs as root with only `SYS_CHROOT` added (which
//! Pod Security `baseline` allows). Its start-up command replaces its *own*
//! `/bin/sh` with a wrapper that runs every command as
//! `chroot /proc/<target>/root /proc/<wrapper>/root/bin/busybox sh -c CMD`, so a
//! transport that execs `/bin/sh -c CMD` in the debug container lands in the
//! target's root with busybox's applets, and nothing is written into the
//! target. The container then sleeps for the dead-man period and exits.
//!
//! Reading `/proc/<pid>/root` needs ptrace access: the same UID and a superset
//! of the target's capabilities. So the target must run as root (UID 0) and
//! must not hold capabilities the debug container lacks; a non-root target
//! cannot be reached this way without CAP_SYS_PTRACE, which baseline forbids.

use dscan_plugin_sdk::strategy::{
    AccessMode, AccessPlan, DebugContainer, Decision, Guest, PluginInfo, PsaLevel, Security,
    TargetFacts, decline_without_ephemeral_containers,
};

struct ChrootWrapper;

/// The debug container's state files (its own root, never the target's).
use dscan_plugin_sdk::contract::state::{
    DIR as STATE, MAIN_PID, READY, ROOT_FD as ROOT_FD_FILE, TARGET_PID, TOOLKIT,
};

/// The start-up shell's descriptor holding the captured target root.
const ROOT_FD: u32 = 9;

/// containerd's default capabilities: the debug container keeps these plus
/// SYS_CHROOT, so it holds a superset of a default root target's set.
const DEFAULT_CAPS: &[&str] = &[
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

/// The debug container's start-up script: record its PID, install the wrapper
/// as its own `/bin/sh`, then sleep (the dead-man timer) until told to stop.
fn startup_script(lifetime: &dscan_plugin_sdk::Lifetime, locate_pid: &str) -> String {
    // The wrapper keeps its own shell alive while the chroot runs, because
    // `/proc/$$/root` must stay this container's root (an exec'd chroot would
    // be chrooted itself and find no busybox).
    //
    // The target's root is captured once, as descriptor 9 of the start-up
    // shell (which lives as long as the container), and every command is
    // chrooted into that capture (`/proc/<main>/fd/9`), never into a fresh
    // `/proc/<target>/root`: a target that chroots after dscan's root check
    // cannot redirect the scan to a tree of its choosing.
    //
    // Inside the target's root only dscan's uploaded toolkit runs
    // ({TOOLKIT}: a verified static busybox with a standalone shell), never
    // the debug image's busybox, whose loader, libc and applet lookups would
    // resolve in the target after the chroot.
    let wrapper = format!(
        r#"#!/bin/busybox sh
m=$(/bin/busybox cat {MAIN_PID})
[ -x {TOOLKIT} ] || {{ echo "dscan: the static toolkit is not in place ({TOOLKIT})" >&2; exit 127; }}
if [ "$1" = "-c" ]; then shift; /bin/busybox chroot /proc/$m/fd/{ROOT_FD} /proc/$$/root{TOOLKIT} sh -c "$@"; exit $?; fi
/bin/busybox chroot /proc/$m/fd/{ROOT_FD} /proc/$$/root{TOOLKIT} sh "$@"; exit $?
"#
    );
    let prelude = lifetime.prelude("/bin/busybox ");
    let wait = lifetime.wait("/bin/busybox ");
    format!(
        r#"set -e
{prelude}/bin/busybox mkdir -p {STATE}
echo $$ > {MAIN_PID}
{locate_pid}
t=$(/bin/busybox cat {TARGET_PID})
exec {ROOT_FD}< /proc/$t/root/
echo {ROOT_FD} > {ROOT_FD_FILE}
/bin/busybox rm -f /bin/sh
/bin/busybox cat > /bin/sh <<'DSCAN_WRAPPER'
{wrapper}DSCAN_WRAPPER
/bin/busybox chmod 0755 /bin/sh
echo ready > {READY}
{wait}"#
    )
}

/// A capability name as Kubernetes writes it (`SYS_CHROOT`).
fn cap_name(c: &str) -> String {
    let upper = c.to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// The debug container's capabilities: the target's own set plus
/// SYS_CHROOT. Reading `/proc/<pid>/root` needs a superset of the target's;
/// anything more would make the debug container a more privileged neighbour
/// of a target that dropped capabilities. Returns (add, drop).
fn debug_capabilities(facts: &TargetFacts) -> (Vec<String>, Vec<String>) {
    let drops: Vec<String> = facts
        .capabilities_drop
        .iter()
        .map(|c| cap_name(c))
        .collect();
    let mut add: Vec<String> = vec!["SYS_CHROOT".into()];
    for c in &facts.capabilities_add {
        let c = cap_name(c);
        if !add.contains(&c) {
            add.push(c);
        }
    }
    add.sort();
    let drop = if drops.iter().any(|d| d == "ALL") {
        vec!["ALL".to_string()]
    } else {
        let mut d: Vec<String> = drops.into_iter().filter(|d| d != "SYS_CHROOT").collect();
        d.sort();
        d.dedup();
        d
    };
    (add, drop)
}

impl Guest for ChrootWrapper {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "chroot-wrapper",
            "root busybox debug container with SYS_CHROOT; every command runs chrooted into the target's root (PSA baseline)"
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        if let Some(decline) = decline_without_ephemeral_containers(&facts) {
            return decline;
        }
        let needs =
            dscan_plugin_sdk::strategy::fact(&facts, dscan_plugin_sdk::contract::NEEDS_OPTION);
        if needs.is_some_and(|m| m != "chroot-wrapper") {
            return Decision::Decline(format!(
                "the {} runner needs {} access (it runs the scanner inside the debug container, in a grafted view of the target); \
                 this strategy only wraps commands (runners local and standin); use --strategy graft",
                facts.runner,
                needs.unwrap_or_default()
            ));
        }
        if facts.psa_level == PsaLevel::Restricted {
            return Decision::Decline(format!(
                "namespace {:?} enforces Pod Security \"restricted\", which forbids root containers and SYS_CHROOT; \
                 a root debug container cannot be added there (a restricted namespace also cannot run a root target)",
                facts.namespace
            ));
        }
        match facts.run_as_user {
            Some(uid) if uid != 0 => {
                return Decision::Decline(format!(
                    "the target runs as UID {uid}: reading /proc/<pid>/root needs the same UID and a superset of its capabilities, \
                     or CAP_SYS_PTRACE (forbidden by baseline); a root debug container would get EACCES. \
                     Non-root targets need the path-prefix technique as UID {uid}, which CINC Auditor cannot use (a native engine is planned)"
                ));
            }
            _ => {}
        }
        if facts.run_as_non_root == Some(true) && facts.run_as_user.is_none() {
            return Decision::Decline(
                "the target sets runAsNonRoot without runAsUser, so it runs as a non-root UID from its image; \
                 this strategy needs a root target"
                    .into(),
            );
        }
        let extra: Vec<&String> = facts
            .capabilities_add
            .iter()
            .filter(|c| !DEFAULT_CAPS.contains(&c.trim_start_matches("CAP_")))
            .collect();
        if !extra.is_empty() || facts.privileged {
            return Decision::Decline(format!(
                "the target holds capabilities beyond the runtime defaults ({}); the debug container must hold a superset \
                 to read its root, which baseline does not allow",
                if facts.privileged {
                    "privileged".to_string()
                } else {
                    format!("{extra:?}")
                }
            ));
        }
        let Some(image) = dscan_plugin_sdk::strategy::fact(&facts, "image") else {
            return Decision::Decline("no debug image was given (option `image`)".into());
        };
        let lifetime = dscan_plugin_sdk::Lifetime::from_options(
            facts
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
        );
        let (locate, locate_pid) = dscan_plugin_sdk::strategy::locate_target(&facts);
        let (caps, drop) = debug_capabilities(&facts);
        Decision::Plan(AccessPlan {
            debug_container: DebugContainer {
                image: image.to_string(),
                command: vec![
                    "/bin/busybox".into(),
                    "sh".into(),
                    "-c".into(),
                    startup_script(&lifetime, &locate_pid),
                ],
                env: Vec::new(),
                security: Security {
                    run_as_user: Some(0),
                    run_as_group: Some(0),
                    run_as_non_root: Some(false),
                    privileged: false,
                    allow_privilege_escalation: false,
                    capabilities_add: caps,
                    capabilities_drop: drop,
                    seccomp_runtime_default: true,
                },
                dead_man_seconds: lifetime.dead_man_seconds,
            },
            locate,
            mode: AccessMode::ChrootWrapper,
            rbac: dscan_plugin_sdk::strategy::debug_container_rbac(),
            notes: vec![format!(
                "root target in a {} namespace: a root busybox debug container with SYS_CHROOT reaches its root without writing to it",
                match facts.psa_level {
                    PsaLevel::Privileged => "privileged",
                    PsaLevel::Baseline => "baseline",
                    PsaLevel::Restricted => "restricted",
                }
            )],
        })
    }
}

dscan_plugin_sdk::strategy::export!(ChrootWrapper);
