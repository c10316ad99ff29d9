//! Request attributes, derived from method and path the way kube-apiserver's
//! `RequestInfoFactory` does, so that RBAC and the request log see the same
//! verb/resource/subresource a real cluster would.

use axum::http::Method;

/// What a request is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// A resource request (`/api`, `/apis/...` with a resource) or not (`/version`).
    pub is_resource: bool,
    /// The URL path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace, if any.
    pub namespace: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`exec`, `ephemeralcontainers`, `token`…).
    pub subresource: String,
    /// Object name, if any.
    pub name: String,
}

impl RequestInfo {
    /// `pods/exec` style resource string.
    pub fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Derives the attributes from a request line.
pub fn parse(method: &Method, path: &str, watch_param: bool) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        ..Default::default()
    };
    let lower_verb = method.as_str().to_ascii_lowercase();
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let rest = match parts.as_slice() {
        ["api", version, rest @ ..] => {
            info.version = (*version).to_string();
            rest
        }
        ["apis", group, version, rest @ ..] => {
            info.group = (*group).to_string();
            info.version = (*version).to_string();
            rest
        }
        _ => {
            info.verb = lower_verb;
            return info;
        }
    };
    if rest.is_empty() {
        // Discovery of a group version.
        info.verb = lower_verb;
        return info;
    }
    info.is_resource = true;
    let rest: &[&str] = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => {
            info.namespace = (*ns).to_string();
            tail
        }
        ["namespaces", ns] => {
            info.namespace = (*ns).to_string();
            rest
        }
        _ => rest,
    };
    info.resource = rest[0].to_string();
    if let Some(name) = rest.get(1) {
        info.name = (*name).to_string();
    }
    if let Some(sub) = rest.get(2) {
        info.subresource = (*sub).to_string();
    }
    info.verb = match *method {
        Method::GET | Method::HEAD if watch_param => "watch".into(),
        Method::GET | Method::HEAD if info.name.is_empty() => "list".into(),
        Method::GET | Method::HEAD => "get".into(),
        Method::POST => "create".into(),
        Method::PUT => "update".into(),
        Method::PATCH => "patch".into(),
        Method::DELETE if info.name.is_empty() => "deletecollection".into(),
        Method::DELETE => "delete".into(),
        _ => lower_verb,
    };
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_verbs_and_resources() {
        let r = parse(&Method::GET, "/api/v1/namespaces/ns/pods", false);
        assert_eq!(
            (r.verb.as_str(), r.namespace.as_str(), r.resource.as_str()),
            ("list", "ns", "pods")
        );
        let r = parse(&Method::GET, "/api/v1/namespaces/ns/pods", true);
        assert_eq!(r.verb, "watch");
        let r = parse(
            &Method::PATCH,
            "/api/v1/namespaces/ns/pods/web/ephemeralcontainers",
            false,
        );
        assert_eq!(r.resource_path(), "pods/ephemeralcontainers");
        assert_eq!((r.verb.as_str(), r.name.as_str()), ("patch", "web"));
        let r = parse(
            &Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles",
            false,
        );
        assert_eq!(
            (r.group.as_str(), r.resource.as_str(), r.verb.as_str()),
            ("rbac.authorization.k8s.io", "roles", "create")
        );
        let r = parse(&Method::GET, "/api/v1/namespaces/ns", false);
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.namespace.as_str()),
            ("namespaces", "ns", "ns")
        );
        let r = parse(&Method::GET, "/version", false);
        assert!(!r.is_resource);
        let r = parse(&Method::GET, "/apis/rbac.authorization.k8s.io/v1", false);
        assert!(!r.is_resource);
    }
}
