//! The simulator's clock: wall time plus an offset tests can advance, so that
//! token expiry can be observed without waiting ten minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::jiff::{Timestamp, Unit};

/// Shared, advanceable clock.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// The simulated now.
    pub fn now(&self) -> Timestamp {
        let offset = self.0.load(Ordering::Relaxed);
        let now = Timestamp::now();
        now.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(offset))
            .unwrap_or(now)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.0.fetch_add(secs, Ordering::Relaxed);
    }

    /// `now()` as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
    pub fn now_rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

/// RFC 3339 with whole seconds, as `metav1.Time` serialises.
pub fn rfc3339(ts: Timestamp) -> String {
    let ts = ts.round(Unit::Second).unwrap_or(ts);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
