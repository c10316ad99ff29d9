//! Fault injection and the request log: a typed handle tests use to make the
//! simulator fail the way clusters fail, and to see who called what.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::request::RequestInfo;
use crate::status::ApiError;

/// Which requests a fault applies to. Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// Verb (`get`, `create`, `patch`…).
    pub verb: Option<String>,
    /// Resource with subresource (`pods`, `pods/ephemeralcontainers`, `serviceaccounts/token`).
    pub resource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// User name (`system:serviceaccount:ns:sa`, `kubernetes-admin`).
    pub user: Option<String>,
}

impl Matcher {
    /// Requests with this verb on this resource (`"create"`, `"serviceaccounts/token"`).
    pub fn call(verb: &str, resource: &str) -> Self {
        Self {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            ..Default::default()
        }
    }

    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    fn matches(&self, info: &RequestInfo, user: &str) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.verb, &info.verb)
            && eq(&self.resource, &info.resource_path())
            && eq(&self.namespace, &info.namespace)
            && eq(&self.name, &info.name)
            && eq(&self.user, user)
    }
}

#[derive(Debug)]
struct FailRule {
    matcher: Matcher,
    /// Matching calls to let through before failing.
    skip: u32,
    /// Calls still to fail (`None`: forever).
    remaining: Option<u32>,
    error: ApiError,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Authenticated user ("" when authentication failed).
    pub user: String,
    /// HTTP method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Derived verb.
    pub verb: String,
    /// `pods`, `pods/exec`…
    pub resource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// HTTP status code returned (101 for an upgraded exec).
    pub code: u16,
}

#[derive(Default)]
pub(crate) struct Knobs {
    fail: Vec<FailRule>,
    latency: Vec<(Matcher, Duration)>,
    pub(crate) drop_watch_after: Option<usize>,
    pub(crate) drop_exec_after_bytes: Option<usize>,
    pub(crate) image_pull: HashMap<String, String>,
    /// How long a pull fails before the kubelet's retries succeed, counted
    /// from each container's first failed pull.
    pub(crate) image_pull_for: HashMap<String, Duration>,
    pub(crate) config_error: HashMap<String, String>,
    pub(crate) exec_v4_only: bool,
    /// RBAC lag: how many binding-based decisions a new subject is denied.
    rbac_lag: Option<u32>,
    rbac_lag_left: HashMap<String, u32>,
}

pub(crate) struct FaultState {
    pub(crate) knobs: Mutex<Knobs>,
    pub(crate) ephemeral_enabled: AtomicBool,
    pub(crate) report_user: AtomicBool,
    pub(crate) drop_watches: watch::Sender<u64>,
    pub(crate) drop_execs: watch::Sender<u64>,
    log: Mutex<Vec<RequestRecord>>,
}

/// The fault-injection handle (cheap to clone).
#[derive(Clone)]
pub struct Faults(pub(crate) Arc<FaultState>);

impl Faults {
    pub(crate) fn new() -> Self {
        Self(Arc::new(FaultState {
            knobs: Mutex::new(Knobs::default()),
            ephemeral_enabled: AtomicBool::new(true),
            report_user: AtomicBool::new(true),
            drop_watches: watch::channel(0).0,
            drop_execs: watch::channel(0).0,
            log: Mutex::new(vec![]),
        }))
    }

    pub(crate) fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.0.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails the next matching request with `error`.
    pub fn fail_next(&self, matcher: Matcher, error: ApiError) {
        self.fail_nth(matcher, 1, error);
    }

    /// Fails the `nth` (1-based) matching request from now with `error`, once.
    pub fn fail_nth(&self, matcher: Matcher, nth: u32, error: ApiError) {
        let skip = nth.saturating_sub(1);
        self.knobs().fail.push(FailRule {
            matcher,
            skip,
            remaining: Some(1),
            error,
        });
    }

    /// Fails every matching request until [`Faults::clear`].
    pub fn fail_always(&self, matcher: Matcher, error: ApiError) {
        self.knobs().fail.push(FailRule {
            matcher,
            skip: 0,
            remaining: None,
            error,
        });
    }

    /// Delays every matching request.
    pub fn latency(&self, matcher: Matcher, delay: Duration) {
        self.knobs().latency.push((matcher, delay));
    }

    /// Removes all request faults and latencies (not the feature/image switches).
    pub fn clear(&self) {
        let mut k = self.knobs();
        k.fail.clear();
        k.latency.clear();
        k.drop_watch_after = None;
        k.drop_exec_after_bytes = None;
    }

    /// Cuts every open watch stream now (the connection breaks mid-stream).
    pub fn drop_watches(&self) {
        self.0.drop_watches.send_modify(|n| *n += 1);
    }

    /// Cuts every watch stream after it has sent `events` events.
    pub fn drop_watches_after(&self, events: Option<usize>) {
        self.knobs().drop_watch_after = events;
    }

    /// Cuts every open exec stream now, without a status.
    pub fn drop_exec_streams(&self) {
        self.0.drop_execs.send_modify(|n| *n += 1);
    }

    /// Cuts exec streams after this many output bytes.
    pub fn drop_exec_after_bytes(&self, bytes: Option<usize>) {
        self.knobs().drop_exec_after_bytes = bytes;
    }

    /// Serve exec only with the `v4.channel.k8s.io` subprotocol (an older API server).
    pub fn exec_v4_only(&self, on: bool) {
        self.knobs().exec_v4_only = on;
    }

    /// Turns the `pods/ephemeralcontainers` subresource on or off (off: 404
    /// and absent from discovery, as on a cluster without the feature).
    pub fn set_ephemeral_containers(&self, enabled: bool) {
        self.0.ephemeral_enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether container statuses report the user the runtime runs the
    /// container as (`status.containerStatuses[].user`, Kubernetes 1.33+);
    /// off: as on an older cluster.
    pub fn set_report_container_user(&self, enabled: bool) {
        self.0.report_user.store(enabled, Ordering::SeqCst);
    }

    /// Whether container statuses report the user.
    pub fn reports_container_user(&self) -> bool {
        self.0.report_user.load(Ordering::SeqCst)
    }

    /// Whether ephemeral containers are served.
    pub fn ephemeral_containers_enabled(&self) -> bool {
        self.0.ephemeral_enabled.load(Ordering::SeqCst)
    }

    /// Containers using `image` stay waiting in `ImagePullBackOff`.
    pub fn fail_image_pull(&self, image: &str) {
        self.knobs().image_pull.insert(
            image.into(),
            format!("Back-off pulling image {image:?}: ErrImagePull: failed to pull and unpack image {image:?}: not found"),
        );
    }

    /// Containers using `image` wait in `ImagePullBackOff` for `after` from
    /// their first failed pull, then start: the kubelet keeps retrying pulls,
    /// so a container can start long after a client gave up on it.
    pub fn fail_image_pull_for(&self, image: &str, after: Duration) {
        self.fail_image_pull(image);
        self.knobs().image_pull_for.insert(image.into(), after);
    }

    /// Removes the image pull and container config faults.
    pub fn clear_image_faults(&self) {
        let mut k = self.knobs();
        k.image_pull.clear();
        k.image_pull_for.clear();
        k.config_error.clear();
    }

    /// Containers using `image` stay waiting in `CreateContainerConfigError` with `message`.
    pub fn fail_container_config(&self, image: &str, message: &str) {
        self.knobs()
            .config_error
            .insert(image.into(), message.into());
    }

    /// RBAC lag, as the real authorizer's informer caches show it: for each
    /// subject, its first `decisions` authorization decisions that a
    /// RoleBinding would allow are denied (requests get 403, access reviews
    /// `allowed: false`), as if the new binding had not reached the cache yet.
    pub fn rbac_lag(&self, decisions: u32) {
        let mut k = self.knobs();
        k.rbac_lag = Some(decisions);
        k.rbac_lag_left.clear();
    }

    /// Whether a binding-based allow for `user` is still hidden by the lag
    /// (counts the decision).
    pub(crate) fn rbac_lagging(&self, user: &str) -> bool {
        let mut k = self.knobs();
        let Some(lag) = k.rbac_lag else {
            return false;
        };
        let left = k.rbac_lag_left.entry(user.to_string()).or_insert(lag);
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.0.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.0.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.0
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }

    /// The injected error for this request, if any; counts the call.
    pub(crate) fn injected_error(&self, info: &RequestInfo, user: &str) -> Option<ApiError> {
        let mut knobs = self.knobs();
        let mut fired = None;
        for (i, rule) in knobs.fail.iter_mut().enumerate() {
            if !rule.matcher.matches(info, user) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            fired = Some((i, rule.error.clone()));
            break;
        }
        let (i, error) = fired?;
        if knobs.fail[i].remaining == Some(0) {
            knobs.fail.remove(i);
        }
        Some(error)
    }

    pub(crate) fn delay(&self, info: &RequestInfo, user: &str) -> Option<Duration> {
        self.knobs()
            .latency
            .iter()
            .filter(|(m, _)| m.matches(info, user))
            .map(|(_, d)| *d)
            .max()
    }
}
