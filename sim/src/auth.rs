//! Authentication: bearer tokens to users. The admin token and ServiceAccount
//! tokens from TokenRequest; SA tokens expire, and die with their
//! ServiceAccount (and with the pod they are bound to), checked on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use rand::Rng;

use crate::clock::Clock;
use crate::status::ApiError;
use crate::store::{Key, Kind, Store};

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `kubernetes-admin`, `system:serviceaccount:<ns>:<name>`…
    pub name: String,
    /// Groups (`system:authenticated` always included).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A member of `system:masters` bypasses authorization, as in a real cluster.
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// `(namespace, name)` when this is a ServiceAccount.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }

    fn service_account_user(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// An object a token's validity hangs on: it must still exist with this UID.
#[derive(Debug, Clone)]
struct Binding {
    key: Key,
    uid: String,
}

#[derive(Debug, Clone)]
struct TokenRecord {
    user: UserInfo,
    expires: Option<Timestamp>,
    bound_to: Vec<Binding>,
}

/// The token table.
pub struct Tokens {
    map: Mutex<HashMap<String, TokenRecord>>,
}

/// A freshly issued ServiceAccount token.
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires: Timestamp,
}

impl Tokens {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenRecord>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A token for a user that never expires (the admin, test users).
    pub fn issue_static(&self, user: UserInfo) -> String {
        let token = new_token("sim-user");
        self.lock().insert(
            token.clone(),
            TokenRecord {
                user,
                expires: None,
                bound_to: vec![],
            },
        );
        token
    }

    /// A ServiceAccount token valid until `expires`, dying with the SA (by UID)
    /// and with the bound object, if any.
    pub fn issue_service_account(
        &self,
        namespace: &str,
        name: &str,
        sa_uid: &str,
        expires: Timestamp,
        bound: Option<(Key, String)>,
    ) -> IssuedToken {
        let token = new_token("sim-sa");
        let mut bound_to = vec![Binding {
            key: Key::new(Kind::ServiceAccount, namespace, name),
            uid: sa_uid.into(),
        }];
        if let Some((key, uid)) = bound {
            bound_to.push(Binding { key, uid });
        }
        let record = TokenRecord {
            user: UserInfo::service_account_user(namespace, name),
            expires: Some(expires),
            bound_to,
        };
        self.lock().insert(token.clone(), record);
        IssuedToken { token, expires }
    }

    /// Every ServiceAccount token issued so far (tests check none leaks into output).
    pub fn issued_service_account_tokens(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.user.service_account().is_some())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Resolves a bearer token, or `401 Unauthorized`.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        store: &Store,
        clock: &Clock,
    ) -> Result<UserInfo, ApiError> {
        let token = token.ok_or_else(ApiError::unauthorized)?;
        let record = self
            .lock()
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        if let Some(expires) = record.expires
            && clock.now() >= expires
        {
            return Err(ApiError::unauthorized());
        }
        for binding in &record.bound_to {
            let alive = store
                .get(&binding.key)
                .is_some_and(|o| o["metadata"]["uid"].as_str() == Some(binding.uid.as_str()));
            if !alive {
                return Err(ApiError::unauthorized());
            }
        }
        Ok(record.user)
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

fn new_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!("{prefix}.{}", hex::encode(bytes))
}

/// Pulls the bearer token out of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
