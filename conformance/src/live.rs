//! The live target: play vectors over real WebSocket connections against a running
//! server (tokio + tokio-tungstenite).
//!
//! Only vectors with a `live` section run here; they use the config of a deployment the
//! server serves (`demo` = `examples/demo.json`) and only inputs a client can produce
//! (upgrades, frames, pongs and closes). Real time cannot be virtualised, so:
//!
//! - `timestamp`, `createdAt` and `updatedAt` fields are normalised away on both sides;
//! - client ids are random on a real server: the id in each welcome frame is mapped to
//!   the vector's id, in frames received and in frames sent (e.g. `direct.to`);
//! - each step waits up to `live.waitMs` for the frames it expects, per connection and
//!   in order; frames nobody expected fail the vector (checked when the next step reads,
//!   and after a short quiet period at the end);
//! - actions a client cannot see (host calls, pings, command results, deadlines) are
//!   not compared.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use conformance_core::{compact, StepInput, Vector};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Fields whose values depend on the wall clock.
const TIME_FIELDS: &[&str] = &["timestamp", "createdAt", "updatedAt"];

/// How long to listen for stray frames after the last step.
const QUIET: Duration = Duration::from_millis(150);

/// Pause after a step nobody can observe (no expected frame), so the server has
/// processed it before the next step.
const SETTLE: Duration = Duration::from_millis(25);

struct Conn {
    ws: Option<Ws>,
    /// Closed by the server (close frame received) or by us.
    closed: bool,
}

/// Per-vector state: connections and the client id mapping.
#[derive(Default)]
struct Session {
    conns: BTreeMap<u64, Conn>,
    /// actual id → vector id
    to_vector: HashMap<String, String>,
    /// vector id → actual id
    to_actual: HashMap<String, String>,
}

/// What one connection should receive in a step.
#[derive(Debug, Default)]
struct Expected {
    frames: Vec<Value>,
    close: Option<(u16, String)>,
}

/// Replace time-dependent fields anywhere in a value.
fn normalize_time(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if TIME_FIELDS.contains(&k.as_str()) {
                    *x = Value::String("<time>".into());
                } else {
                    normalize_time(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_time),
        _ => {}
    }
}

/// Replace every occurrence of a key of `map` inside string values (real client ids
/// are long random strings, so substrings are safe; error messages quote them).
fn map_substrings(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            for (from, to) in map {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Object(m) => m.values_mut().for_each(|x| map_substrings(x, map)),
        Value::Array(a) => a.iter_mut().for_each(|x| map_substrings(x, map)),
        _ => {}
    }
}

/// Replace string values found in `map` (exact matches only).
fn map_strings(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(r) = map.get(s.as_str()) {
                *s = r.clone();
            }
        }
        Value::Object(m) => m.values_mut().for_each(|x| map_strings(x, map)),
        Value::Array(a) => a.iter_mut().for_each(|x| map_strings(x, map)),
        _ => {}
    }
}

impl Session {
    /// Outgoing frame text with vector client ids replaced by the real ones.
    fn outgoing(&self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) if !self.to_actual.is_empty() => {
                let before = compact(&v);
                map_strings(&mut v, &self.to_actual);
                let after = compact(&v);
                if before == after {
                    text.to_string()
                } else {
                    after
                }
            }
            _ => text.to_string(),
        }
    }

    /// A received frame in comparable form (ids mapped back, times normalised).
    fn incoming(&mut self, text: &str, expected: Option<&Value>) -> Value {
        let Ok(mut v) = serde_json::from_str::<Value>(text) else {
            return Value::String(format!("(not JSON) {text}"));
        };
        // Learn the mapping from the welcome frame.
        if v["type"] == "connected" {
            if let (Some(actual), Some(want)) = (
                v["clientId"].as_str(),
                expected.and_then(|e| e["clientId"].as_str()),
            ) {
                self.to_vector.insert(actual.to_string(), want.to_string());
                self.to_actual.insert(want.to_string(), actual.to_string());
            }
        }
        map_substrings(&mut v, &self.to_vector);
        normalize_time(&mut v);
        v
    }
}

/// An expected frame in comparable form. Frames are compared as JSON values (key order
/// is not compared live: records come from each host's own store; the in-process and
/// wasm targets compare bytes).
fn expected_value(v: &Value) -> Value {
    let mut v = v.clone();
    normalize_time(&mut v);
    v
}

/// Play one vector against `base_url` (e.g. `ws://127.0.0.1:3001`). Returns the
/// problems found (empty = pass).
pub async fn run_vector(base_url: &str, v: &Vector) -> Vec<String> {
    let wait = Duration::from_millis(v.live.as_ref().map_or(2000, |l| l.wait_ms));
    let mut s = Session::default();
    let mut problems = Vec::new();
    for (i, step) in v.steps.iter().enumerate() {
        if let Err(e) = play_step(base_url, &mut s, i, step, wait, &mut problems).await {
            problems.push(format!("step {i}: {e}"));
        }
        if !problems.is_empty() {
            break;
        }
    }
    if problems.is_empty() {
        // Nothing else may arrive (one quiet period shared by all connections).
        let quiet_until = Instant::now() + QUIET;
        for (id, c) in s.conns.iter_mut().filter(|(_, c)| !c.closed) {
            if let Some(ws) = c.ws.as_mut() {
                if let Some(extra) = next_data(ws, quiet_until).await {
                    problems.push(format!(
                        "conn {id}: unexpected frame after the last step: {extra}"
                    ));
                }
            }
        }
    }
    for c in s.conns.values_mut() {
        if let Some(mut ws) = c.ws.take() {
            if !c.closed {
                let _ = ws.close(None).await;
            }
        }
    }
    problems
}

/// Send a WebSocket upgrade request that is expected to be refused, over a plain TCP
/// connection, and read the complete HTTP response: `(status, body)`. The body is read
/// up to its `Content-Length` (or the end of the stream), within `wait`. A `101`
/// answer is returned with an empty body and the connection dropped.
async fn refused_upgrade(
    req: &tokio_tungstenite::tungstenite::handshake::client::Request,
    wait: Duration,
) -> anyhow::Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let uri = req.uri();
    if uri.scheme_str() != Some("ws") {
        bail!("live runner: only ws:// URLs are supported, got {uri}");
    }
    let host = uri.host().context("URL without a host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().context("non-ASCII header value")?);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");

    let deadline = Instant::now() + wait.max(Duration::from_secs(5));
    let io = async {
        let mut stream = TcpStream::connect((host, port)).await?;
        stream.write_all(head.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = resp.parse(&buf)? {
                let status = resp.code.unwrap_or_default();
                if status == 101 {
                    return Ok((status, Vec::new()));
                }
                let length = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    });
                loop {
                    if length.is_some_and(|l| buf.len() >= head_len + l) {
                        break;
                    }
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let end = length.map_or(buf.len(), |l| (head_len + l).min(buf.len()));
                return Ok((status, buf[head_len..end].to_vec()));
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed before a complete HTTP response");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout_at(deadline, io)
        .await
        .map_err(|_| anyhow!("no complete HTTP response to the upgrade within {wait:?}"))?
}

/// Next data frame (text or binary, as text) or close frame (as `close <code> <reason>`),
/// skipping pings/pongs; `None` on timeout or end of stream.
async fn next_data(ws: &mut Ws, deadline: Instant) -> Option<String> {
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Some(format!("(socket error) {e}")),
            Ok(None) | Err(_) => return None,
        };
        match msg {
            Message::Text(t) => return Some(t.as_str().to_string()),
            Message::Binary(b) => return Some(String::from_utf8_lossy(&b).into_owned()),
            Message::Close(f) => {
                return Some(match f {
                    Some(f) => format!("close {} {}", u16::from(f.code), f.reason.as_str()),
                    None => "close (no code)".into(),
                })
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        }
    }
}

async fn play_step(
    base_url: &str,
    s: &mut Session,
    i: usize,
    step: &conformance_core::Step,
    wait: Duration,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    // What each connection should see.
    let mut expected: BTreeMap<u64, Expected> = BTreeMap::new();
    let mut accept: Option<(u64, Option<String>)> = None;
    let mut reject: Option<(u64, u16, Value)> = None;
    for a in &step.expect {
        match a["action"].as_str().unwrap_or_default() {
            "send" => {
                let conn = a["conn"].as_u64().unwrap_or_default();
                expected
                    .entry(conn)
                    .or_default()
                    .frames
                    .push(a["frame"]["data"].clone());
            }
            "sendMany" => {
                for c in a["conns"].as_array().into_iter().flatten() {
                    let conn = c.as_u64().unwrap_or_default();
                    expected
                        .entry(conn)
                        .or_default()
                        .frames
                        .push(a["frame"]["data"].clone());
                }
            }
            "close" => {
                let conn = a["conn"].as_u64().unwrap_or_default();
                expected.entry(conn).or_default().close = Some((
                    a["code"].as_u64().unwrap_or_default() as u16,
                    a["reason"].as_str().unwrap_or_default().to_string(),
                ));
            }
            "accept" => {
                accept = Some((
                    a["conn"].as_u64().unwrap_or_default(),
                    a["protocol"].as_str().map(str::to_string),
                ))
            }
            "reject" => {
                reject = Some((
                    a["conn"].as_u64().unwrap_or_default(),
                    a["status"].as_u64().unwrap_or_default() as u16,
                    a["body"].clone(),
                ))
            }
            _ => {} // call, ping, commandResult: not visible to clients
        }
    }

    match &step.input {
        StepInput::Open { conn, request } => {
            let mut url = format!("{base_url}{}", request.path);
            if !request.query.is_empty() {
                url.push('?');
                url.push_str(&request.query);
            }
            let mut req = url.as_str().into_client_request()?;
            for (k, val) in &request.headers {
                let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse()?;
                req.headers_mut().append(name, HeaderValue::from_str(val)?);
            }
            if let Some((_, st, want)) = &reject {
                // A refused upgrade: read the whole response ourselves. tungstenite's
                // handshake error carries only the body bytes that arrived with the
                // headers, and some servers (workerd) write the body separately.
                let (status, body) = refused_upgrade(&req, wait).await?;
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if status == 101 {
                    problems.push(format!(
                        "step {i}: upgrade accepted, expected a rejection ({st} {want})"
                    ));
                } else if !(*st == status && *want == body) {
                    problems.push(format!(
                        "step {i}: rejected with {status} {body}, expected {st} {want}"
                    ));
                }
                return Ok(());
            }
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, resp)) => {
                    let got = resp
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_string);
                    match &accept {
                        Some((_, want)) if *want == got => {}
                        Some((_, want)) => problems.push(format!(
                            "step {i}: accepted with subprotocol {got:?}, expected {want:?}"
                        )),
                        None => problems.push(format!(
                            "step {i}: upgrade accepted, expected a rejection {:?}",
                            reject.as_ref().map(|r| (r.1, r.2.to_string()))
                        )),
                    }
                    s.conns.insert(
                        *conn,
                        Conn {
                            ws: Some(ws),
                            closed: false,
                        },
                    );
                }
                Err(WsError::Http(resp)) => {
                    let status = resp.status().as_u16();
                    let body: Value = resp
                        .body()
                        .as_deref()
                        .and_then(|b| serde_json::from_slice(b).ok())
                        .unwrap_or(Value::Null);
                    match &reject {
                        Some((_, st, want)) if *st == status && *want == body => {}
                        Some((_, st, want)) => problems.push(format!(
                            "step {i}: rejected with {status} {body}, expected {st} {want}"
                        )),
                        None => problems.push(format!(
                            "step {i}: upgrade rejected with {status} {body}, expected accept"
                        )),
                    }
                    return Ok(());
                }
                Err(e) => bail!("connecting: {e}"),
            }
        }
        StepInput::Text { conn, .. } | StepInput::Json { conn, .. } => {
            let text = s.outgoing(&step.input.frame_text().unwrap_or_default());
            send(s, *conn, Message::text(text)).await?;
        }
        StepInput::Binary { conn, base64 } => {
            let bytes = STANDARD.decode(base64.as_bytes())?;
            let text = String::from_utf8(bytes.clone())
                .ok()
                .map(|t| s.outgoing(&t).into_bytes());
            send(s, *conn, Message::binary(text.unwrap_or(bytes))).await?;
        }
        StepInput::Pong { conn } => send(s, *conn, Message::Pong(Default::default())).await?,
        StepInput::Closed { conn, code } => {
            let c = s
                .conns
                .get_mut(conn)
                .ok_or_else(|| anyhow!("conn {conn} was never opened"))?;
            if !c.closed {
                c.closed = true;
                if let Some(ws) = c.ws.as_mut() {
                    let frame = code.map(|code| CloseFrame {
                        code: CloseCode::from(code),
                        reason: "".into(),
                    });
                    ws.close(frame).await.context("closing")?;
                    // Wait for the server's close echo, so the server has seen the close
                    // before the next step acts on it.
                    let deadline = Instant::now() + wait;
                    while let Some(m) = next_data(ws, deadline).await {
                        if m.starts_with("close") || m.starts_with("(socket error)") {
                            break;
                        }
                    }
                    tokio::time::sleep(SETTLE).await;
                }
            }
        }
        other => bail!("input {other:?} cannot be played live"),
    }

    // Read what each connection should receive, in order, within the wait.
    if expected.is_empty() {
        tokio::time::sleep(SETTLE).await;
    }
    let deadline = Instant::now() + wait;
    for (conn, exp) in expected {
        let Some(c) = s.conns.get_mut(&conn) else {
            problems.push(format!(
                "step {i}: frames expected on conn {conn}, which is not open"
            ));
            continue;
        };
        let Some(mut ws) = c.ws.take() else {
            problems.push(format!("step {i}: frames expected on closed conn {conn}"));
            continue;
        };
        let mut closed_now = false;
        for want in &exp.frames {
            let got = next_data(&mut ws, deadline).await;
            let want_value = expected_value(want);
            let want_text = compact(&want_value);
            match got {
                Some(g) if g.starts_with("close ") => {
                    problems.push(format!(
                        "step {i} conn {conn}: got {g}, expected frame {want_text}"
                    ));
                    closed_now = true;
                    break;
                }
                Some(g) => {
                    let hint = (want["type"] == "connected").then_some(want);
                    let got_value = s.incoming(&g, hint);
                    if got_value != want_value {
                        problems.push(format!(
                            "step {i} conn {conn}: frame differs\n  expected {want_text}\n  actual   {}",
                            compact(&got_value)
                        ));
                    }
                }
                None => problems.push(format!(
                    "step {i} conn {conn}: no frame within {} ms, expected {want_text}",
                    wait.as_millis()
                )),
            }
        }
        if let (Some((code, reason)), false) = (&exp.close, closed_now) {
            match next_data(&mut ws, deadline).await {
                Some(g) if g == format!("close {code} {reason}") => closed_now = true,
                Some(g) => {
                    let g = if g.starts_with("close ") {
                        g
                    } else {
                        compact(&s.incoming(&g, None))
                    };
                    problems.push(format!(
                        "step {i} conn {conn}: got {g}, expected close {code} {reason}"
                    ));
                }
                None => problems.push(format!(
                    "step {i} conn {conn}: no close within {} ms, expected close {code} {reason}",
                    wait.as_millis()
                )),
            }
        }
        let c = s.conns.get_mut(&conn).expect("present");
        if closed_now {
            c.closed = true;
        }
        c.ws = Some(ws);
    }
    Ok(())
}

async fn send(s: &mut Session, conn: u64, msg: Message) -> anyhow::Result<()> {
    let c = s
        .conns
        .get_mut(&conn)
        .ok_or_else(|| anyhow!("conn {conn} is not open"))?;
    if c.closed {
        // The server closed it; a real client cannot send any more. The vector's
        // expectation (nothing happens) holds trivially.
        return Ok(());
    }
    let ws =
        c.ws.as_mut()
            .ok_or_else(|| anyhow!("conn {conn} is gone"))?;
    ws.send(msg)
        .await
        .with_context(|| format!("sending on conn {conn}"))
}

/// A `switchboard` server started for the live target, killed on drop.
pub struct NativeServer {
    child: Child,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// Where its stdout/stderr go (kept after the server stops, for diagnosis).
    pub log: PathBuf,
}

impl std::fmt::Debug for NativeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeServer")
            .field("url", &self.url)
            .finish()
    }
}

impl NativeServer {
    /// Start `bin serve --config <config> --listen 127.0.0.1:<free port> --memory` and
    /// wait until it accepts TCP connections.
    pub fn start(bin: &Path, config: &Path) -> anyhow::Result<NativeServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("switchboard-conformance-{port}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(&addr)
            .arg("--memory")
            // The demo's defaults, whatever the caller's environment says.
            .env_remove("SWITCHBOARD_JWT_SECRET")
            .env_remove("SWITCHBOARD_ADMIN_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = NativeServer {
            child,
            url: format!("ws://{addr}"),
            log,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening; log: {}",
                    bin.display(),
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("{} did not listen on {addr} within 20 s", bin.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The native host's binary: `$SWITCHBOARD_BIN`, else `<target>/debug/switchboard`.
pub fn native_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_dir().join("target"));
    target.join("debug/switchboard")
}

/// Whether the native host package (`host-native/`) exists in this checkout.
pub fn native_host_present() -> bool {
    crate::workspace_dir()
        .join("host-native/Cargo.toml")
        .exists()
}
