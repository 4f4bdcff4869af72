//! The live target: play a vector over real WebSocket connections against a running
//! server, and drive what no client can through the server's test control channel
//! ([`crate::control`]).
//!
//! With the channel (every server the runner starts itself), each vector begins with a
//! `reset`: a fresh engine seeded with the vector's seed, a memory store holding the
//! vector's records, the host clock at the first step's time, and the host calls the
//! vector answers itself held. Then per step:
//!
//! - client inputs go over sockets: `open` writes the vector's upgrade request (its
//!   headers, from a loopback source address per vector peer: 10.0.0.1 → 127.0.0.1,
//!   the next peer → 127.0.0.2, ...), `text`/`json`/`binary`/`pong`/`closed` are frames;
//! - `command`, `completed` and `backpressure` go through the channel (a command's
//!   result and every held call come back as events and are compared with the expected
//!   `commandResult` and `call` actions), as do inputs for connections no client ever
//!   opened;
//! - time: a vector without `timeout` inputs runs on a **frozen** host clock set to each
//!   step's virtual time, so timestamps and token expiry are exact; a vector with them
//!   runs on the host's **real timers**: steps are played at their virtual times in
//!   real time, and expected frames (and pings) must arrive within `live.toleranceMs`
//!   of their step's time, not before. A gap longer than [`JUMP_MS`] is bridged by
//!   moving the host clock forward (the host re-arms its timer, which then fires at
//!   once), so 30-second deadlines take no 30 seconds.
//!
//! Without the channel (`--live-url` against any demo deployment) only demo vectors
//! that need nothing but sockets run, with times normalised and client ids mapped.
//!
//! Frames are compared as JSON values after mapping the server's client ids (learned
//! from welcome frames) back to the vector's; frames nobody expected fail the vector
//! (when the next read on that connection happens, or in a quiet period at the end).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use conformance_core::{compact, Step, StepInput, Vector};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::control::{Control, CLIENT_ID_HEADER};
use crate::wsclient::{self, Item, Upgrade, WsConn};

/// Fields whose values depend on the wall clock (normalised when the clock runs).
const TIME_FIELDS: &[&str] = &["timestamp", "createdAt", "updatedAt"];

/// How long to listen for stray frames after the last step.
const QUIET: Duration = Duration::from_millis(150);

/// Pause after a step nobody can observe (no expected frame), so the server has
/// processed it before the next step.
const SETTLE: Duration = Duration::from_millis(25);

/// Gaps between timer steps longer than this are bridged by moving the host clock.
pub const JUMP_MS: u64 = 1500;

/// On real timers, a host clock this far ahead of a step's time is set back to it.
pub const DRIFT_MS: u64 = 20;

/// A server to play vectors against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its address.
    pub addr: SocketAddr,
    /// Its test control channel, if enabled.
    pub control: Option<Control>,
}

impl Target {
    /// A target at `ws://HOST:PORT` (probes the test control channel).
    pub async fn connect(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("live runner: only ws:// URLs are supported, got {url}"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let addr = tokio::net::lookup_host(hostport)
            .await?
            .next()
            .ok_or_else(|| anyhow!("cannot resolve {hostport}"))?;
        let control = Control::probe(addr).await?;
        Ok(Target { addr, control })
    }
}

/// What one connection should receive in a step, in order.
#[derive(Debug, Clone, PartialEq)]
enum Exp {
    Frame(Value),
    Ping,
    Close(u16, String),
}

struct Conn {
    ws: Option<WsConn>,
    /// Closed by the server (close frame received) or by us.
    closed: bool,
    /// The client id the server gave it (from its welcome frame).
    actual_id: Option<String>,
}

/// Per-vector state.
struct Session<'a> {
    target: &'a Target,
    conns: BTreeMap<u64, Conn>,
    /// actual id → vector id
    to_vector: HashMap<String, String>,
    /// vector id → actual id
    to_actual: HashMap<String, String>,
    /// vector peer → loopback source address
    peers: HashMap<String, IpAddr>,
    /// Events fetched from the channel, not matched yet.
    events: Vec<Value>,
    /// Real timers (else a frozen clock).
    timers: bool,
    /// The host clock read `base_at` at `base`.
    base_at: u64,
    base: Instant,
    /// loopback source address → vector peer (in command results)
    peer_names: HashMap<String, String>,
    hold_store: bool,
    wait: Duration,
    tolerance: Duration,
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
                if from != to && s.contains(from.as_str()) {
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

impl Session<'_> {
    fn normalize(&self, v: &mut Value) {
        if self.target.control.is_none() || self.timers {
            normalize_time(v);
        }
    }

    /// Outgoing frame text with vector client ids replaced by the real ones.
    fn outgoing(&self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) if self.to_actual.iter().any(|(a, b)| a != b) => {
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

    /// A received value in comparable form (ids and peers mapped back, times
    /// normalised).
    fn incoming_value(&self, mut v: Value) -> Value {
        map_substrings(&mut v, &self.to_vector);
        map_strings(&mut v, &self.peer_names);
        self.normalize(&mut v);
        v
    }

    /// An expected value in comparable form.
    fn expected_value(&self, v: &Value) -> Value {
        let mut v = v.clone();
        self.normalize(&mut v);
        v
    }

    /// The host clock's reading now (virtual time).
    fn virtual_now(&self) -> u64 {
        self.base_at + self.base.elapsed().as_millis() as u64
    }

    async fn set_clock(&mut self, at: u64) -> anyhow::Result<()> {
        let c = self.control()?;
        c.post("clock", json!({"at": at, "frozen": !self.timers}))
            .await?;
        self.base_at = at;
        self.base = Instant::now();
        Ok(())
    }

    fn control(&self) -> anyhow::Result<&Control> {
        self.target
            .control
            .as_ref()
            .ok_or_else(|| anyhow!("this server has no test control channel"))
    }

    /// The loopback address standing in for a vector peer.
    fn source(&mut self, peer: &str) -> IpAddr {
        let n = self.peers.len() as u8;
        let ip = *self
            .peers
            .entry(peer.to_string())
            .or_insert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + n)));
        self.peer_names.insert(ip.to_string(), peer.to_string());
        ip
    }
}

/// Play one vector. Returns the problems found (empty = pass).
pub async fn run_vector(target: &Target, v: &Vector) -> Vec<String> {
    let live = v.live.as_ref();
    let timers = v
        .steps
        .iter()
        .any(|s| matches!(s.input, StepInput::Timeout));
    let at0 = v.steps.first().map_or(0, |s| s.at);
    let mut s = Session {
        target,
        conns: BTreeMap::new(),
        to_vector: HashMap::new(),
        to_actual: HashMap::new(),
        peers: HashMap::new(),
        events: Vec::new(),
        timers,
        base_at: at0,
        base: Instant::now(),
        peer_names: HashMap::new(),
        hold_store: !v.auto_store,
        wait: Duration::from_millis(live.map_or(2000, |l| l.wait_ms)),
        tolerance: Duration::from_millis(live.and_then(|l| l.tolerance_ms).unwrap_or(200)),
    };
    let mut problems = Vec::new();
    if let Some(c) = &target.control {
        let reset = json!({
            "seed": v.seed,
            "clock": {"at": at0, "frozen": !timers},
            "store": v.store.clone().unwrap_or_default(),
            "hold": {"guard": true, "store": s.hold_store},
        });
        if let Err(e) = c.post("reset", reset).await {
            return vec![format!("reset: {e:#}")];
        }
        s.base = Instant::now();
    }
    for (i, step) in v.steps.iter().enumerate() {
        if let Err(e) = play_step(&mut s, i, step, &mut problems).await {
            problems.push(format!("step {i}: {e:#}"));
        }
        if !problems.is_empty() {
            break;
        }
    }
    if problems.is_empty() {
        // Nothing else may arrive (one quiet period shared by all connections).
        let quiet_until = Instant::now() + QUIET;
        let ids: Vec<u64> = s.conns.keys().copied().collect();
        for id in ids {
            let c = s.conns.get_mut(&id).expect("present");
            if c.closed {
                continue;
            }
            if let Some(ws) = c.ws.as_mut() {
                if let Some(extra) = ws.next(quiet_until).await {
                    problems.push(format!(
                        "conn {id}: unexpected {} after the last step",
                        describe(&extra)
                    ));
                }
            }
        }
        if let Some(c) = &target.control {
            match c.events(0, Duration::ZERO).await {
                Ok(extra) if !extra.is_empty() || !s.events.is_empty() => problems.push(format!(
                    "unexpected host calls or command results after the last step: {}",
                    compact(&Value::Array([s.events.clone(), extra].concat()))
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("events: {e:#}")),
            }
        }
    }
    for c in s.conns.values_mut() {
        if let Some(ws) = c.ws.take() {
            if !c.closed {
                let _ = ws.close(Some(1000)).await;
            }
        }
    }
    problems
}

fn describe(item: &Item) -> String {
    match item {
        Item::Text(t) => format!("frame {t}"),
        Item::Binary(b) => format!("binary frame {}", String::from_utf8_lossy(b)),
        Item::Ping => "ping".into(),
        Item::Pong => "pong".into(),
        Item::Close(code, reason) => format!(
            "close {} {reason}",
            code.map_or("(no code)".into(), |c| c.to_string())
        ),
        Item::End(e) => format!("end of connection ({e})"),
    }
}

/// Which actions of a step the runner checks, sorted by where they show up.
#[derive(Default)]
struct Expected {
    conns: BTreeMap<u64, Vec<Exp>>,
    accept: Option<Option<String>>,
    reject: Option<(u16, Value)>,
    /// Expected events: held calls and command results, in action order.
    events: Vec<Value>,
}

fn expected(s: &Session<'_>, step: &Step) -> Expected {
    let mut e = Expected::default();
    for a in &step.expect {
        let conn = a["conn"].as_u64().unwrap_or_default();
        match a["action"].as_str().unwrap_or_default() {
            "send" => e
                .conns
                .entry(conn)
                .or_default()
                .push(Exp::Frame(a["frame"]["data"].clone())),
            "sendMany" => {
                for c in a["conns"].as_array().into_iter().flatten() {
                    e.conns
                        .entry(c.as_u64().unwrap_or_default())
                        .or_default()
                        .push(Exp::Frame(a["frame"]["data"].clone()));
                }
            }
            "close" => e.conns.entry(conn).or_default().push(Exp::Close(
                a["code"].as_u64().unwrap_or_default() as u16,
                a["reason"].as_str().unwrap_or_default().to_string(),
            )),
            "ping" => e.conns.entry(conn).or_default().push(Exp::Ping),
            "accept" => e.accept = Some(a["protocol"].as_str().map(str::to_string)),
            "reject" => {
                e.reject = Some((
                    a["status"].as_u64().unwrap_or_default() as u16,
                    a["body"].clone(),
                ))
            }
            "call" if s.target.control.is_some() => {
                let held = match a["request"]["kind"].as_str() {
                    Some("guard" | "message" | "hook" | "intercept") => true,
                    Some("store") => s.hold_store,
                    _ => false,
                };
                if held {
                    e.events.push(a.clone());
                }
            }
            "commandResult" if s.target.control.is_some() => e.events.push(a.clone()),
            _ => {}
        }
    }
    e
}

async fn play_step(
    s: &mut Session<'_>,
    i: usize,
    step: &Step,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let exp = expected(s, step);
    // Time.
    if s.target.control.is_some() {
        if s.timers {
            let now = s.virtual_now();
            if step.at > now + JUMP_MS || now > step.at + DRIFT_MS {
                // A long gap, or the host clock ran ahead of the vector (a slow step):
                // the clock reads the step's time again (timers re-armed from it).
                s.set_clock(step.at).await?;
            } else if step.at > now {
                // Frames this step expects must not be here before their time.
                let early = step.at.saturating_sub(s.tolerance.as_millis() as u64);
                if early > now {
                    tokio::time::sleep(Duration::from_millis(early - now)).await;
                }
                for conn in exp.conns.keys() {
                    if let Some(ws) = s.conns.get_mut(conn).and_then(|c| c.ws.as_mut()) {
                        if let Some(item) = ws.next(Instant::now()).await {
                            problems.push(format!(
                                "step {i} conn {conn}: {} arrived more than {} ms before {}",
                                describe(&item),
                                s.tolerance.as_millis(),
                                step.at
                            ));
                            return Ok(());
                        }
                    }
                }
                let now = s.virtual_now();
                if step.at > now {
                    tokio::time::sleep(Duration::from_millis(step.at - now)).await;
                }
            }
        } else if step.at != s.base_at {
            s.set_clock(step.at).await?;
        }
    }

    // The input.
    match &step.input {
        StepInput::Open { conn, request } => {
            let mut path = request.path.clone();
            if !request.query.is_empty() {
                path.push('?');
                path.push_str(&request.query);
            }
            let mut headers = request.headers.clone();
            if s.target.control.is_some() {
                // The vector's own client id (empty: generated by the engine from the
                // seed), so frames and commands that name clients are exact.
                headers.push((CLIENT_ID_HEADER.into(), request.client_id.clone()));
            }
            let source = Some(s.source(&request.peer));
            let wait = s.wait.max(Duration::from_secs(5));
            match wsclient::upgrade(s.target.addr, source, &path, &headers, wait).await? {
                Upgrade::Accepted(ws, protocol) => {
                    match &exp.accept {
                        Some(want) if *want == protocol => {}
                        Some(want) => problems.push(format!(
                            "step {i}: accepted with subprotocol {protocol:?}, expected {want:?}"
                        )),
                        None => problems.push(format!(
                            "step {i}: upgrade accepted, expected a rejection {:?}",
                            exp.reject
                                .as_ref()
                                .map(|r| format!("{} {}", r.0, compact(&r.1)))
                        )),
                    }
                    s.conns.insert(
                        *conn,
                        Conn {
                            ws: Some(ws),
                            closed: false,
                            actual_id: None,
                        },
                    );
                }
                Upgrade::Refused(status, body) => {
                    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).into_owned())
                    });
                    match &exp.reject {
                        Some((st, want)) if *st == status && *want == body => {}
                        Some((st, want)) => problems.push(format!(
                            "step {i}: rejected with {status} {body}, expected {st} {want}"
                        )),
                        None => problems.push(format!(
                            "step {i}: upgrade rejected with {status} {body}, expected accept"
                        )),
                    }
                }
            }
        }
        StepInput::Text { conn, .. } | StepInput::Json { conn, .. } => {
            let text = step.input.frame_text().unwrap_or_default();
            match open_conn(s, *conn) {
                Some(ws) => ws.text(&s.outgoing(&text)).await?,
                None => inject(s, *conn, json!({"kind": "text", "text": text})).await?,
            }
        }
        StepInput::Binary { conn, base64 } => {
            let bytes = STANDARD.decode(base64.as_bytes())?;
            let bytes = match String::from_utf8(bytes.clone()) {
                Ok(t) => s.outgoing(&t).into_bytes(),
                Err(_) => bytes,
            };
            if let Some(ws) = open_conn(s, *conn) {
                ws.binary(&bytes).await?;
            }
        }
        StepInput::Pong { conn } => match open_conn(s, *conn) {
            Some(ws) => ws.pong().await?,
            None => inject(s, *conn, json!({"kind": "pong"})).await?,
        },
        StepInput::Closed { conn, code } => {
            if !s.conns.contains_key(conn) {
                inject(s, *conn, json!({"kind": "closed", "code": code})).await?;
            } else {
                let wait = s.wait;
                let c = s.conns.get_mut(conn).expect("present");
                if !c.closed {
                    c.closed = true;
                    if let Some(ws) = c.ws.as_mut() {
                        ws.close(*code).await?;
                        // Wait for the server's close echo, so the server has seen the
                        // close before the next step acts on it.
                        let deadline = Instant::now() + wait;
                        while let Some(item) = ws.next(deadline).await {
                            if matches!(item, Item::Close(..) | Item::End(_)) {
                                break;
                            }
                        }
                        tokio::time::sleep(SETTLE).await;
                    }
                }
            }
        }
        StepInput::Backpressure { conn, buffered } => {
            inject(
                s,
                *conn,
                json!({"kind": "backpressure", "buffered": buffered}),
            )
            .await?
        }
        StepInput::Command { tag, command } => {
            s.control()?
                .post(
                    "command",
                    json!({"tag": tag, "command": compact(&serde_json::to_value(command)?)}),
                )
                .await?;
        }
        StepInput::Completed { op, result } => {
            s.control()?
                .post(
                    "complete",
                    json!({"op": op, "result": compact(&serde_json::to_value(result)?)}),
                )
                .await?;
        }
        StepInput::Timeout => {}
        StepInput::Evict => {
            // Hosts that are never evicted answer `{"evicted": false}` and carry on.
            s.control()?.post("evict", json!({})).await?;
        }
    }

    // What the clients see, per connection and in order, within the wait.
    if exp.conns.is_empty() && exp.events.is_empty() {
        tokio::time::sleep(SETTLE).await;
    }
    let deadline = Instant::now()
        + if s.timers {
            s.wait.max(s.tolerance)
        } else {
            s.wait
        };
    for (conn, items) in &exp.conns {
        read_conn(s, i, *conn, items, deadline, problems).await;
    }
    if !exp.events.is_empty() {
        check_events(s, i, &exp.events, deadline, problems).await?;
    }
    Ok(())
}

/// The connection's socket when a client can still use it.
fn open_conn<'a>(s: &'a Session<'_>, conn: u64) -> Option<&'a WsConn> {
    s.conns
        .get(&conn)
        .filter(|c| !c.closed)
        .and_then(|c| c.ws.as_ref())
}

/// Feed a host report for a connection through the channel: an open connection is
/// named by its client id; one no client opened gets an id the host never assigned. A
/// connection the server already closed gets nothing (a real client cannot send).
async fn inject(s: &Session<'_>, conn: u64, input: Value) -> anyhow::Result<()> {
    let client_id = match s.conns.get(&conn) {
        Some(c) if c.closed => return Ok(()),
        Some(c) => match &c.actual_id {
            Some(id) => Value::String(id.clone()),
            None => bail!("conn {conn} has no client id yet (no welcome frame seen)"),
        },
        None => Value::Null,
    };
    s.control()?
        .post("input", json!({"clientId": client_id, "input": input}))
        .await?;
    Ok(())
}

async fn read_conn(
    s: &mut Session<'_>,
    i: usize,
    conn: u64,
    items: &[Exp],
    deadline: Instant,
    problems: &mut Vec<String>,
) {
    let Some(mut ws) = s.conns.get_mut(&conn).and_then(|c| c.ws.take()) else {
        problems.push(format!(
            "step {i}: frames expected on conn {conn}, which is not open"
        ));
        return;
    };
    let mut closed_now = false;
    for want in items {
        let want_text = match want {
            Exp::Frame(f) => format!("frame {}", compact(&s.expected_value(f))),
            Exp::Ping => "ping".into(),
            Exp::Close(code, reason) => format!("close {code} {reason}"),
        };
        let got = ws.next(deadline).await;
        let Some(got) = got else {
            problems.push(format!(
                "step {i} conn {conn}: nothing within {} ms, expected {want_text}",
                s.wait.as_millis()
            ));
            break;
        };
        match (want, &got) {
            (Exp::Frame(f), Item::Text(t)) => {
                let Ok(value) = serde_json::from_str::<Value>(t) else {
                    problems.push(format!("step {i} conn {conn}: got non-JSON frame {t}"));
                    continue;
                };
                // The welcome: protocol v1 `{type:"connected",clientId}`, or the envelope's
                // `{event:"connected",data:{clientId}}`.
                let welcome = if value["type"] == "connected" {
                    Some((&value["clientId"], &f["clientId"]))
                } else if value["event"] == "connected" {
                    Some((&value["data"]["clientId"], &f["data"]["clientId"]))
                } else {
                    None
                };
                if let Some((actual, vector)) = welcome {
                    if let (Some(actual), Some(vector)) = (actual.as_str(), vector.as_str()) {
                        s.to_vector.insert(actual.into(), vector.into());
                        s.to_actual.insert(vector.into(), actual.into());
                        if let Some(c) = s.conns.get_mut(&conn) {
                            c.actual_id = Some(actual.into());
                        }
                    }
                }
                let got_value = s.incoming_value(value);
                let want_value = s.expected_value(f);
                if got_value != want_value {
                    problems.push(format!(
                        "step {i} conn {conn}: frame differs\n  expected {}\n  actual   {}",
                        compact(&want_value),
                        compact(&got_value)
                    ));
                }
            }
            (Exp::Ping, Item::Ping) => {}
            (Exp::Close(code, reason), Item::Close(Some(c), r)) if c == code && r == reason => {
                closed_now = true;
            }
            (_, other) => {
                if matches!(other, Item::Close(..) | Item::End(_)) {
                    closed_now = true;
                }
                let other = match other {
                    Item::Text(t) => match serde_json::from_str::<Value>(t) {
                        Ok(v) => format!("frame {}", compact(&s.incoming_value(v))),
                        Err(_) => describe(other),
                    },
                    _ => describe(other),
                };
                problems.push(format!(
                    "step {i} conn {conn}: got {other}, expected {want_text}"
                ));
                if closed_now {
                    break;
                }
            }
        }
    }
    let c = s.conns.get_mut(&conn).expect("present");
    if closed_now {
        c.closed = true;
    }
    c.ws = Some(ws);
}

/// Compare the held calls and command results the host reported with the expected
/// `call` and `commandResult` actions (calls in order; deadlines within the tolerance
/// on real timers; connection ids are the host's own and not compared).
async fn check_events(
    s: &mut Session<'_>,
    i: usize,
    want: &[Value],
    deadline: Instant,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    // Other events may come first (a call the next step expects, reported before this
    // step's command result): wait until every wanted event is there or time is up.
    loop {
        let need = crate::control::unmatched(want, &s.events);
        let wait = deadline.saturating_duration_since(Instant::now());
        if need == 0 || wait.is_zero() {
            break;
        }
        let more = s.control()?.events(need, wait).await?;
        if more.is_empty() {
            break;
        }
        s.events.extend(more);
    }
    let tolerance = if s.timers {
        s.tolerance.as_millis() as i64
    } else {
        0
    };
    for w in want {
        let pos = s
            .events
            .iter()
            .position(|e| crate::control::event_matches(w, e));
        let Some(pos) = pos else {
            problems.push(format!(
                "step {i}: the host reported no {} within {} ms",
                compact(w),
                s.wait.as_millis()
            ));
            continue;
        };
        let e = s.events.remove(pos);
        match w["action"].as_str() {
            Some("call") => {
                let got = &e["action"];
                let dl =
                    got["deadline"].as_i64().unwrap_or(0) - w["deadline"].as_i64().unwrap_or(0);
                let request = s.incoming_value(got["request"].clone());
                if got["op"] != w["op"]
                    || request != s.expected_value(&w["request"])
                    || dl.abs() > tolerance
                {
                    problems.push(format!(
                        "step {i}: host call differs\n  expected {}\n  actual   {}",
                        compact(w),
                        compact(got)
                    ));
                }
            }
            _ => {
                let got = s.incoming_value(e["result"].clone());
                let want_value = s.expected_value(&w["result"]);
                if got != want_value {
                    problems.push(format!(
                        "step {i}: command {} result differs\n  expected {}\n  actual   {}",
                        w["tag"],
                        compact(&want_value),
                        compact(&got)
                    ));
                }
            }
        }
    }
    Ok(())
}
