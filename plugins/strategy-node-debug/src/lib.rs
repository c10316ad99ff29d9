//! The `node-debug` access strategy (contract 0.2.0), opt-in.
//!
//! When the cluster refuses ephemeral containers (the feature off, an
//! admission webhook or policy, Pod Security refusing every admissible debug
//! container), a pod can still often run on the target's node in a
//! namespace the security team controls. With `hostPID: true` it sees the
//! node's processes; it finds the target's by its container ID (never by
//! guessing PID 1, which is the node's init there) and — running as the
//! target's own user, like `same-user` — reads `/proc/<pid>/root` by path
//! prefix. It never touches the target pod. `hostPID` is privilege, so the
//! user must ask for this strategy (`--strategy …,node-debug` or
//! `--allow-privileged`) and name a namespace whose Pod Security level
//! admits it (`--node-debug-namespace`).

use dscan_plugin_sdk::contract::{NEEDS_OPTION, locate_target_script};
use dscan_plugin_sdk_strategy_v2::{
    AccessMode, CONTRACT, Decision, Guest, NodePlan, NodePod, PluginInfo, Security, TargetFacts,
};

struct NodeDebug;

fn fact<'a>(facts: &'a TargetFacts, key: &str) -> Option<&'a str> {
    dscan_plugin_sdk::option(
        facts
            .options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str())),
        key,
    )
}

impl Guest for NodeDebug {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "node-debug",
            "when ephemeral containers are refused: a hostPID pod on the target's node, in a namespace you name, finds the target by container ID and reads it as the target's own user (opt-in)",
            contract = CONTRACT
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        let Some(refused) = facts.ephemeral_refused.as_deref() else {
            return Decision::Decline(
                "it runs only when the ephemeral-container path is refused (a debug container in the target pod is less privilege)"
                    .into(),
            );
        };
        let Some(namespace) = facts.node_debug_namespace.as_deref() else {
            return Decision::Decline(format!(
                "the ephemeral-container path was refused ({refused}) and no namespace for a node pod was named; pass --node-debug-namespace NS (its Pod Security level must be privileged)"
            ));
        };
        let graft = match fact(&facts, NEEDS_OPTION) {
            Some("path-prefix") => false,
            // CINC through graft: the scanner image, privileged, as with the
            // graft strategy; only with the user's consent.
            Some("graft") if facts.allow_privileged => true,
            Some("graft") => {
                return Decision::Decline(
                    "the in-debug runner grafts the scanner from a privileged pod on the node; pass --allow-privileged to permit it"
                        .into(),
                );
            }
            _ => {
                return Decision::Decline(format!(
                    "node-debug reads the target by path prefix (--runner native) or grafts the scanner (--runner in-debug); the {} runner needs neither",
                    facts.runner
                ));
            }
        };
        let (Some(node), Some(container_id)) =
            (facts.node.as_deref(), facts.container_id.as_deref())
        else {
            return Decision::Decline(
                "the target's node and container ID are not known yet (the pod is not scheduled or not running)".into(),
            );
        };
        if facts.privileged || (!facts.capabilities_add.is_empty() && facts.run_as_user != Some(0))
        {
            return Decision::Decline(
                "the target is privileged or adds capabilities: a pod reading it as its user must hold them too".into(),
            );
        }
        let image_option = if graft { "scanner-image" } else { "image" };
        let Some(image) = fact(&facts, image_option) else {
            return Decision::Decline(format!("no image was given (option `{image_option}`)"));
        };
        let uid = match (facts.run_as_user, facts.run_as_non_root) {
            (Some(uid), _) => uid,
            (None, Some(true)) => {
                return Decision::Decline(
                    "the target sets runAsNonRoot but not runAsUser, so its UID is not known; set runAsUser on the target"
                        .into(),
                );
            }
            (None, _) => 0,
        };
        let gid = facts.run_as_group.unwrap_or(uid);
        let lifetime = dscan_plugin_sdk::Lifetime::from_options(
            facts
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
        );
        if graft {
            return Decision::NodePlan(NodePlan {
                pod: NodePod {
                    image: image.to_string(),
                    command: vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        lifetime.startup_script(&locate_target_script(true, container_id)),
                    ],
                    env: Vec::new(),
                    security: Security {
                        run_as_user: Some(0),
                        run_as_group: Some(0),
                        run_as_non_root: Some(false),
                        privileged: true,
                        allow_privilege_escalation: true,
                        capabilities_add: Vec::new(),
                        capabilities_drop: Vec::new(),
                        seccomp_runtime_default: false,
                    },
                    dead_man_seconds: lifetime.dead_man_seconds,
                },
                mode: AccessMode::Graft,
                notes: vec![format!(
                    "ephemeral containers were refused ({refused}); a privileged hostPID pod on node {node} in namespace {namespace} runs the scanner image and grafts it into a private view of the target's root (--allow-privileged)"
                )],
            });
        }
        let security = Security {
            run_as_user: Some(uid),
            run_as_group: Some(gid),
            run_as_non_root: Some(uid != 0),
            privileged: false,
            allow_privilege_escalation: false,
            capabilities_add: Vec::new(),
            // A root target keeps the runtime's defaults, as it holds them.
            capabilities_drop: if uid == 0 {
                Vec::new()
            } else {
                vec!["ALL".into()]
            },
            seccomp_runtime_default: true,
        };
        Decision::NodePlan(NodePlan {
            pod: NodePod {
                image: image.to_string(),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    lifetime.startup_script(&locate_target_script(true, container_id)),
                ],
                env: Vec::new(),
                security,
                dead_man_seconds: lifetime.dead_man_seconds,
            },
            mode: AccessMode::PathPrefix,
            notes: vec![format!(
                "ephemeral containers were refused ({refused}); a hostPID pod on node {node} in namespace {namespace}, as UID {uid}/GID {gid}, finds the target by its container ID and reads its root by path prefix"
            )],
        })
    }
}

dscan_plugin_sdk_strategy_v2::export!(NodeDebug);
