//! The object store: typed keys, JSON objects, one resourceVersion counter, and
//! an event history that watches resume from (until it is compacted).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::status::ApiError;

/// The kinds the simulator stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1/Namespace` (cluster-scoped).
    Namespace,
    /// `v1/Pod`.
    Pod,
    /// `v1/ServiceAccount`.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1/Role`.
    Role,
    /// `rbac.authorization.k8s.io/v1/RoleBinding`.
    RoleBinding,
    /// `v1/ConfigMap` (where a fleet's shards leave their results).
    ConfigMap,
}

impl Kind {
    /// Every stored kind.
    pub const ALL: [Kind; 6] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ConfigMap,
    ];

    /// Plural resource name.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::ServiceAccount => "serviceaccounts",
            Kind::Role => "roles",
            Kind::RoleBinding => "rolebindings",
            Kind::ConfigMap => "configmaps",
        }
    }

    /// API group (empty for core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Role | Kind::RoleBinding => "rbac.authorization.k8s.io",
            _ => "",
        }
    }

    /// `apiVersion` of stored objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Role | Kind::RoleBinding => "rbac.authorization.k8s.io/v1",
            _ => "v1",
        }
    }

    /// `kind` of stored objects.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Role => "Role",
            Kind::RoleBinding => "RoleBinding",
            Kind::ConfigMap => "ConfigMap",
        }
    }

    /// Whether objects live in a namespace.
    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    /// The kind for a group and plural resource.
    pub fn from_resource(group: &str, resource: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.resource() == resource)
    }
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Its kind.
    pub kind: Kind,
    /// Namespace ("" for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// A key.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches deliver it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The object's key.
    pub key: Key,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions, with the new RV).
    pub object: Value,
    /// The resourceVersion of this change.
    pub rv: u64,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    /// Watches may resume from any RV ≥ this.
    oldest_rv: u64,
}

/// How many events are kept for resuming watches.
const HISTORY: usize = 4096;

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
    clock: Clock,
}

/// Something that went wrong inside an update closure, or the store's own checks.
pub type StoreResult<T> = Result<T, ApiError>;

impl Store {
    /// An empty store.
    pub fn new(clock: Clock) -> Self {
        let (events, _) = broadcast::channel(HISTORY);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest_rv: 1,
            }),
            events,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written map: every
        // mutation is a single insert/remove. Keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Reads one object.
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Lists objects of a kind (in one namespace, or all), with the list's RV.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Creates an object: fills uid, resourceVersion, creationTimestamp, the
    /// namespace and a `generateName` suffix.
    pub fn create(&self, kind: Kind, namespace: &str, mut object: Value) -> StoreResult<Value> {
        let mut inner = self.lock();
        let meta = object
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", random_suffix(5))
                }
                _ => {
                    return Err(ApiError::invalid(
                        kind.group(),
                        kind.kind(),
                        "",
                        &[crate::status::FieldCause {
                            reason: "FieldValueRequired",
                            field: "metadata.name".into(),
                            body: "Required value: name or generateName is required".into(),
                        }],
                    ));
                }
            }
        }
        let key = Key::new(kind, if kind.namespaced() { namespace } else { "" }, &name);
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(
                kind.group(),
                kind.resource(),
                &name,
            ));
        }
        inner.rv += 1;
        let rv = inner.rv;
        meta["name"] = json!(name);
        if kind.namespaced() {
            meta["namespace"] = json!(namespace);
        }
        meta["uid"] = json!(new_uid());
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(self.clock.now_rfc3339());
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind());
        inner.objects.insert(key.clone(), object.clone());
        self.record(
            &mut inner,
            Event {
                key,
                kind: EventType::Added,
                object: object.clone(),
                rv,
            },
        );
        Ok(object)
    }

    /// Changes an object in place. The closure may refuse with an error; a
    /// change that leaves the object equal writes nothing (no new RV), as the
    /// API server skips no-op updates.
    pub fn update(
        &self,
        key: &Key,
        change: impl FnOnce(&mut Value) -> StoreResult<()>,
    ) -> StoreResult<Value> {
        let mut inner = self.lock();
        let current =
            inner.objects.get(key).cloned().ok_or_else(|| {
                ApiError::not_found(key.kind.group(), key.kind.resource(), &key.name)
            })?;
        let mut next = current.clone();
        change(&mut next)?;
        // Identity fields are the server's.
        for field in [
            "uid",
            "name",
            "namespace",
            "creationTimestamp",
            "resourceVersion",
        ] {
            next["metadata"][field] = current["metadata"][field].clone();
        }
        if next == current {
            return Ok(current);
        }
        inner.rv += 1;
        let rv = inner.rv;
        next["metadata"]["resourceVersion"] = json!(rv.to_string());
        inner.objects.insert(key.clone(), next.clone());
        self.record(
            &mut inner,
            Event {
                key: key.clone(),
                kind: EventType::Modified,
                object: next.clone(),
                rv,
            },
        );
        Ok(next)
    }

    /// Removes an object and returns it.
    pub fn delete(&self, key: &Key) -> StoreResult<Value> {
        let mut inner = self.lock();
        let mut object = inner
            .objects
            .remove(key)
            .ok_or_else(|| ApiError::not_found(key.kind.group(), key.kind.resource(), &key.name))?;
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(
            &mut inner,
            Event {
                key: key.clone(),
                kind: EventType::Deleted,
                object: object.clone(),
                rv,
            },
        );
        Ok(object)
    }

    fn record(&self, inner: &mut Inner, event: Event) {
        if inner.history.len() == HISTORY
            && let Some(old) = inner.history.pop_front()
        {
            inner.oldest_rv = old.rv;
        }
        inner.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Starts a watch: the backlog after `from` (or the current objects as
    /// ADDED, for no version), and a live receiver, taken atomically so that no
    /// event falls between them. A version older than the history is `Expired`.
    pub fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> StoreResult<(Vec<Event>, broadcast::Receiver<Event>)> {
        let inner = self.lock();
        let receiver = self.events.subscribe();
        let matches =
            |e: &Event| e.key.kind == kind && namespace.is_none_or(|ns| e.key.namespace == ns);
        let backlog = match from {
            None | Some(0) => inner
                .objects
                .iter()
                .filter(|(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
                .map(|(k, v)| Event {
                    key: k.clone(),
                    kind: EventType::Added,
                    object: v.clone(),
                    rv: v["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                })
                .collect(),
            Some(rv) if rv < inner.oldest_rv => return Err(ApiError::expired(rv, inner.oldest_rv)),
            Some(rv) if rv > inner.rv => {
                return Err(ApiError::new(
                    504,
                    "Timeout",
                    format!("Too large resource version: {rv}, current: {}", inner.rv),
                ));
            }
            Some(rv) => inner
                .history
                .iter()
                .filter(|e| e.rv > rv && matches(e))
                .cloned()
                .collect(),
        };
        Ok((backlog, receiver))
    }

    /// Forgets the event history: watches from any older version now get
    /// `410 Expired`, as after an etcd compaction.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.oldest_rv = inner.rv;
    }
}

/// A random RFC 4122 version-4 UID.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

/// Lowercase alphanumerics without vowels, as `generateName` uses.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(Clock::default())
    }

    #[test]
    fn create_fills_identity_and_rejects_duplicates() {
        let s = store();
        let pod = s
            .create(Kind::Pod, "ns", json!({"metadata": {"name": "a"}}))
            .unwrap();
        assert_eq!(pod["metadata"]["namespace"], "ns");
        assert_eq!(pod["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert_eq!(pod["kind"], "Pod");
        let err = s
            .create(Kind::Pod, "ns", json!({"metadata": {"name": "a"}}))
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.message, "pods \"a\" already exists");
    }

    #[test]
    fn watch_resumes_from_a_version_and_expires_after_compaction() {
        let s = store();
        let a = s
            .create(Kind::Pod, "ns", json!({"metadata": {"name": "a"}}))
            .unwrap();
        let rv: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        s.create(Kind::Pod, "ns", json!({"metadata": {"name": "b"}}))
            .unwrap();
        s.create(Kind::Pod, "other", json!({"metadata": {"name": "c"}}))
            .unwrap();
        let (backlog, _) = s.watch(Kind::Pod, Some("ns"), Some(rv)).unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].key.name, "b");
        s.compact();
        let err = s.watch(Kind::Pod, Some("ns"), Some(rv)).unwrap_err();
        assert_eq!(err.code, 410);
        assert!(
            err.message
                .starts_with(&format!("too old resource version: {rv} (")),
            "{}",
            err.message
        );
    }

    #[test]
    fn no_op_update_keeps_the_version() {
        let s = store();
        let a = s
            .create(Kind::Pod, "ns", json!({"metadata": {"name": "a"}}))
            .unwrap();
        let key = Key::new(Kind::Pod, "ns", "a");
        let same = s.update(&key, |_| Ok(())).unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let changed = s
            .update(&key, |o| {
                o["metadata"]["labels"] = json!({"x": "y"});
                Ok(())
            })
            .unwrap();
        assert_ne!(
            changed["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn uid_is_version_4() {
        let uid = new_uid();
        assert_eq!(&uid[14..15], "4");
        assert!("89ab".contains(&uid[19..20]));
    }
}
