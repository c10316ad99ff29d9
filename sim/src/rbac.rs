//! The RBAC authorizer: Roles and RoleBindings from the store, a few built-in
//! ClusterRoles (read-only, approximating the bootstrap policy), the bootstrap
//! rules every authenticated user has, and the escalation check on Role and
//! RoleBinding writes.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::UserInfo;
use crate::store::{Kind, Store};

/// The attributes one authorization question is about.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// Verb.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace ("" for cluster scope).
    pub namespace: String,
    /// Object name ("" for collections).
    pub name: String,
    /// For non-resource requests: the path.
    pub path: Option<String>,
}

/// The answer, with RBAC's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, and by what.
    Allow(String),
    /// No rule allows it.
    Deny,
}

impl Decision {
    /// Whether allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// One RBAC policy rule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`*` for all).
    pub api_groups: Vec<String>,
    /// Resources, `res/sub`, `*/sub` or `*`.
    pub resources: Vec<String>,
    /// Names the rule is limited to (empty for all).
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/version`, `/apis/*`).
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Rule {
    Rule {
        verbs: strings(verbs),
        api_groups: strings(groups),
        resources: strings(resources),
        ..Default::default()
    }
}

impl Rule {
    fn matches(&self, a: &Attributes) -> bool {
        let verb_ok = self.verbs.iter().any(|v| v == "*" || *v == a.verb);
        if !verb_ok {
            return false;
        }
        if let Some(path) = &a.path {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            });
        }
        let group_ok = self.api_groups.iter().any(|g| g == "*" || *g == a.group);
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
        });
        let name_ok = self.resource_names.is_empty()
            || (!a.name.is_empty() && self.resource_names.contains(&a.name));
        group_ok && resource_ok && name_ok
    }

    /// The way RBAC prints a rule in escalation errors.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut parts = vec![];
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:[{}]", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:[{}]", list(&self.resources)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:[{}]", list(&self.resource_names)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!(
                "NonResourceURLs:[{}]",
                list(&self.non_resource_urls)
            ));
        }
        parts.push(format!("Verbs:[{}]", list(&self.verbs)));
        format!("{{{}}}", parts.join(", "))
    }
}

/// The rules every authenticated user holds (system:discovery,
/// system:public-info-viewer, system:basic-user).
fn bootstrap_rules() -> Vec<Rule> {
    vec![
        Rule {
            verbs: strings(&["get"]),
            non_resource_urls: strings(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/version",
                "/version/",
                "/healthz",
                "/livez",
                "/readyz",
                "/openapi",
                "/openapi/*",
            ]),
            ..Default::default()
        },
        rule(
            &["authorization.k8s.io"],
            &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            &["create"],
        ),
        rule(
            &["authentication.k8s.io"],
            &["selfsubjectreviews"],
            &["create"],
        ),
    ]
}

/// Built-in ClusterRoles a RoleBinding may reference. They approximate the
/// bootstrap `view`, `edit`, `admin` and `cluster-admin`; notably, like the real
/// ones, none but cluster-admin grants `pods/ephemeralcontainers`.
pub fn cluster_role(name: &str) -> Option<Vec<Rule>> {
    const READ: &[&str] = &["get", "list", "watch"];
    const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
    let view = vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "services",
                "serviceaccounts",
                "events",
                "namespaces",
            ],
            READ,
        ),
        rule(
            &["apps"],
            &["deployments", "daemonsets", "replicasets", "statefulsets"],
            READ,
        ),
    ];
    let mut edit = view.clone();
    edit.extend([
        rule(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            WRITE,
        ),
        rule(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "configmaps",
                "secrets",
                "serviceaccounts",
                "services",
                "persistentvolumeclaims",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &["apps"],
            &["deployments", "daemonsets", "replicasets", "statefulsets"],
            WRITE,
        ),
    ]);
    let mut admin = edit.clone();
    admin.extend([
        rule(
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
            READ,
        ),
        rule(
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
            WRITE,
        ),
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
    ]);
    match name {
        "view" => Some(view),
        "edit" => Some(edit),
        "admin" => Some(admin),
        "cluster-admin" => Some(vec![
            rule(&["*"], &["*"], &["*"]),
            Rule {
                verbs: strings(&["*"]),
                non_resource_urls: strings(&["*"]),
                ..Default::default()
            },
        ]),
        _ => None,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RoleRef {
    kind: String,
    name: String,
}

fn applies_to(subject: &Subject, user: &UserInfo, binding_ns: &str) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                binding_ns
            } else {
                &subject.namespace
            };
            user.name == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        _ => false,
    }
}

/// The rules a binding's role grants, with a label for the reason text.
fn bound_rules(store: &Store, namespace: &str, role_ref: &RoleRef) -> Option<(Vec<Rule>, String)> {
    match role_ref.kind.as_str() {
        "Role" => {
            let role = store.get(&crate::store::Key::new(
                Kind::Role,
                namespace,
                &role_ref.name,
            ))?;
            let rules: Vec<Rule> =
                serde_json::from_value(role["rules"].clone()).unwrap_or_default();
            Some((rules, format!("Role {:?}", role_ref.name)))
        }
        "ClusterRole" => Some((
            cluster_role(&role_ref.name)?,
            format!("ClusterRole {:?}", role_ref.name),
        )),
        _ => None,
    }
}

/// Decides one request. `system:masters` members are always allowed.
pub fn authorize(store: &Store, user: &UserInfo, a: &Attributes) -> Decision {
    if user.is_admin() {
        return Decision::Allow("system:masters".into());
    }
    if bootstrap_rules().iter().any(|r| r.matches(a)) {
        return Decision::Allow("RBAC: allowed by ClusterRoleBinding \"system:basic-user\"".into());
    }
    if a.namespace.is_empty() {
        // Only namespaced bindings are modelled.
        return Decision::Deny;
    }
    let (bindings, _) = store.list(Kind::RoleBinding, Some(&a.namespace));
    for binding in bindings {
        let subjects: Vec<Subject> =
            serde_json::from_value(binding["subjects"].clone()).unwrap_or_default();
        let Some(subject) = subjects.iter().find(|s| applies_to(s, user, &a.namespace)) else {
            continue;
        };
        let role_ref: RoleRef =
            serde_json::from_value(binding["roleRef"].clone()).unwrap_or_default();
        let Some((rules, role_label)) = bound_rules(store, &a.namespace, &role_ref) else {
            continue;
        };
        if rules.iter().any(|r| r.matches(a)) {
            let name = binding["metadata"]["name"].as_str().unwrap_or_default();
            let who = match subject.kind.as_str() {
                "ServiceAccount" => format!(
                    "ServiceAccount \"{}/{}\"",
                    subject.name,
                    if subject.namespace.is_empty() {
                        &a.namespace
                    } else {
                        &subject.namespace
                    }
                ),
                kind => format!("{kind} {:?}", subject.name),
            };
            return Decision::Allow(format!(
                "RBAC: allowed by RoleBinding \"{name}/{}\" of {role_label} to {who}",
                a.namespace
            ));
        }
    }
    Decision::Deny
}

/// RBAC's forbidden text: `User "u" cannot get resource "pods/exec" in API group "" in the namespace "ns"`.
pub fn forbidden_reason(user: &UserInfo, a: &Attributes) -> String {
    if let Some(path) = &a.path {
        return format!("User {:?} cannot {} path {:?}", user.name, a.verb, path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    format!(
        "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, a.verb, a.group
    )
}

/// Escalation check for writing a Role: every permission in `rules` must be
/// held by `user` in `namespace`. Returns the rules (one per verb/resource/name)
/// the user does not hold.
pub fn not_held(store: &Store, user: &UserInfo, namespace: &str, rules: &[Rule]) -> Vec<Rule> {
    let mut missing = vec![];
    for r in rules {
        if !r.non_resource_urls.is_empty() {
            missing.push(r.clone());
            continue;
        }
        let names: Vec<String> = if r.resource_names.is_empty() {
            vec![String::new()]
        } else {
            r.resource_names.clone()
        };
        for group in &r.api_groups {
            for resource in &r.resources {
                let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
                for verb in &r.verbs {
                    for name in &names {
                        let a = Attributes {
                            verb: verb.clone(),
                            group: group.clone(),
                            resource: res.into(),
                            subresource: sub.into(),
                            namespace: namespace.into(),
                            name: name.clone(),
                            path: None,
                        };
                        if !authorize(store, user, &a).allowed() {
                            missing.push(Rule {
                                verbs: vec![verb.clone()],
                                api_groups: vec![group.clone()],
                                resources: vec![resource.clone()],
                                resource_names: if name.is_empty() {
                                    vec![]
                                } else {
                                    vec![name.clone()]
                                },
                                non_resource_urls: vec![],
                            });
                        }
                    }
                }
            }
        }
    }
    missing
}

/// Parses the `rules` of a Role object.
pub fn role_rules(role: &Value) -> Vec<Rule> {
    serde_json::from_value(role["rules"].clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rule_matching_follows_rbac() {
        let r = Rule {
            verbs: strings(&["get", "create"]),
            api_groups: strings(&[""]),
            resources: strings(&["pods/exec"]),
            resource_names: strings(&["web"]),
            ..Default::default()
        };
        assert!(r.matches(&attrs("get", "pods", "exec", "web")));
        assert!(!r.matches(&attrs("get", "pods", "exec", "other")));
        assert!(
            !r.matches(&attrs("get", "pods", "", "web")),
            "a subresource rule does not grant the resource"
        );
        assert!(!r.matches(&attrs("delete", "pods", "exec", "web")));
        let star = rule(&[""], &["*/exec"], &["*"]);
        assert!(star.matches(&attrs("create", "pods", "exec", "")));
        let names_only = Rule {
            resource_names: strings(&["web"]),
            ..rule(&[""], &["pods"], &["list"])
        };
        assert!(
            !names_only.matches(&attrs("list", "pods", "", "")),
            "resourceNames never match a collection"
        );
    }

    #[test]
    fn describes_rules_like_rbac() {
        let r = Rule {
            resource_names: strings(&["web"]),
            ..rule(&[""], &["pods/ephemeralcontainers"], &["patch"])
        };
        assert_eq!(
            r.describe(),
            "{APIGroups:[\"\"], Resources:[\"pods/ephemeralcontainers\"], ResourceNames:[\"web\"], Verbs:[\"patch\"]}"
        );
    }

    #[test]
    fn edit_and_admin_lack_ephemeral_containers() {
        for role in ["view", "edit", "admin"] {
            let rules = cluster_role(role).unwrap();
            assert!(
                !rules.iter().any(|r| r.matches(&attrs(
                    "patch",
                    "pods",
                    "ephemeralcontainers",
                    "web"
                ))),
                "{role}"
            );
        }
        let edit = cluster_role("edit").unwrap();
        assert!(
            edit.iter()
                .any(|r| r.matches(&attrs("create", "pods", "exec", "web")))
        );
    }
}
