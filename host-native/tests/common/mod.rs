//! Helpers for the end-to-end tests: in-process servers on 127.0.0.1:0, a WebSocket
//! client with bounded waits, and a tiny HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard::config::{apply_env, from_document, Deployment};
use switchboard::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(5);

/// The admin key of the test deployments.
pub const ADMIN: &str = "test-admin";

/// A test deployment: the demo-like base merged with `overrides` (top-level keys replace).
pub fn deployment(overrides: Value) -> Deployment {
    let mut doc = json!({
        "server": {
            "listen": "127.0.0.1:0",
            "store": "memory",
            "adminKey": ADMIN,
            // Short: most tests leave clients that never answer the 1001 close.
            "shutdownTimeoutMs": 300,
        },
        "routes": [{"path": "/"}, {"path": "/ws"}, {"path": "/secure", "scopes": ["vip"]},
                   {"path": "/browser", "origins": ["https://ok.example"]}],
        "auth": {
            "jwt": {"secret": "test-secret"},
            "apiKeys": {
                "key_admin": {"id": "admin1", "role": "admin"},
                "key_user": {"id": "u1", "role": "user"},
            },
        },
        "resources": {"messages": {}, "users": {"auth": ["admin", "user"], "protected": ["password"]}},
    });
    if let (Value::Object(base), Value::Object(over)) = (&mut doc, overrides) {
        for (k, v) in over {
            if k == "server" {
                if let (Some(Value::Object(s)), Value::Object(o)) = (base.get_mut("server"), v) {
                    s.extend(o);
                }
            } else {
                base.insert(k, v);
            }
        }
    }
    apply_env(&mut doc, |_| None);
    from_document(doc).expect("test deployment is valid")
}

/// Start an in-process server.
pub async fn start(overrides: Value) -> RunningServer {
    switchboard::start(deployment(overrides))
        .await
        .expect("server starts")
}

/// A WebSocket client.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connect to `path` (may include a query) with extra headers.
pub async fn try_connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect timed out")
}

/// Connect and read the welcome frame.
pub async fn connect(addr: SocketAddr, path: &str) -> (Ws, Value) {
    let (mut ws, _) = try_connect(addr, path, &[])
        .await
        .expect("upgrade accepted");
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "connected", "{welcome}");
    (ws, welcome)
}

/// Next data frame as JSON (pings are answered by tungstenite and skipped).
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("frame is JSON"),
            Message::Binary(b) => return serde_json::from_slice(&b).expect("frame is JSON"),
            Message::Close(f) => panic!("closed while waiting for a frame: {f:?}"),
            _ => {}
        }
    }
}

/// Next frame of type `ty`, skipping others.
pub async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Nothing arrives within `ms`.
pub async fn assert_silent(ws: &mut Ws, ms: u64) {
    match tokio::time::timeout(Duration::from_millis(ms), ws.next()).await {
        Err(_) => {}
        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
        Ok(other) => panic!("expected silence, got {other:?}"),
    }
}

/// Send a JSON frame.
pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// Send JSON frames in one flush (the server reads them together).
pub async fn send_all(ws: &mut Ws, frames: &[Value]) {
    for v in frames {
        ws.feed(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }
    ws.flush().await.expect("send");
}

/// Read whatever arrives until the server's close frame (within `within`); its code, or
/// `None` when the socket ended without one (a slow consumer's socket may be dropped).
pub async fn close_code_after_reading(ws: &mut Ws, within: Duration) -> Option<u16> {
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the socket closes in time")
}

/// Read until the server's close frame; returns its code and reason. Keeps polling
/// briefly afterwards so tungstenite flushes the close reply.
pub async fn closed(ws: &mut Ws) -> (u16, String) {
    let frame = close_frame(ws).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while ws.next().await.is_some() {}
    })
    .await;
    frame
}

async fn close_frame(ws: &mut Ws) -> (u16, String) {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for the close");
        match next {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("error before the close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    tokio::time::timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await
    .expect("HTTP request timed out")
}

/// An admin API request with the admin key.
pub async fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> HttpResponse {
    let body = body.map(|b| b.to_string());
    http(
        addr,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_deref(),
    )
    .await
}

/// An HS256 token for the test secret.
pub fn jwt(sub: &str, role: &str, scopes: &[&str]) -> String {
    let now = switchboard::clock::wall_now().0 / 1000;
    switchboard::token::mint(
        "test-secret",
        &switchboard::token::TokenSpec {
            sub: sub.into(),
            role: Some(role.into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ttl_secs: 600,
        },
        now,
    )
    .unwrap()
}

/// Read a spawned `switchboard` child's stderr until its `listening on <addr>` log line
/// (start it with `listen = "127.0.0.1:0"` and logging at `info`), then keep draining
/// stderr so the child never blocks on a full pipe. The task returns the whole log
/// once the child closes stderr.
pub async fn listen_addr_from_stderr(
    child: &mut tokio::process::Child,
) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let mut log = String::new();
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.trim().parse::<SocketAddr>().unwrap();
            }
        }
        panic!("server exited before listening:\n{log}");
    })
    .await
    .expect("server did not start in time");
    let rest = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    (addr, rest)
}

/// `switchboard serve --config CONFIG --listen 127.0.0.1:0 --memory ARGS...` in `dir`, with
/// `RUST_LOG=rust_log` and none of the SWITCHBOARD_ secrets or broker from the test's
/// environment: the child (killed when dropped), its address and its stderr (complete
/// once it exits).
pub async fn spawn_serve(
    config: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    rust_log: &str,
) -> (
    tokio::process::Child,
    SocketAddr,
    tokio::task::JoinHandle<String>,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--memory"])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", rust_log)
        .env_remove("SWITCHBOARD_ADMIN_KEY")
        .env_remove("SWITCHBOARD_JWT_SECRET")
        .env_remove("SWITCHBOARD_BROKER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("switchboard starts");
    let (addr, log) = listen_addr_from_stderr(&mut child).await;
    (child, addr, log)
}
