//! `dscan fleet job`: the manifests that run a sharded fleet scan inside the
//! cluster — a ServiceAccount with the least RBAC for it, and an Indexed Job
//! whose pod K runs `dscan scan --shard K/N` with the in-cluster config and
//! stores its results as ConfigMaps for `dscan fleet collect`.

use serde_json::{Value, json};

use std::collections::BTreeMap;

use super::store::{FLEET_RUN_LABEL, check_run_id};
use crate::cluster::{MANAGED_BY, node};

/// What the manifests are made of.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Fleet run id (names, labels, and where results are found).
    pub run: String,
    /// The namespace the Job runs in and stores results in.
    pub namespace: String,
    /// How many shards (the Job's completions).
    pub shards: u32,
    /// How many shard pods run at once.
    pub parallelism: u32,
    /// The dscan image (pin it by digest).
    pub image: String,
    /// `dscan scan` arguments: the selection, profile, thresholds…
    pub scan_args: Vec<String>,
    /// Seconds the Job may run in all (`activeDeadlineSeconds`).
    pub deadline_seconds: i64,
}

/// Flags a Job's scan sets itself; the user's arguments may not.
const RESERVED: [&str; 6] = [
    "--shard",
    "--store-results",
    "--fleet-run",
    "--results-dir",
    "--state-dir",
    "--kubeconfig",
];

impl JobPlan {
    /// Checks the plan.
    pub fn check(&self) -> Result<(), String> {
        check_run_id(&self.run)?;
        if self.shards == 0 || self.shards > 1000 {
            return Err(format!(
                "--shards {}: give 1 to 1000 (an Indexed Job's completions)",
                self.shards
            ));
        }
        if self.image.trim().is_empty() {
            return Err("--image: name the dscan image the Job runs".into());
        }
        if let Some(bad) = self
            .scan_args
            .iter()
            .find(|a| RESERVED.iter().any(|r| a.split('=').next() == Some(*r)))
        {
            return Err(format!(
                "{bad}: the Job sets this itself; leave it out of the scan arguments"
            ));
        }
        Ok(())
    }

    /// The namespace the scan arguments name for the node-debug fallback.
    fn node_debug_namespace(&self) -> Option<&str> {
        let mut args = self.scan_args.iter();
        while let Some(arg) = args.next() {
            if arg == "--node-debug-namespace" {
                return args.next().map(String::as_str);
            }
            if let Some(ns) = arg.strip_prefix("--node-debug-namespace=") {
                return Some(ns);
            }
        }
        None
    }

    /// The Role in the node-debug namespace: what the fallback's preflight
    /// asks of its caller there ([`node::CALLER_NEEDS`] and the grants it
    /// passes on, [`node::NODE_GRANTS`]).
    fn node_debug_rules() -> Vec<Value> {
        let mut by_resource: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for &(group, resource, verb, _) in node::CALLER_NEEDS {
            by_resource.entry((group, resource)).or_default().push(verb);
        }
        for (resource, verbs) in node::NODE_GRANTS {
            by_resource
                .entry(("", resource))
                .or_default()
                .extend(*verbs);
        }
        by_resource
            .into_iter()
            .map(|((group, resource), mut verbs)| {
                verbs.sort_unstable();
                verbs.dedup();
                json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
            })
            .collect()
    }

    fn name(&self) -> String {
        format!("dscan-fleet-{}", self.run)
    }

    fn labels(&self) -> Value {
        json!({"app.kubernetes.io/managed-by": MANAGED_BY, FLEET_RUN_LABEL: self.run})
    }

    /// The manifests, in the order to apply them.
    pub fn manifests(&self) -> Vec<Value> {
        let name = self.name();
        let ns = &self.namespace;
        let labels = self.labels();
        let meta = |namespaced: bool| {
            let mut m = json!({"name": name, "labels": labels});
            if namespaced {
                m["namespace"] = json!(ns);
            }
            m
        };
        // What `dscan scan` does as its caller (DESIGN §5), across the
        // namespaces it selects from: list and read pods, probe them, create
        // and remove the temporary identities, and hold what their Roles
        // grant (RBAC lets a subject grant only what it holds).
        let mut rules = vec![
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}),
            json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "get", "delete"]}),
            json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}),
            json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "delete"]}),
            json!({"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}),
        ];
        for (resource, verbs) in crate::access::ROLE_GRANTS {
            if *resource != "pods" {
                rules.push(json!({"apiGroups": [""], "resources": [resource], "verbs": verbs}));
            }
        }
        let shards = self.shards;
        let mut args: Vec<String> = vec!["scan".into()];
        args.extend(self.scan_args.iter().cloned());
        args.extend([
            "--shard".into(),
            // The Job controller sets this annotation on each pod; the env
            // var below reads it, and Kubernetes expands $(VAR) in args.
            format!("$(JOB_COMPLETION_INDEX)/{shards}"),
            "--store-results".into(),
            ns.clone(),
            "--fleet-run".into(),
            self.run.clone(),
            "--results-dir".into(),
            "/work/results".into(),
            "--state-dir".into(),
            "/work/state".into(),
            "--output".into(),
            "json".into(),
        ]);
        let mut manifests = vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(true)}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": meta(false), "rules": rules}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": meta(false),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
            // Results go only to the Job's own namespace.
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(true),
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "delete"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(true),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        ];
        if let Some(debug_ns) = self.node_debug_namespace() {
            // The node-debug fallback's objects live in its own namespace.
            let mut debug_meta = meta(false);
            debug_meta["namespace"] = json!(debug_ns);
            manifests.extend([
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": debug_meta, "rules": Self::node_debug_rules()}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": debug_meta,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
            ]);
        }
        manifests.push(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(true),
            "spec": {
                "completionMode": "Indexed",
                "completions": shards,
                "parallelism": self.parallelism.clamp(1, shards),
                // A retried shard re-scans its targets and replaces what it stored.
                "backoffLimit": shards.saturating_mul(2),
                "activeDeadlineSeconds": self.deadline_seconds,
                "ttlSecondsAfterFinished": 86400,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": name,
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "dscan",
                            "image": self.image,
                            "args": args,
                            "env": [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
                                // The root filesystem is read-only: caches go to the work volume.
                                {"name": "HOME", "value": "/work"},
                                {"name": "DSCAN_PLUGIN_CACHE", "value": "/work/plugin-cache"}],
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "tmp", "mountPath": "/tmp"}]
                        }],
                        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
                    }
                }
            }}),
        );
        manifests
    }

    /// The manifests as one `v1/List` (`kubectl apply -f -` takes it).
    pub fn list(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": self.manifests()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

    fn plan() -> JobPlan {
        JobPlan {
            run: "nightly".into(),
            namespace: "dscan".into(),
            shards: 4,
            parallelism: 2,
            image: "registry.example/dscan@sha256:00".into(),
            scan_args: vec!["-A".into(), "-l".into(), "app".into()],
            deadline_seconds: 3600,
        }
    }

    #[test]
    fn the_manifests_deserialise_as_their_kinds() {
        let m = plan().manifests();
        let _: ServiceAccount = serde_json::from_value(m[0].clone()).unwrap();
        let role: ClusterRole = serde_json::from_value(m[1].clone()).unwrap();
        let _: ClusterRoleBinding = serde_json::from_value(m[2].clone()).unwrap();
        let _: Role = serde_json::from_value(m[3].clone()).unwrap();
        let _: RoleBinding = serde_json::from_value(m[4].clone()).unwrap();
        let job: Job = serde_json::from_value(m[5].clone()).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!(spec.completions, Some(4));
        assert_eq!(spec.parallelism, Some(2));
        let c = &spec.template.spec.unwrap().containers[0];
        let args = c.args.clone().unwrap();
        let at = args.iter().position(|a| a == "--shard").unwrap();
        assert_eq!(args[at + 1], "$(JOB_COMPLETION_INDEX)/4");
        assert_eq!(
            c.env.as_ref().unwrap()[0].name,
            "JOB_COMPLETION_INDEX",
            "declared, so that $(…) in args expands"
        );
        // The ClusterRole holds every grant the temporary Roles give.
        let rules = role.rules.unwrap();
        for (resource, verbs) in crate::access::ROLE_GRANTS {
            for verb in *verbs {
                assert!(
                    rules.iter().any(|r| r
                        .resources
                        .as_ref()
                        .unwrap()
                        .iter()
                        .any(|x| x == resource)
                        && r.verbs.iter().any(|v| v == verb)),
                    "{verb} {resource} missing"
                );
            }
        }
    }

    #[test]
    fn with_the_node_debug_fallback_the_job_may_do_what_its_preflight_asks_there() {
        assert!(
            !plan()
                .manifests()
                .iter()
                .any(|m| m["metadata"]["namespace"] == "node-debug"),
            "no grants in a namespace the scan does not name"
        );
        for flag in [
            vec!["--node-debug-namespace", "node-debug"],
            vec!["--node-debug-namespace=node-debug"],
        ] {
            let mut p = plan();
            p.scan_args.extend(flag.iter().map(|s| s.to_string()));
            let m = p.manifests();
            let kinds: Vec<&str> = m.iter().map(|x| x["kind"].as_str().unwrap()).collect();
            assert_eq!(kinds.last(), Some(&"Job"), "the Job comes last: {kinds:?}");
            let role: Role = serde_json::from_value(m[5].clone()).unwrap();
            let binding: RoleBinding = serde_json::from_value(m[6].clone()).unwrap();
            assert_eq!(role.metadata.namespace.as_deref(), Some("node-debug"));
            assert_eq!(binding.metadata.namespace.as_deref(), Some("node-debug"));
            let subject = &binding.subjects.unwrap()[0];
            assert_eq!(
                (subject.name.as_str(), subject.namespace.as_deref()),
                ("dscan-fleet-nightly", Some("dscan"))
            );
            let rules = role.rules.unwrap();
            let holds = |group: &str, resource: &str, verb: &str| {
                rules.iter().any(|r| {
                    r.api_groups.as_ref().unwrap().iter().any(|g| g == group)
                        && r.resources.as_ref().unwrap().iter().any(|x| x == resource)
                        && r.verbs.iter().any(|v| v == verb)
                })
            };
            for &(group, resource, verb, _) in node::CALLER_NEEDS {
                assert!(holds(group, resource, verb), "{verb} {group}/{resource}");
            }
            for (resource, verbs) in node::NODE_GRANTS {
                for verb in *verbs {
                    assert!(holds("", resource, verb), "{verb} {resource}");
                }
            }
        }
    }

    #[test]
    fn bad_plans_are_refused_by_flag() {
        let mut p = plan();
        p.scan_args.push("--shard=0/2".into());
        assert!(p.check().unwrap_err().contains("the Job sets this itself"));
        let mut p = plan();
        p.shards = 0;
        assert!(p.check().unwrap_err().contains("--shards"));
        let mut p = plan();
        p.run = "Bad".into();
        assert!(p.check().is_err());
        assert!(plan().check().is_ok());
    }
}
