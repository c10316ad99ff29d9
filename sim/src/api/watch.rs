//! Watch streams: newline-delimited watch events from a resourceVersion (or
//! the current state), bookmarks, the server-side timeout, `410 Expired` as an
//! in-stream ERROR event, and injected connection drops.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::select::Selector;
use super::{Call, Shared};
use crate::status::ApiError;
use crate::store::{Event, Kind};

type Chunk = Result<Bytes, std::io::Error>;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch response.
pub(super) fn serve(
    shared: &Arc<Shared>,
    call: &Call,
    kind: Kind,
    ns: Option<&str>,
) -> Result<Response, ApiError> {
    let labels = Selector::labels(call.query.get("labelSelector").unwrap_or(""))?;
    let fields = Selector::fields(call.query.get("fieldSelector").unwrap_or(""))?;
    let from = match call.query.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let bookmarks = call.query.flag("allowWatchBookmarks");
    let max = shared.config.max_watch_timeout;
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(max, |s| Duration::from_secs(s).min(max));
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let start = shared.store.watch(kind, ns, from);
    let shared = shared.clone();
    let drop_after = shared.faults.knobs().drop_watch_after;
    let namespace = ns.map(String::from);
    tokio::spawn(async move {
        let (backlog, events) = match start {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Ok(line("ERROR", &e.to_status()))).await;
                return;
            }
        };
        pump(
            shared,
            tx,
            backlog,
            events,
            Filter {
                namespace,
                labels,
                fields,
            },
            bookmarks,
            timeout,
            drop_after,
            kind,
        )
        .await;
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

struct Filter {
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    fn accepts(&self, e: &Event) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| e.key.namespace == ns)
            && self.labels.matches_labels(&e.object)
            && self.fields.matches_fields(&e.object)
    }
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Chunk>,
    backlog: Vec<Event>,
    mut events: broadcast::Receiver<Event>,
    filter: Filter,
    bookmarks: bool,
    timeout: Duration,
    drop_after: Option<usize>,
    kind: Kind,
) {
    let mut dropped = shared.faults.0.drop_watches.subscribe();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(shared.config.bookmark_interval);
    tick.reset();
    let mut sent = 0usize;
    let mut last_rv = backlog
        .iter()
        .map(|e| e.rv)
        .max()
        .unwrap_or_else(|| shared.store.resource_version());
    let key_kind = kind;
    let cut = |tx: &mpsc::Sender<Chunk>| {
        let _ = tx.try_send(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "watch stream dropped (injected fault)",
        )));
    };
    for e in backlog.into_iter().filter(|e| filter.accepts(e)) {
        if drop_after.is_some_and(|n| sent >= n) {
            cut(&tx);
            return;
        }
        if tx.send(Ok(line(e.kind.as_str(), &e.object))).await.is_err() {
            return;
        }
        sent += 1;
    }
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = dropped.changed() => { cut(&tx); return; }
            _ = tick.tick(), if bookmarks => {
                let mark = json!({"kind": key_kind.kind(), "apiVersion": key_kind.api_version(),
                    "metadata": {"resourceVersion": last_rv.max(shared.store.resource_version()).to_string()}});
                if tx.send(Ok(line("BOOKMARK", &mark))).await.is_err() { return; }
            }
            event = events.recv() => match event {
                Ok(e) if e.key.kind == key_kind && filter.accepts(&e) => {
                    if drop_after.is_some_and(|n| sent >= n) { cut(&tx); return; }
                    last_rv = e.rv;
                    if tx.send(Ok(line(e.kind.as_str(), &e.object))).await.is_err() { return; }
                    sent += 1;
                }
                Ok(e) => { last_rv = last_rv.max(e.rv); }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(Ok(line("ERROR", &ApiError::expired(last_rv, shared.store.resource_version()).to_status()))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
