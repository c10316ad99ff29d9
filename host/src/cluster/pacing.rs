//! Client-side rate limiting for every API request of a process: a token
//! bucket (`--qps`, `--burst`) shared by the caller's client and every
//! temporary identity's client, and a backoff that holds all requests back
//! after the server answers 429 or 5xx. A fleet run issues many requests at
//! once; the API server must not feel it.
//!
//! Requests the server turned away are sent again ([`Resend`]) once the hold
//! is over: a 429 whatever the verb (Priority and Fairness and the in-flight
//! limit refuse before any handler runs, so nothing happened), and a read
//! whose 5xx carries `Retry-After` (the server saying "later"). A write that
//! met a 5xx may have happened, and a 5xx without `Retry-After` is no
//! promise: their callers see the error.

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

/// How many times one request is sent again after being turned away.
const RESENDS: u32 = 5;

/// The retry policy: sends again what the server turned away without acting
/// on it (see the module's doc). It adds no wait of its own: the resend goes
/// back through the [`Paced`] layer, which holds it until the backoff the
/// refusal started is over.
#[derive(Debug, Clone)]
pub struct Resend {
    left: u32,
}

impl Default for Resend {
    fn default() -> Resend {
        Resend { left: RESENDS }
    }
}

impl Resend {
    /// Whether an answer to a `method` request is worth sending again.
    fn worth_it(method: &http::Method, status: u16, retry_after: bool) -> bool {
        status == 429 || (status >= 500 && retry_after && method == http::Method::GET)
    }
}

impl<Res, E> tower::retry::Policy<http::Request<kube::client::Body>, http::Response<Res>, E>
    for Resend
{
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        request: &mut http::Request<kube::client::Body>,
        result: &mut Result<http::Response<Res>, E>,
    ) -> Option<Self::Future> {
        let answer = result.as_ref().ok()?;
        let status = answer.status().as_u16();
        let retry_after = answer.headers().contains_key(http::header::RETRY_AFTER);
        if self.left == 0 || !Resend::worth_it(request.method(), status, retry_after) {
            return None;
        }
        self.left -= 1;
        tracing::debug!(
            "sending {} {} again after a {status}",
            request.method(),
            request.uri().path()
        );
        Some(std::future::ready(()))
    }

    fn clone_request(
        &mut self,
        request: &http::Request<kube::client::Body>,
    ) -> Option<http::Request<kube::client::Body>> {
        // A streamed body cannot be sent twice; such a request is not retried.
        let body = request.body().try_clone()?;
        let mut copy = http::Request::new(body);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// Requests waiting for the paced layer, per client (kube's own queue is as
/// deep).
const QUEUE: usize = 1024;

/// Builds a client from `config`; when a pacer is given, paced, and sending
/// again what the server turned away ([`Resend`]).
pub fn client(
    config: kube::Config,
    pacer: Option<std::sync::Arc<Pacer>>,
) -> Result<kube::Client, super::ClusterError> {
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| super::ClusterError::Config(e.to_string()))?;
    Ok(match pacer {
        // The retry layer needs a service it can clone: the buffer is one.
        Some(p) => builder
            .with_layer(&PaceLayer(p))
            .with_layer(&tower::buffer::BufferLayer::new(QUEUE))
            .with_layer(&tower::retry::RetryLayer::new(Resend::default()))
            .build(),
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

    /// Sends `method` through the stack [`client`] builds, over a server
    /// that answers with `script` in turn (then 200), each with `Retry-After:
    /// 0` when its flag says; returns the final status and how many requests
    /// reached the server.
    async fn through(method: http::Method, script: &[(u16, bool)]) -> (u16, usize) {
        use tower::ServiceExt;
        let script = std::sync::Arc::new(Mutex::new(script.to_vec()));
        let seen = std::sync::Arc::new(Mutex::new(0usize));
        let server = {
            let (script, seen) = (script.clone(), seen.clone());
            tower::service_fn(move |req: http::Request<kube::client::Body>| {
                let (script, seen) = (script.clone(), seen.clone());
                async move {
                    let body = req.into_body().collect_bytes().await.unwrap();
                    assert_eq!(&body[..], b"{}", "a resend carries the same body");
                    *seen.lock().unwrap() += 1;
                    let mut script = script.lock().unwrap();
                    let (status, later) = if script.is_empty() {
                        (200, false)
                    } else {
                        script.remove(0)
                    };
                    let mut answer = http::Response::new(String::new());
                    *answer.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    if later {
                        answer
                            .headers_mut()
                            .insert(http::header::RETRY_AFTER, "0".parse().unwrap());
                    }
                    Ok::<_, std::convert::Infallible>(answer)
                }
            })
        };
        let pacer = std::sync::Arc::new(Pacer::new(Pacing::new(1000.0, 100).unwrap()));
        let stack = tower::ServiceBuilder::new()
            .layer(tower::retry::RetryLayer::new(Resend::default()))
            .layer(tower::buffer::BufferLayer::new(QUEUE))
            .layer(PaceLayer(pacer.clone()))
            .service(server);
        let mut request = http::Request::new(kube::client::Body::from(b"{}".to_vec()));
        *request.method_mut() = method;
        let answer = stack.oneshot(request).await.unwrap();
        let seen = *seen.lock().unwrap();
        // Every resend waited for a token like any request.
        assert_eq!(
            pacer.counts().0 as usize,
            seen,
            "a resend bypassed the pacer"
        );
        (answer.status().as_u16(), seen)
    }

    #[tokio::test]
    async fn what_the_server_turned_away_is_sent_again_and_a_failed_write_is_not() {
        // A 429 is sent again whatever the verb: the server did nothing.
        let (m, get) = (http::Method::POST, http::Method::GET);
        assert_eq!(through(m, &[(429, true), (429, false)]).await, (200, 3));
        assert_eq!(through(http::Method::PATCH, &[(429, true)]).await, (200, 2));
        // A read whose 5xx says "later" is sent again; a write is not (it may
        // have happened), nor a read the server gave no such word for.
        assert_eq!(
            through(get.clone(), &[(503, true), (500, true)]).await,
            (200, 3)
        );
        assert_eq!(through(http::Method::POST, &[(503, true)]).await, (503, 1));
        assert_eq!(
            through(http::Method::DELETE, &[(504, true)]).await,
            (504, 1)
        );
        assert_eq!(through(get.clone(), &[(500, false)]).await, (500, 1));
        // Other answers are the caller's to read.
        assert_eq!(through(get.clone(), &[(404, true)]).await, (404, 1));
        // A server that keeps refusing gets RESENDS more tries, then the caller sees it.
        let always = [(429, true); 20];
        assert_eq!(through(get, &always).await, (429, RESENDS as usize + 1));
    }

    #[test]
    fn bad_limits_are_refused_with_the_flag() {
        assert!(Pacing::new(0.0, 1).unwrap_err().contains("--qps"));
        assert!(Pacing::new(f64::NAN, 1).is_err());
        assert!(Pacing::new(1.0, 0).unwrap_err().contains("--burst"));
    }
}
