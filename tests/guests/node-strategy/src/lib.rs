//! A strategy built against contract 0.2.0, so the host's loading of both
//! contract versions is tested: it plans a pod on the node when the facts
//! say the ephemeral-container path was refused, and a debug container
//! otherwise.

use dscan_plugin_sdk_strategy_v2::{
    AccessMode, AccessPlan, CONTRACT, DebugContainer, Decision, Guest, NodePlan, NodePod,
    PluginInfo, RbacRule, RootLocator, Security, TargetFacts,
};

struct NodeProbe;

fn security(privileged: bool) -> Security {
    Security {
        run_as_user: Some(0),
        run_as_group: Some(0),
        run_as_non_root: Some(false),
        privileged,
        allow_privilege_escalation: false,
        capabilities_add: vec![],
        capabilities_drop: vec!["ALL".into()],
        seccomp_runtime_default: true,
    }
}

impl Guest for NodeProbe {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "node-strategy",
            "plans a node pod when ephemeral containers are refused (test fixture)",
            contract = CONTRACT
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        if let Some(why) = facts.ephemeral_refused {
            let Some(ns) = facts.node_debug_namespace else {
                return Decision::Decline(format!(
                    "the ephemeral path was refused ({why}) and no node-debug namespace was named"
                ));
            };
            return Decision::NodePlan(NodePlan {
                pod: NodePod {
                    image: "busybox@sha256:0".into(),
                    command: vec!["sleep".into(), "600".into()],
                    env: vec![],
                    security: security(false),
                    dead_man_seconds: 600,
                },
                mode: AccessMode::PathPrefix,
                notes: vec![format!(
                    "a pod on node {} in namespace {ns}",
                    facts.node.unwrap_or_default()
                )],
            });
        }
        Decision::Plan(AccessPlan {
            debug_container: DebugContainer {
                image: "busybox@sha256:0".into(),
                command: vec!["sleep".into(), "600".into()],
                env: vec![],
                security: security(false),
                dead_man_seconds: 600,
            },
            locate: RootLocator::PidOne,
            mode: AccessMode::PathPrefix,
            rbac: vec![RbacRule {
                resource: "pods/exec".into(),
                verbs: vec!["create".into(), "get".into()],
            }],
            notes: vec![],
        })
    }
}

dscan_plugin_sdk_strategy_v2::export!(NodeProbe);
