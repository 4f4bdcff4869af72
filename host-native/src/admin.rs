//! The admin API under `/admin/`, protected by the admin key
//! (`Authorization: Bearer KEY` or `X-Admin-Key: KEY`).
//!
//! Commands are the engine's server API: request bodies are deserialized straight into
//! [`engine::Command`] with the command name taken from the path.
//!
//! | request | engine command / store operation |
//! | --- | --- |
//! | `GET /admin/info` | `serverInfo` |
//! | `GET /admin/clients` | `clients` |
//! | `GET /admin/rooms` | `rooms` |
//! | `GET /admin/metrics` | `metrics` (engine counters as JSON) |
//! | `POST /admin/publish` `{channel, data}` | `publish` |
//! | `POST /admin/broadcast` `{message, filter?}` | `broadcast` |
//! | `POST /admin/send` `{clientId, message}` | `sendTo` |
//! | `POST /admin/disconnect` `{clientId, reason?}`, `DELETE /admin/clients/{clientId}` | `disconnect` |
//! | `POST /admin/command` `{"command": ..., ...}` | any command |
//! | `POST /admin/rooms` `{room, description?, capacity?, metadata?}` | `createRoom` |
//! | `GET /admin/rooms/{room}` | `roomInfo` |
//! | `DELETE /admin/rooms/{room}` | `deleteRoom` |
//! | `POST /admin/rooms/{room}/members` `{clientId}` | `joinRoom` |
//! | `DELETE /admin/rooms/{room}/members/{clientId}` | `leaveRoom` |
//! | `POST /admin/rooms/{room}/send` `{message, exceptClientId?}` | `sendToRoom` |
//! | `GET /admin/clients/{clientId}` | `clientInfo` |
//! | `GET /admin/resources/{r}?limit=&cursor=&filter=` | store `list` |
//! | `GET /admin/resources/{r}/{id}` | store `get` |
//! | `POST /admin/resources/{r}` (record) | `insert` → 201 `{record, delivered}` |
//! | `PATCH`/`PUT /admin/resources/{r}/{id}` (fields) | `update` → 200 `{record, delivered}` |
//! | `DELETE /admin/resources/{r}/{id}` | `delete` → 200 `{record, delivered}` (the removed record) |
//!
//! Resource writes are the engine's `insert`/`update`/`delete` commands: the engine
//! shapes the record (id, timestamps), validates it against the resource's schema,
//! asks the store through a host call and fans the change out, exactly as for a
//! socket write but as a trusted caller (no roles, write guards or host guards). The
//! admin API sees protected fields; subscribers never do. Reads go to the store
//! directly.
//!
//! Errors are JSON `{"code", "message"}` with the protocol's error codes, and the HTTP
//! status that fits the code ([`status_for`]): 400 `VALIDATION_ERROR`/`INVALID_MESSAGE`,
//! 404 `NOT_FOUND`/`RESOURCE_NOT_FOUND`, 409 `VALIDATION_ERROR` for an id that exists,
//! 503 `UNAVAILABLE`, 504 `TIMEOUT` (the write's outcome is then unknown).

use std::sync::Arc;

use engine::{Command, CommandError, ErrorCode, StoreErrorKind, StoreOutcome, StoreRequest};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::response::{json_error, json_value, status_for, truncate, Body};
use crate::state::AppState;

/// Answer one `/admin/...` request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let (endpoint, resp) = route(&state, req).await;
    state
        .metrics
        .admin_request(endpoint, resp.status().as_u16());
    resp
}

/// Whether the request carries the admin key (`Authorization: Bearer KEY` or `X-Admin-Key`).
pub(crate) fn authorized(state: &AppState, req: &Request<Incoming>) -> bool {
    let h = req.headers();
    // RFC 9110 §11.1: the scheme is case-insensitive (`Bearer`, `bearer`, `BEARER`).
    let bearer = h
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim_start().split_once([' ', '\t'])?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        });
    let header = h.get("x-admin-key").and_then(|v| v.to_str().ok());
    [bearer, header]
        .into_iter()
        .flatten()
        .any(|k| constant_time_eq(k.trim().as_bytes(), state.admin_key.as_bytes()))
}

/// Compare without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

async fn route(state: &AppState, req: Request<Incoming>) -> (&'static str, Response<Body>) {
    if !authorized(state, &req) {
        return (
            "unauthorized",
            json_error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "the admin API needs the admin key (Authorization: Bearer KEY or X-Admin-Key)",
            ),
        );
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<String> = path
        .trim_start_matches("/admin")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["info"]) => ("info", command(state, Command::ServerInfo).await),
        (&Method::GET, ["clients"]) => ("clients", command(state, Command::Clients).await),
        (&Method::GET, ["rooms"]) => ("rooms", command(state, Command::Rooms).await),
        (&Method::GET, ["metrics"]) => ("metrics", command(state, Command::Metrics).await),
        (&Method::POST, [name @ ("publish" | "broadcast" | "send" | "disconnect")]) => {
            let tag = match *name {
                "send" => "sendTo",
                other => other,
            };
            let endpoint = match *name {
                "publish" => "publish",
                "broadcast" => "broadcast",
                "send" => "send",
                _ => "disconnect",
            };
            (endpoint, body_command(state, req, Some(tag)).await)
        }
        (&Method::POST, ["command"]) => ("command", body_command(state, req, None).await),
        (&Method::GET, ["channels", channel, "history"]) => (
            "history",
            match history_command(channel, &query) {
                Ok(cmd) => command(state, cmd).await,
                Err(m) => json_error(StatusCode::BAD_REQUEST, ErrorCode::InvalidMessage, m),
            },
        ),
        (&Method::GET, ["channels", channel, "presence"]) => {
            let cmd = Command::Presence {
                channel: (*channel).to_string(),
                tenant: tenant_param(&query),
            };
            ("presence", command(state, cmd).await)
        }
        (&Method::GET, ["channels", channel, "presence", "stats"]) => {
            let cmd = Command::PresenceStats {
                channel: (*channel).to_string(),
                tenant: tenant_param(&query),
            };
            ("presence", command(state, cmd).await)
        }
        // Room control (PROTOCOL.md §18, §20.7).
        (&Method::POST, ["rooms"]) => ("rooms", body_command(state, req, Some("createRoom")).await),
        (&Method::GET, ["rooms", room]) => {
            let cmd = Command::RoomInfo {
                room: (*room).to_string(),
                tenant: tenant_param(&query),
            };
            ("rooms", command(state, cmd).await)
        }
        (&Method::DELETE, ["rooms", room]) => {
            let cmd = Command::DeleteRoom {
                room: (*room).to_string(),
                tenant: tenant_param(&query),
            };
            ("rooms", command(state, cmd).await)
        }
        (&Method::POST, ["rooms", room, "members"]) => (
            "rooms",
            body_command_with(state, req, Some("joinRoom"), &[("room", room)]).await,
        ),
        (&Method::DELETE, ["rooms", room, "members", client_id]) => {
            let cmd = Command::LeaveRoom {
                client_id: (*client_id).to_string(),
                room: (*room).to_string(),
            };
            ("rooms", command(state, cmd).await)
        }
        (&Method::POST, ["rooms", room, "send"]) => (
            "rooms",
            body_command_with(state, req, Some("sendToRoom"), &[("room", room)]).await,
        ),
        (&Method::GET, ["clients", client_id]) => {
            let cmd = Command::ClientInfo {
                client_id: (*client_id).to_string(),
            };
            ("clients", command(state, cmd).await)
        }
        (&Method::DELETE, ["clients", client_id]) => {
            let cmd = Command::Disconnect {
                client_id: (*client_id).to_string(),
                reason: None,
            };
            ("disconnect", command(state, cmd).await)
        }
        // Writes are engine commands (the engine answers RESOURCE_NOT_FOUND itself).
        (&Method::POST, ["resources", resource]) => (
            "resources",
            insert(state, (*resource).to_string(), req).await,
        ),
        (&Method::PATCH | &Method::PUT, ["resources", resource, id]) => (
            "resources",
            update(state, (*resource).to_string(), (*id).to_string(), req).await,
        ),
        (&Method::DELETE, ["resources", resource, id]) => (
            "resources",
            delete(state, (*resource).to_string(), (*id).to_string()).await,
        ),
        (_, ["resources", resource, rest @ ..]) => {
            if !state.resources.contains(*resource) {
                return (
                    "resources",
                    json_error(
                        StatusCode::NOT_FOUND,
                        ErrorCode::ResourceNotFound,
                        format!("resource `{}` is not configured", truncate(resource, 128)),
                    ),
                );
            }
            let resource = (*resource).to_string();
            let resp = match (&method, rest) {
                (&Method::GET, []) => list(state, resource, &query).await,
                (&Method::GET, [id]) => get(state, resource, (*id).to_string()).await,
                _ => not_found(&method, &path),
            };
            ("resources", resp)
        }
        _ => ("unknown", not_found(&method, &path)),
    }
}

/// `?tenant=NAME`: the tenant whose room or channel a path names (PROTOCOL.md §20.8).
fn tenant_param(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.into_owned())
}

/// `GET /admin/channels/{channel}/history?limit=N&sinceOffset=N&sinceEpoch=E&reverse=true&tenant=T`.
fn history_command(channel: &str, query: &str) -> Result<Command, String> {
    let bad = |m: String| m;
    let (mut limit, mut offset, mut epoch, mut reverse) = (None, None, None, false);
    let mut tenant = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "limit" => {
                limit = Some(v.parse::<u64>().map_err(|_| {
                    bad(format!("`limit` must be a non-negative integer, got `{v}`"))
                })?)
            }
            "sinceOffset" => {
                offset = Some(v.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "`sinceOffset` must be a non-negative integer, got `{v}`"
                    ))
                })?)
            }
            "sinceEpoch" => epoch = Some(v.into_owned()),
            "tenant" => tenant = Some(v.into_owned()),
            "reverse" => match &*v {
                "true" | "1" => reverse = true,
                "false" | "0" => reverse = false,
                _ => return Err(bad(format!("`reverse` must be true or false, got `{v}`"))),
            },
            other => {
                return Err(bad(format!(
                    "unknown parameter `{}` (limit, sinceOffset, sinceEpoch, reverse, tenant)",
                    truncate(other, 50)
                )))
            }
        }
    }
    let since = match (offset, epoch) {
        (Some(offset), Some(epoch)) => Some(engine::broker::Since { offset, epoch }),
        (None, None) => None,
        _ => return Err(bad("`sinceOffset` and `sinceEpoch` go together".to_string())),
    };
    Ok(Command::History {
        channel: channel.to_string(),
        limit,
        since,
        reverse,
        tenant,
    })
}

fn not_found(method: &Method, path: &str) -> Response<Body> {
    json_error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no admin endpoint {method} {}", truncate(path, 200)),
    )
}

/// Run a command and turn its result into a 200 response.
/// Run a command and answer its JSON result (200) or error.
pub(crate) async fn command(state: &AppState, cmd: Command) -> Response<Body> {
    run(state, cmd, StatusCode::OK).await
}

/// Run a command: its JSON result with status `ok`, or its error as JSON with the
/// status that fits ([`command_status`]).
async fn run(state: &AppState, cmd: Command, ok: StatusCode) -> Response<Body> {
    match state.actor.command(cmd).await {
        Some(Ok(v)) => json_value(ok, &v),
        Some(Err(e)) => json_error(command_status(&e), e.code, e.message),
        None => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "server is stopping",
        ),
    }
}

/// Read a JSON object body (empty body = `{}`).
async fn read_object(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<Map<String, Value>, Response<Body>> {
    let bytes = match Limited::new(req.into_body(), state.max_admin_body)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!(
                    "request bodies are limited to {} bytes",
                    state.max_admin_body
                ),
            ))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(json_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            "the body must be a JSON object",
        )),
        Err(e) => Err(json_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Deserialize the body into a command (`tag` sets its `command` field).
async fn body_command(
    state: &AppState,
    req: Request<Incoming>,
    tag: Option<&str>,
) -> Response<Body> {
    body_command_with(state, req, tag, &[]).await
}

/// [`body_command`] with fields taken from the path (they win over the body's).
async fn body_command_with(
    state: &AppState,
    req: Request<Incoming>,
    tag: Option<&str>,
    fields: &[(&str, &str)],
) -> Response<Body> {
    let mut body = match read_object(state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(tag) = tag {
        body.insert("command".into(), Value::String(tag.into()));
    }
    for (k, v) in fields {
        body.insert((*k).into(), Value::String((*v).into()));
    }
    match serde_path_to_error::deserialize::<_, Command>(Value::Object(body)) {
        Ok(cmd) => command(state, cmd).await,
        Err(e) => {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let msg = if path == "." {
                msg
            } else {
                format!("{path}: {msg}")
            };
            json_error(StatusCode::BAD_REQUEST, ErrorCode::InvalidMessage, msg)
        }
    }
}

/// A failed storage operation as the engine answers it to clients
/// ([`StoreErrorKind::client_error`]; `list`: [`StoreErrorKind::list_client_error`]),
/// with the code's HTTP status, except a conflict (an insert whose id exists): 409.
fn store_error(kind: StoreErrorKind, (code, message): (ErrorCode, &str)) -> Response<Body> {
    let status = match kind {
        StoreErrorKind::Conflict => StatusCode::CONFLICT,
        _ => status_for(code),
    };
    json_error(status, code, message)
}

fn unexpected(outcome: &StoreOutcome) -> Response<Body> {
    tracing::error!(?outcome, "store answered with the wrong outcome kind");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "the storage operation failed",
    )
}

async fn list(state: &AppState, resource: String, query: &str) -> Response<Body> {
    let mut limit = 100usize;
    let mut cursor = None;
    let mut filter = Value::Null;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => limit = n,
                _ => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidMessage,
                        "limit must be a number from 1 to 1000",
                    )
                }
            },
            "cursor" => cursor = Some(v.into_owned()),
            "filter" => match serde_json::from_str::<Value>(&v) {
                Ok(f) if engine::filter::Filter::parse(&f).is_ok() => filter = f,
                _ => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidMessage,
                        "filter must be a JSON filter object",
                    )
                }
            },
            _ => {}
        }
    }
    let req = StoreRequest::List {
        resource,
        filter,
        limit,
        cursor,
    };
    match state.store.run(req).await {
        StoreOutcome::Page { items, cursor } => {
            json_value(StatusCode::OK, &json!({ "items": items, "cursor": cursor }))
        }
        StoreOutcome::Failed(e) => store_error(e.kind, e.kind.list_client_error()),
        other => unexpected(&other),
    }
}

async fn get(state: &AppState, resource: String, id: String) -> Response<Body> {
    match state
        .store
        .run(StoreRequest::Get {
            resource,
            id: id.clone(),
        })
        .await
    {
        StoreOutcome::Record(Some(r)) => json_value(StatusCode::OK, &json!({ "record": r })),
        StoreOutcome::Record(None) => json_error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no record `{}`", truncate(&id, 200)),
        ),
        StoreOutcome::Failed(e) => store_error(e.kind, e.kind.client_error()),
        other => unexpected(&other),
    }
}

/// The HTTP status for a command error: the code's status, except a store conflict
/// (an insert whose id exists), which is 409.
fn command_status(e: &CommandError) -> StatusCode {
    match e.store {
        Some(StoreErrorKind::Conflict) => StatusCode::CONFLICT,
        _ => status_for(e.code),
    }
}

// The resource writes are the engine's `insert`/`update`/`delete` commands, answered
// `{record, delivered}`: the engine shapes and validates the record, calls the store
// and fans the change out.

async fn insert(state: &AppState, resource: String, req: Request<Incoming>) -> Response<Body> {
    match read_object(state, req).await {
        Ok(data) => {
            run(
                state,
                Command::Insert { resource, data },
                StatusCode::CREATED,
            )
            .await
        }
        Err(r) => r,
    }
}

async fn update(
    state: &AppState,
    resource: String,
    id: String,
    req: Request<Incoming>,
) -> Response<Body> {
    match read_object(state, req).await {
        Ok(data) => {
            run(
                state,
                Command::Update { resource, id, data },
                StatusCode::OK,
            )
            .await
        }
        Err(r) => r,
    }
}

async fn delete(state: &AppState, resource: String, id: String) -> Response<Body> {
    run(state, Command::Delete { resource, id }, StatusCode::OK).await
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
