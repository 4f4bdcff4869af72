//! Compact scenario descriptions and how they become vectors.
//!
//! A scenario lists inputs and declares its intent (error codes, message types, close
//! codes, rejection reasons, limits and behaviours it must show). Building it runs the
//! engine, records every action as the expected output, and then checks the declared
//! intent against that output, the protocol schemas and the vector schema: a recorded
//! output that does not show what the scenario is about is refused, not blessed.

use std::collections::BTreeMap;

use conformance::intent::check_intent;
use conformance_core::{to_expected, Intent, Live, Step, StepInput, Vector};
use engine::UpgradeRequest;
use serde_json::{json, Value};

/// Virtual time of the first step: 2023-11-14T22:13:20.000Z.
pub const T0: u64 = 1_700_000_000_000;

/// A scenario under construction.
#[derive(Debug, Clone)]
pub struct Sc {
    /// `<area>/<stem>`.
    pub name: String,
    desc: String,
    config: Value,
    demo: bool,
    seed: u64,
    store: Option<BTreeMap<String, Vec<Value>>>,
    auto_store: bool,
    intent: Intent,
    steps: Vec<(u64, StepInput)>,
    now: u64,
    tag: u64,
    in_process_reason: Option<String>,
    wait_ms: Option<u64>,
    /// Known engine bug: why, and the corrections (step, wrong text, right text) that
    /// turn the recorded output into the correct one.
    pub known_bug: Option<String>,
    corrections: Vec<(usize, String, String)>,
}

/// The config most in-process vectors use: two API keys, three resources, one room
/// override.
pub fn std_config() -> Value {
    json!({
        "auth": {"apiKeys": {
            "key_admin": {"id": "admin1", "role": "admin", "team": "ops"},
            "key_user": {"id": "u1", "role": "user", "scopes": ["read"]},
            "key_user2": {"id": "u2", "role": "user"}
        }},
        "resources": {
            "messages": {},
            "users": {"protected": ["password"], "auth": ["admin", "user"]},
            "notifications": {"events": ["insert"]}
        },
        "rooms": {"overrides": {"duo": {"maxConnections": 2}}}
    })
}

/// `std_config()` with `patch`'s top-level keys replaced.
pub fn std_with(patch: Value) -> Value {
    let mut c = std_config();
    if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// An upgrade request from peer 10.0.0.1 with client id `c<conn>`.
pub fn request(conn: u64, path: &str, query: &str, headers: &[(&str, &str)]) -> UpgradeRequest {
    UpgradeRequest {
        path: path.into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        peer: "10.0.0.1".into(),
        client_id: format!("c{conn}"),
    }
}

impl Sc {
    /// A scenario `<area>/<stem>` with the standard config at T0.
    pub fn new(name: &str, desc: &str) -> Sc {
        Sc {
            name: name.into(),
            desc: desc.into(),
            config: std_config(),
            demo: false,
            seed: 7,
            store: None,
            auto_store: false,
            intent: Intent::default(),
            steps: Vec::new(),
            now: T0,
            tag: 0,
            in_process_reason: None,
            wait_ms: None,
            known_bug: None,
            corrections: Vec::new(),
        }
    }

    /// Use this engine config (the vector becomes in-process only).
    pub fn cfg(mut self, config: Value) -> Sc {
        self.config = config;
        self.demo = false;
        self
    }

    /// Use the demo deployment's config (live-capable when the inputs allow it).
    pub fn demo(mut self) -> Sc {
        self.config = conformance::demo_engine_config().expect("examples/demo.json");
        self.demo = true;
        self
    }

    /// Seed of the engine's id generator.
    pub fn seed(mut self, seed: u64) -> Sc {
        self.seed = seed;
        self
    }

    /// Seed the memory store with `records` for `resource` (turns `autoStore` on).
    pub fn store(mut self, resource: &str, records: Vec<Value>) -> Sc {
        self.store
            .get_or_insert_with(BTreeMap::new)
            .insert(resource.into(), records);
        self.auto_store = true;
        self
    }

    /// Answer storage calls from the memory store right after each step.
    pub fn auto_store(mut self) -> Sc {
        self.auto_store = true;
        self
    }

    /// Force the vector to be in-process only, with this reason.
    #[allow(dead_code)] // every vector runs live today
    pub fn in_process(mut self, reason: &str) -> Sc {
        self.in_process_reason = Some(reason.into());
        self
    }

    /// How long the live runner waits for each step's frames.
    pub fn wait_ms(mut self, ms: u64) -> Sc {
        self.wait_ms = Some(ms);
        self
    }

    /// The engine gets this vector wrong (a reported engine bug). The recorded output
    /// of step `step` must contain `wrong`; the vector expects `right` instead, so it
    /// fails until the engine is fixed, and the vector is listed in
    /// `conformance/known-failures.json`. Once the engine is fixed, `wrong` no longer
    /// appears and the generator refuses the scenario until this call is removed.
    #[allow(dead_code)] // no scenario records a known engine bug right now
    pub fn known_bug(mut self, reason: &str, step: usize, wrong: &str, right: &str) -> Sc {
        self.known_bug = Some(reason.into());
        self.corrections.push((step, wrong.into(), right.into()));
        self
    }

    /// Move the clock to `T0 + offset` for the following steps.
    pub fn at(mut self, offset: u64) -> Sc {
        self.now = T0 + offset;
        self
    }

    /// Append an input at the current virtual time.
    fn push(mut self, input: StepInput) -> Sc {
        self.steps.push((self.now, input));
        self
    }

    /// Anonymous upgrade on `/` with client id `c<conn>`.
    pub fn open(self, conn: u64) -> Sc {
        self.open_req(conn, request(conn, "/", "", &[]))
    }

    /// Upgrade on `/` with a query string (e.g. `token=key_user`).
    pub fn open_q(self, conn: u64, query: &str) -> Sc {
        self.open_req(conn, request(conn, "/", query, &[]))
    }

    /// Upgrade with a path, query and headers.
    pub fn open_h(self, conn: u64, path: &str, query: &str, headers: &[(&str, &str)]) -> Sc {
        self.open_req(conn, request(conn, path, query, headers))
    }

    /// Upgrade with a full request.
    pub fn open_req(self, conn: u64, request: UpgradeRequest) -> Sc {
        self.push(StepInput::Open { conn, request })
    }

    /// A text frame holding `message` (compact JSON).
    pub fn send(self, conn: u64, message: Value) -> Sc {
        self.push(StepInput::Json { conn, message })
    }

    /// A text frame, verbatim.
    pub fn text(self, conn: u64, text: &str) -> Sc {
        self.push(StepInput::Text {
            conn,
            text: text.into(),
            pad: None,
        })
    }

    /// A text frame whose first `{pad}` becomes `pad` × `x`.
    pub fn padded(self, conn: u64, text: &str, pad: usize) -> Sc {
        self.push(StepInput::Text {
            conn,
            text: text.into(),
            pad: Some(pad),
        })
    }

    /// A binary frame.
    pub fn binary(self, conn: u64, bytes: &[u8]) -> Sc {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.push(StepInput::Binary { conn, base64: b64 })
    }

    /// A WebSocket pong.
    pub fn pong(self, conn: u64) -> Sc {
        self.push(StepInput::Pong { conn })
    }

    /// The connection closed (client close, or the host reporting an executed close).
    pub fn close(self, conn: u64, code: Option<u16>) -> Sc {
        self.push(StepInput::Closed { conn, code })
    }

    /// `Input::Timeout` at the current time.
    /// The server loses its memory (see `StepInput::Evict`).
    pub fn evict(self) -> Sc {
        self.push(StepInput::Evict)
    }

    pub fn timeout(self) -> Sc {
        self.push(StepInput::Timeout)
    }

    /// Move the clock to `T0 + offset` and feed `Timeout`.
    pub fn timeout_at(self, offset: u64) -> Sc {
        self.at(offset).timeout()
    }

    /// Answer host call `op` with a `HostResult` (JSON).
    pub fn complete(self, op: u64, result: Value) -> Sc {
        let result = serde_json::from_value(result).expect("a HostResult");
        self.push(StepInput::Completed { op, result })
    }

    /// A server-API command (JSON); tags count up from 1.
    pub fn cmd(mut self, command: Value) -> Sc {
        self.tag += 1;
        let tag = self.tag;
        let command = serde_json::from_value(command).expect("a Command");
        self.push(StepInput::Command { tag, command })
    }

    /// Report `buffered` outbound bytes for a connection.
    pub fn backpressure(self, conn: u64, buffered: u64) -> Sc {
        self.push(StepInput::Backpressure { conn, buffered })
    }

    /// Intent: these error codes must appear.
    pub fn errors(mut self, codes: &[&str]) -> Sc {
        self.intent
            .errors
            .extend(codes.iter().map(|s| s.to_string()));
        self
    }

    /// Intent: these server message types must appear.
    pub fn types(mut self, types: &[&str]) -> Sc {
        self.intent
            .types
            .extend(types.iter().map(|s| s.to_string()));
        self
    }

    /// Intent: these close codes must appear.
    pub fn closes(mut self, codes: &[u16]) -> Sc {
        self.intent.closes.extend(codes);
        self
    }

    /// Intent: these upgrade rejection reasons must appear.
    pub fn rejects(mut self, reasons: &[&str]) -> Sc {
        self.intent
            .rejects
            .extend(reasons.iter().map(|s| s.to_string()));
        self
    }

    /// Intent: these limits are driven to their edge.
    pub fn limits(mut self, limits: &[&str]) -> Sc {
        self.intent
            .limits
            .extend(limits.iter().map(|s| s.to_string()));
        self
    }

    /// Intent: these behaviours are shown.
    pub fn features(mut self, f: &[&str]) -> Sc {
        self.intent.features.extend(f.iter().map(|s| s.to_string()));
        self
    }

    /// Why the vector cannot run live, or `None` if it can (every vector can: the live
    /// runner starts a server per config and drives the rest through the hosts' test
    /// control channel).
    fn in_process_reason(&self) -> Option<String> {
        self.in_process_reason.clone()
    }

    /// Whether the vector drives time through the host's real timers.
    fn uses_timers(&self) -> bool {
        self.steps
            .iter()
            .any(|(_, i)| matches!(i, StepInput::Timeout))
    }

    /// Whether the recorded outputs change when the deployment is served without its
    /// resource schemas (what a host without JSON Schema validation serves): such a
    /// live vector is not applicable on those hosts; every other one runs there.
    fn depends_on_schemas(
        &self,
        v: &Vector,
        outputs: &[conformance_core::StepOutput],
    ) -> Result<bool, String> {
        let mut lean = v.clone();
        if conformance::without_schemas(&mut lean.config).is_empty() {
            return Ok(false);
        }
        let lean_outputs = conformance_core::run(&lean)?;
        Ok(outputs
            .iter()
            .zip(&lean_outputs)
            .any(|(a, b)| a.actions != b.actions))
    }

    /// Run the engine, record the expectations, check the intent.
    pub fn build(&self) -> Result<Vector, String> {
        let reason = self.in_process_reason();
        let mut v = Vector {
            name: self.name.clone(),
            description: self.desc.clone(),
            config: self.config.clone(),
            seed: self.seed,
            store: self.store.clone(),
            auto_store: self.auto_store,
            intent: self.intent.clone(),
            steps: self
                .steps
                .iter()
                .map(|(at, input)| Step {
                    at: *at,
                    input: input.clone(),
                    expect: Vec::new(),
                    next_timeout: None,
                })
                .collect(),
            live: reason.is_none().then(|| Live {
                deployment: if self.demo { "demo" } else { "vector" }.into(),
                wait_ms: self.wait_ms.unwrap_or(2000),
                tolerance_ms: self.uses_timers().then_some(TIMER_TOLERANCE_MS),
                not_on: Default::default(),
            }),
            in_process_only: reason,
        };
        resolve_epochs(&mut v)?;
        let outputs = conformance_core::run(&v)?;
        let needs_schemas = v.live.is_some() && self.depends_on_schemas(&v, &outputs)?;
        for (i, (step, out)) in v.steps.iter_mut().zip(outputs).enumerate() {
            if let Some(m) = out.misuse {
                return Err(format!("step {i}: API misuse: {m}"));
            }
            if let Some(m) = out.invariant {
                return Err(format!("step {i}: invariant: {m}"));
            }
            step.expect = out.actions.iter().map(|a| to_expected(a)).collect();
            step.next_timeout = out.next_timeout;
        }
        for (step, wrong, right) in &self.corrections {
            let s = v
                .steps
                .get_mut(*step)
                .ok_or_else(|| format!("known bug: no step {step}"))?;
            let mut found = false;
            for a in s.expect.iter_mut() {
                let text = serde_json::to_string(a).map_err(|e| e.to_string())?;
                if text.contains(wrong.as_str()) {
                    found = true;
                    *a = serde_json::from_str(&text.replace(wrong.as_str(), right))
                        .map_err(|e| format!("known bug correction breaks JSON: {e}"))?;
                }
            }
            if !found {
                return Err(format!(
                    "known bug no longer reproduces (step {step} has no `{wrong}`): the engine \
                     was fixed, remove the .known_bug(..) correction and regenerate"
                ));
            }
        }
        if let Some(live) = v.live.as_mut() {
            live.not_on = not_on(&v.steps, needs_schemas);
        }
        let problems = check_intent(&v);
        if !problems.is_empty() {
            return Err(problems.join("\n  "));
        }
        Ok(v)
    }
}

/// The placeholder scenarios write where a stream's epoch goes (it comes from the
/// engine's seeded generator, so it is only known once the engine ran).
pub const EPOCH: &str = "$EPOCH";

/// Replace [`EPOCH`] in the inputs with the first epoch the engine announced (a dry run
/// finds it; epochs are drawn when a stream is created, never from `since`).
fn resolve_epochs(v: &mut Vector) -> Result<(), String> {
    let text = serde_json::to_string(&v.steps).map_err(|e| e.to_string())?;
    if !text.contains(EPOCH) {
        return Ok(());
    }
    let dry = conformance_core::run(v)?;
    let epoch = dry
        .iter()
        .flat_map(|o| o.actions.iter())
        .find_map(|a| {
            let i = a.find("\\\"epoch\\\":\\\"")? + 12;
            let end = a[i..].find('\\')?;
            Some(a[i..i + end].to_string())
        })
        .ok_or("a scenario uses $EPOCH but the engine announced no epoch")?;
    fn subst(v: &mut Value, epoch: &str) {
        match v {
            Value::String(s) if s == EPOCH => *s = epoch.to_string(),
            Value::Array(a) => a.iter_mut().for_each(|x| subst(x, epoch)),
            Value::Object(m) => m.values_mut().for_each(|x| subst(x, epoch)),
            _ => {}
        }
    }
    for step in &mut v.steps {
        let mut input = serde_json::to_value(&step.input).map_err(|e| e.to_string())?;
        subst(&mut input, &epoch);
        step.input = serde_json::from_value(input).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How far a timer vector's frames may arrive from their step's virtual time, live.
pub const TIMER_TOLERANCE_MS: u64 = 200;

/// Hosts whose server-side WebSocket cannot send pings (the host answers the engine's
/// pings itself): vectors that expect a ping or send a pong cannot run there live.
pub const PINGLESS_HOSTS: &[&str] = &["deno", "workerd", "workerd-lean"];

/// Per-host reasons a vector cannot run live. `needs_schemas`: its outputs change when
/// the config's resource schemas are removed, which is what the hosts without JSON
/// Schema validation serve (`conformance::served_config`).
fn not_on(steps: &[conformance_core::Step], needs_schemas: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut opened = std::collections::HashSet::new();
    let mut pings = false;
    for s in steps {
        match &s.input {
            StepInput::Open { conn, .. } => {
                opened.insert(*conn);
            }
            // A client's pong (a pong for a connection nobody opened is injected).
            StepInput::Pong { conn } if opened.contains(conn) => pings = true,
            _ => {}
        }
        pings |= s.expect.iter().any(|a| a["action"] == "ping");
    }
    if pings {
        for h in PINGLESS_HOSTS {
            out.insert(
                h.to_string(),
                "the runtime's server WebSocket cannot send pings or report pongs (Deno.upgradeWebSocket, workerd): the host answers the engine's pings itself, so pings, pongs and heartbeat closes are not observable there".to_string(),
            );
        }
    }
    if needs_schemas {
        for h in conformance::SCHEMALESS_HOSTS {
            out.insert(
                h.to_string(),
                "the lean module has no JSON Schema validation by design (it refuses a config with a resource `schema`, so it serves the config without them), and this vector's outputs depend on the schema; the full module runs it on workerd".into(),
            );
        }
    }
    out
}
