//! `pods/<name>/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`):
//! channel 0 stdin, 1 stdout, 2 stderr, 3 the final `Status` (sent after all
//! output), and in v5 channel 255 to close stdin.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Call, Shared};
use crate::kubelet::{ExecOutcome, ExecProcess};
use crate::status::ApiError;
use crate::store::{Key, Kind};

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

/// Handles an exec request (checks, then the WebSocket upgrade).
pub(super) async fn serve(
    shared: Arc<Shared>,
    call: Call,
    mut parts: axum::http::request::Parts,
) -> Response {
    match prepare(&shared, &call).await {
        Err(e) => e.into_response(),
        Ok((process, command)) => {
            let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(u) => u,
                Err(_) => return ApiError::bad_request("Upgrade request required").into_response(),
            };
            let protocols: Vec<&'static str> = if shared.faults.knobs().exec_v4_only {
                vec![V4]
            } else {
                vec![V5, V4]
            };
            let upgrade = upgrade.protocols(protocols);
            let v5 = upgrade
                .selected_protocol()
                .is_some_and(|p| p.as_bytes() == V5.as_bytes());
            if upgrade.selected_protocol().is_none() {
                return ApiError::bad_request("the client offered none of the supported subprotocols (v5.channel.k8s.io, v4.channel.k8s.io)")
                    .into_response();
            }
            upgrade
                .on_upgrade(move |socket| stream(shared, socket, process, command, v5))
                .into_response()
        }
    }
}

async fn prepare(shared: &Shared, call: &Call) -> Result<(ExecProcess, Vec<String>), ApiError> {
    let pod = shared
        .store
        .get(&Key::new(Kind::Pod, &call.info.namespace, &call.info.name))
        .ok_or_else(|| ApiError::not_found("", "pods", &call.info.name))?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let names = |list: &str| -> Vec<String> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let regular = names("containers");
    let container = match call.query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None if regular.len() == 1 => regular[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                call.info.name,
                regular.join(" ")
            )));
        }
    };
    let known = regular
        .iter()
        .chain(names("initContainers").iter())
        .chain(names("ephemeralContainers").iter())
        .any(|n| *n == container);
    if !known {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {}",
            call.info.name
        )));
    }
    let command = call.query.all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let process = shared
        .kubelet
        .exec(&pod, &container, command.clone())
        .await?;
    Ok((process, command))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

fn exit_status(outcome: &ExecOutcome, command: &[String]) -> Value {
    match outcome {
        ExecOutcome::Exited(0) => json!({"metadata": {}, "status": "Success"}),
        ExecOutcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        ExecOutcome::StartFailed(message) => {
            let mut s = ApiError::internal(format!(
                "error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: {message}: unknown"
            ))
            .to_status();
            if let Some(o) = s.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            s
        }
    }
}

async fn stream(
    shared: Arc<Shared>,
    socket: WebSocket,
    process: ExecProcess,
    command: Vec<String>,
    v5: bool,
) {
    let (mut tx, mut rx) = socket.split();
    let mut dropped = shared.faults.0.drop_execs.subscribe();
    let drop_after = shared.faults.knobs().drop_exec_after_bytes;
    let (mut stdin, mut stdout, mut stderr, mut process) = process.split();
    let mut out_open = true;
    let mut err_open = true;
    let mut buf_out = vec![0u8; 32 * 1024];
    let mut buf_err = vec![0u8; 32 * 1024];
    let mut sent = 0usize;
    while out_open || err_open {
        tokio::select! {
            _ = dropped.changed() => { tracing::warn!("exec stream dropped (injected)"); process.kill(); return; }
            n = stdout.read(&mut buf_out), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => {
                    sent += n;
                    if drop_after.is_some_and(|limit| sent > limit) { process.kill(); return; }
                    if tx.send(frame(1, &buf_out[..n])).await.is_err() { process.kill(); return; }
                }
            },
            n = stderr.read(&mut buf_err), if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => {
                    if tx.send(frame(2, &buf_err[..n])).await.is_err() { process.kill(); return; }
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    0 => if let Some(s) = stdin.as_mut()
                        && s.write_all(&data[1..]).await.is_err()
                    {
                        stdin = None;
                    },
                    255 if v5 && data.get(1) == Some(&0) => { stdin = None; }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: nobody can read the output.
                    process.kill();
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    drop(stdin);
    let outcome = process.wait().await;
    let status = exit_status(&outcome, &command);
    let _ = tx.send(frame(3, status.to_string().as_bytes())).await;
    let _ = tx.send(Message::Close(None)).await;
}
