//! Client-side rate limiting for every API request of a process: a token
//! bucket (`--qps`, `--burst`) shared by the caller's client and every
//! temporary identity's client, and a backoff that holds all requests back
//! after the server answers 429 or 5xx. A fleet run issues many requests at
//! once; the API server must not feel it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Sustained requests per second.
    pub qps: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl Pacing {
    /// Checks the limits (the CLI's flags).
    pub fn new(qps: f64, burst: u32) -> Result<Pacing, String> {
        if !(qps.is_finite() && qps > 0.0) {
            return Err(format!(
                "--qps {qps}: give a number of requests per second above 0"
            ));
        }
        if burst == 0 {
            return Err("--burst 0: at least one request must be able to go".into());
        }
        Ok(Pacing { qps, burst })
    }
}

/// The longest the backoff holds requests back.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The first backoff after a 429/5xx without `Retry-After`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// No request goes before this (after a 429/5xx).
    hold_until: Option<Instant>,
    /// The next backoff without `Retry-After`; doubles, resets on success.
    backoff: Duration,
    /// Requests let through, and 429/5xx answers seen (for the run record).
    sent: u64,
    pushed_back: u64,
}

/// The shared state: one per process (per connection).
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    bucket: Mutex<Bucket>,
}

impl Pacer {
    /// A full bucket.
    pub fn new(pacing: Pacing) -> Pacer {
        Pacer {
            pacing,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(pacing.burst),
                last: Instant::now(),
                hold_until: None,
                backoff: FIRST_BACKOFF,
                sent: 0,
                pushed_back: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a token now, or says how long to wait before asking again.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut b = self.lock();
        if let Some(until) = b.hold_until {
            if now < until {
                return Err(until - now);
            }
            b.hold_until = None;
        }
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * self.pacing.qps;
        b.tokens = (b.tokens + refill).min(f64::from(self.pacing.burst));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.sent += 1;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.pacing.qps))
        }
    }

    /// Learns from an answer: 429 and 5xx hold every request back (for
    /// `Retry-After` seconds when the server says, else a doubling backoff).
    pub fn observe(&self, status: u16, retry_after: Option<Duration>, now: Instant) {
        let mut b = self.lock();
        if status == 429 || status >= 500 {
            let wait = retry_after.unwrap_or(b.backoff).min(MAX_BACKOFF);
            b.backoff = (b.backoff * 2).min(MAX_BACKOFF);
            b.pushed_back += 1;
            let until = now + wait;
            b.hold_until = Some(b.hold_until.map_or(until, |h| h.max(until)));
            tracing::debug!("the API server answered {status}; holding requests for {wait:?}");
        } else {
            b.backoff = FIRST_BACKOFF;
        }
    }

    /// Requests let through so far, and 429/5xx answers seen.
    pub fn counts(&self) -> (u64, u64) {
        let b = self.lock();
        (b.sent, b.pushed_back)
    }
}

/// The tower layer that puts a [`Pacer`] in front of a client's stack.
#[derive(Debug, Clone)]
pub struct PaceLayer(pub std::sync::Arc<Pacer>);

impl<S> Layer<S> for PaceLayer {
    type Service = Paced<S>;

    fn layer(&self, inner: S) -> Paced<S> {
        Paced {
            inner,
            pacer: self.0.clone(),
            wait: None,
            permit: false,
        }
    }
}

/// A service that waits for a token before each request (in `poll_ready`:
/// kube's client buffers requests in front of it, so waiting here holds back
/// the queue, not a thread).
pub struct Paced<S> {
    inner: S,
    pacer: std::sync::Arc<Pacer>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    permit: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for Paced<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            if self.permit {
                return self.inner.poll_ready(cx);
            }
            if let Some(sleep) = &mut self.wait {
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.wait = None,
                }
            }
            match self.pacer.try_take(Instant::now()) {
                Ok(()) => self.permit = true,
                Err(delay) => self.wait = Some(Box::pin(tokio::time::sleep(delay))),
            }
        }
    }

    fn call(&mut self, request: http::Request<ReqB>) -> Self::Future {
        self.permit = false;
        let pacer = self.pacer.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            pacer.observe(response.status().as_u16(), retry_after, Instant::now());
            Ok(response)
        })
    }
}

/// Builds a client from `config`, paced when a pacer is given.
pub fn client(
    config: kube::Config,
    pacer: Option<std::sync::Arc<Pacer>>,
) -> Result<kube::Client, super::ClusterError> {
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| super::ClusterError::Config(e.to_string()))?;
    Ok(match pacer {
        Some(p) => builder.with_layer(&PaceLayer(p)).build(),
        None => builder.build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        let pacer = Pacer::new(Pacing::new(10.0, 3).unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(pacer.try_take(t0), Ok(()));
        }
        let wait = pacer.try_take(t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // 100 ms later one token has come back, not more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(pacer.try_take(t1), Ok(()));
        assert!(pacer.try_take(t1).is_err());
        // After a long quiet spell the bucket holds `burst`, never more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(pacer.try_take(t2), Ok(()));
        }
        assert!(pacer.try_take(t2).is_err());
    }

    #[test]
    fn a_429_holds_everything_back_and_the_backoff_doubles() {
        let pacer = Pacer::new(Pacing::new(1000.0, 100).unwrap());
        let t0 = Instant::now();
        pacer.observe(429, None, t0);
        assert_eq!(pacer.try_take(t0).unwrap_err(), FIRST_BACKOFF);
        let t1 = t0 + FIRST_BACKOFF;
        assert_eq!(pacer.try_take(t1), Ok(()));
        pacer.observe(503, None, t1);
        assert_eq!(pacer.try_take(t1).unwrap_err(), FIRST_BACKOFF * 2);
        // Retry-After wins, capped.
        pacer.observe(429, Some(Duration::from_secs(600)), t1);
        assert_eq!(pacer.try_take(t1).unwrap_err(), MAX_BACKOFF);
        // Success resets the backoff.
        pacer.observe(200, None, t1);
        pacer.observe(500, None, t1 + MAX_BACKOFF);
        assert_eq!(pacer.try_take(t1 + MAX_BACKOFF).unwrap_err(), FIRST_BACKOFF);
        assert_eq!(pacer.counts().1, 4);
    }

    #[test]
    fn bad_limits_are_refused_with_the_flag() {
        assert!(Pacing::new(0.0, 1).unwrap_err().contains("--qps"));
        assert!(Pacing::new(f64::NAN, 1).is_err());
        assert!(Pacing::new(1.0, 0).unwrap_err().contains("--burst"));
    }
}
