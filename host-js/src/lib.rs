//! # switchboard-host-js
//!
//! wasm-bindgen exports of the Switchboard engine for the JavaScript hosts in
//! `host-js/js/` (Node, Deno, Bun, Cloudflare Workers). The engine crate stays free of
//! wasm-bindgen; this crate is the only bridge.
//!
//! Every input crosses the JS boundary **once** and returns **one string**: a batch
//! with every action the input produced, the frame texts unescaped after a header
//! line, and the engine's next deadline (format in [`batch`]). Time is always passed
//! in by JavaScript (`Date.now()`); nothing here reads a clock. The only random source
//! is `crypto.getRandomValues`, used by jsonschema's hash-table seeds (`random`).
//!
//! ```js
//! import { initSync, Engine } from "./pkg/switchboard_wasm.js";
//! initSync({ module: wasmBytesOrModule });
//! const engine = new Engine(configJson, seed /* BigInt */, true /* memory store */);
//! const batch = engine.open(Date.now(), 1, JSON.stringify({ path: "/", peer: "127.0.0.1", clientId: "c1" }));
//! ```
//!
//! The crate compiles natively too (`cargo clippy --workspace`, unit tests, the
//! native bench); the wasm-bindgen glue is inert there.

// Unsafe code only where the getrandom backend's ABI demands it (`random`, which allows
// it explicitly); everything public is documented.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod core;
pub mod deployment;
pub mod logs;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[allow(unsafe_code)]
mod random;

use engine::ConnId;
use wasm_bindgen::prelude::*;

use crate::core::{millis, Core};

/// The engine, as a JavaScript class.
#[wasm_bindgen]
pub struct Engine {
    core: Core,
}

/// An address in the module's memory, as JavaScript reads it: wasm32 addresses fit in
/// 32 bits (native builds, which only run the Rust tests, never hand one to JavaScript).
fn wasm_address(at: usize) -> u32 {
    u32::try_from(at).expect("a wasm32 address fits in 32 bits")
}

fn conn(id: f64) -> ConnId {
    ConnId(if id.is_finite() && id > 0.0 {
        id as u64
    } else {
        0
    })
}

#[wasm_bindgen]
impl Engine {
    /// `new Engine(configJson, seed, memoryStore)`: `configJson` holds the engine keys
    /// only (see `loadDeployment`); `seed` (BigInt) seeds generated ids; with
    /// `memoryStore` storage calls are answered inside wasm by the engine's
    /// `MemoryStore`. Throws an `Error` listing every config problem with its path.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, seed: u64, memory_store: bool) -> Result<Engine, JsError> {
        Core::new(config_json, seed, memory_store)
            .map(|core| Engine { core })
            .map_err(|e| JsError::new(&e))
    }

    /// Add records to the in-wasm memory store (`recordsJson`: a JSON array of
    /// records with string ids). The test control channel seeds each vector's store
    /// with it; throws when the engine was created without the memory store.
    #[wasm_bindgen(js_name = seedStore)]
    pub fn seed_store(&mut self, resource: &str, records_json: &str) -> Result<(), JsError> {
        self.core
            .seed_store(resource, records_json)
            .map_err(|e| JsError::new(&e))
    }

    /// Generic entry point: one input as JSON (`{"input":"open"|"frame"|"pong"|
    /// "backpressure"|"closed"|"timeout"|"completed"|"command"|"restore", ...}`).
    pub fn handle(&mut self, now: f64, input_json: &str) -> String {
        self.core.handle_json(millis(now), input_json)
    }

    /// An upgrade request (`{path, query, headers: [[name, value]], peer, clientId}`).
    pub fn open(&mut self, now: f64, conn_id: f64, request_json: &str) -> String {
        match serde_json::from_str(request_json) {
            Ok(request) => self.core.handle(
                millis(now),
                engine::Input::Open {
                    conn: conn(conn_id),
                    request,
                },
            ),
            Err(e) => self
                .core
                .finish(millis(now), Some(format!("bad upgrade request: {e}"))),
        }
    }

    /// A long-polling request on an Engine.IO route (see `servesHttp`): method, the
    /// request as for `open`, and the body bytes (at most `maxPayloadSize + 1`). The
    /// batch carries `respond` actions (`{req, status, headers, body}`), now or later.
    pub fn http(
        &mut self,
        now: f64,
        req: f64,
        method: &str,
        request_json: &str,
        body: &[u8],
    ) -> String {
        match serde_json::from_str(request_json) {
            Ok(request) => self.core.handle(
                millis(now),
                engine::Input::Http {
                    req: req as u64,
                    method: method.to_string(),
                    request,
                    body,
                },
            ),
            Err(e) => self
                .core
                .finish(millis(now), Some(format!("bad HTTP request: {e}"))),
        }
    }

    /// A long-polling request went away before its `respond` action.
    #[wasm_bindgen(js_name = httpAborted)]
    pub fn http_aborted(&mut self, now: f64, req: f64) -> String {
        self.core
            .handle(millis(now), engine::Input::HttpAborted { req: req as u64 })
    }

    /// Whether a plain HTTP request on `path` is the engine's (an Engine.IO route:
    /// long-polling); hand it over with `http`.
    #[wasm_bindgen(js_name = servesHttp)]
    pub fn serves_http(&self, path: &str) -> bool {
        self.core.engine().serves_http(path)
    }

    /// A text frame received as a JS string (Deno, Bun, workerd).
    pub fn frame(&mut self, now: f64, conn_id: f64, text: &str) -> String {
        self.core.handle(
            millis(now),
            engine::Input::Frame {
                conn: conn(conn_id),
                frame: engine::InFrame::Text(text),
            },
        )
    }

    /// A frame received as bytes (Node `ws` Buffers: no UTF-8 decode in JS). Text
    /// frames that are not valid UTF-8 are handed to the engine as binary.
    #[wasm_bindgen(js_name = frameBytes)]
    pub fn frame_bytes(&mut self, now: f64, conn_id: f64, bytes: &[u8], binary: bool) -> String {
        self.core
            .frame_bytes(millis(now), conn(conn_id), bytes, binary)
    }

    /// [`Engine::frame`], its batch finished in wasm memory instead of returned as a
    /// string: the address of the batch view (`src/batch.rs`, "The same batch in wasm
    /// memory"). Read it before the next call into the module.
    #[wasm_bindgen(js_name = frameView)]
    pub fn frame_view(&mut self, now: f64, conn_id: f64, text: &str) -> u32 {
        let at = self.core.handle_view(
            millis(now),
            engine::Input::Frame {
                conn: conn(conn_id),
                frame: engine::InFrame::Text(text),
            },
        );
        wasm_address(at)
    }

    /// [`Engine::frame_bytes`], its batch finished in wasm memory ([`Engine::frame_view`]).
    #[wasm_bindgen(js_name = frameBytesView)]
    pub fn frame_bytes_view(&mut self, now: f64, conn_id: f64, bytes: &[u8], binary: bool) -> u32 {
        let at = self
            .core
            .frame_bytes_view(millis(now), conn(conn_id), bytes, binary);
        wasm_address(at)
    }

    /// The connection ids of the last batch's fan-outs (`OP_SEND_MANY`, in order), as a
    /// `Float64Array`; read it before the next input.
    pub fn recipients(&self) -> Vec<f64> {
        self.core.recipients().to_vec()
    }

    /// A WebSocket pong arrived.
    pub fn pong(&mut self, now: f64, conn_id: f64) -> String {
        self.core.handle(
            millis(now),
            engine::Input::Pong {
                conn: conn(conn_id),
            },
        )
    }

    /// Outbound bytes queued for a connection.
    pub fn backpressure(&mut self, now: f64, conn_id: f64, buffered: f64) -> String {
        self.core.handle(
            millis(now),
            engine::Input::Backpressure {
                conn: conn(conn_id),
                buffered: buffered.max(0.0) as u64,
            },
        )
    }

    /// The socket is gone (client close, error, or after a `close` action).
    pub fn closed(&mut self, now: f64, conn_id: f64, code: Option<u16>) -> String {
        self.core.handle(
            millis(now),
            engine::Input::Closed {
                conn: conn(conn_id),
                code,
            },
        )
    }

    /// The engine's deadline passed.
    pub fn timeout(&mut self, now: f64) -> String {
        self.core.handle(millis(now), engine::Input::Timeout)
    }

    /// Answer a `call` action: `resultJson` is a `HostResult`
    /// (`{"kind":"guard","decision":"allow"}`, `{"kind":"store","inserted":{...}}`, ...).
    pub fn completed(&mut self, now: f64, op: f64, result_json: &str) -> String {
        match serde_json::from_str(result_json) {
            Ok(result) => self.core.handle(
                millis(now),
                engine::Input::Completed {
                    op: engine::OpId(op.max(0.0) as u64),
                    result,
                },
            ),
            Err(e) => self
                .core
                .finish(millis(now), Some(format!("bad host result: {e}"))),
        }
    }

    /// Answer a guard `call` with what the application's guard callback returned
    /// (`valueJson`: `true`, `false`, `null`, `{"decision":...}`, `{"filter":...}`), read
    /// by the engine's rule ([`engine::hostcall::GuardDecision::from_callback_value`]).
    #[wasm_bindgen(js_name = guardCompleted)]
    pub fn guard_completed(&mut self, now: f64, op: f64, value_json: &str) -> String {
        let value = serde_json::from_str(value_json).unwrap_or(serde_json::Value::Bool(false));
        let decision = engine::hostcall::GuardDecision::from_callback_value(&value);
        self.core.handle(
            millis(now),
            engine::Input::Completed {
                op: engine::OpId(op.max(0.0) as u64),
                result: engine::HostResult::Guard(decision),
            },
        )
    }

    /// Say what the host answers: `guard` (a guard callback, or guard calls held by the
    /// test control channel) and `handlers` (application handlers); the engine answers
    /// the other calls itself, with the same texts as on every host.
    #[wasm_bindgen(js_name = setHostCapabilities)]
    pub fn set_host_capabilities(&mut self, guard: bool, handlers: bool) {
        self.core
            .engine_mut()
            .set_host_capabilities(engine::HostCapabilities { guard, handlers });
    }

    /// A server-API command (`{"command":"publish","channel":"news","data":...}`); the
    /// batch carries a `commandResult` with `tag`.
    pub fn command(&mut self, now: f64, tag: f64, command_json: &str) -> String {
        match serde_json::from_str(command_json) {
            Ok(command) => self.core.handle(
                millis(now),
                engine::Input::Command {
                    tag: tag.max(0.0) as u64,
                    command,
                },
            ),
            Err(e) => self
                .core
                .finish(millis(now), Some(format!("bad command: {e}"))),
        }
    }

    /// The connection's state as JSON (for hibernation), or `undefined`.
    pub fn snapshot(&self, conn_id: f64) -> Option<String> {
        self.core.snapshot(conn(conn_id))
    }

    /// Re-create a connection from `snapshot()`'s JSON (no welcome is sent).
    pub fn restore(&mut self, now: f64, conn_id: f64, snapshot_json: &str) -> String {
        self.core.restore(millis(now), conn(conn_id), snapshot_json)
    }

    /// The engine's next deadline (epoch ms), or `undefined`.
    #[wasm_bindgen(js_name = nextTimeout)]
    pub fn next_timeout(&self) -> Option<f64> {
        self.core.engine().poll_timeout().map(|m| m.0 as f64)
    }

    /// Keep stream histories durable: record every change as key/value operations,
    /// taken with `takeStreamOps()` (Durable Object storage).
    #[wasm_bindgen(js_name = setPersistentStreams)]
    pub fn set_persistent_streams(&mut self, on: bool) {
        self.core.engine_mut().set_persistent_streams(on);
    }

    /// The stream storage operations since the last call, as JSON:
    /// `[{"op":"put","key","value"} | {"op":"delete","key"}]`; apply them in order.
    #[wasm_bindgen(js_name = takeStreamOps)]
    pub fn take_stream_ops(&mut self) -> String {
        serde_json::to_string(&self.core.engine_mut().take_stream_ops())
            .unwrap_or_else(|_| "[]".into())
    }

    /// Rebuild stream histories from stored pairs (`[[key, value], ...]` JSON, after an
    /// eviction); returns the keys that could not be read, as a JSON array.
    #[wasm_bindgen(js_name = restoreStreams)]
    pub fn restore_streams(&mut self, pairs_json: &str) -> Result<String, JsError> {
        let pairs: Vec<(String, String)> = serde_json::from_str(pairs_json)
            .map_err(|e| JsError::new(&format!("bad stream pairs: {e}")))?;
        let bad = self.core.engine_mut().restore_streams(&pairs);
        Ok(serde_json::to_string(&bad).unwrap_or_else(|_| "[]".into()))
    }

    /// What a plain-HTTP request with `method` on `path` is for, decided by the engine
    /// as on every host ([`engine::endpoint::Endpoint::of`]): `"testControl"`,
    /// `"polling"`, `"health"`, `"ready"`, `"metrics"`, `"admin"`, `"console"`,
    /// `"serverInfo"` or `"notFound"`.
    pub fn endpoint(&self, method: &str, path: &str) -> String {
        let routes = &self.core.engine().config().routes;
        engine::endpoint::Endpoint::of(routes, method, path)
            .as_str()
            .to_string()
    }
    /// `[over, under]`: report a connection's queued bytes (`backpressure`) when they grow
    /// past `over`, and again when they drain to `under` or less (the engine's
    /// thresholds for `limits.maxBufferedBytes`, the same on every host).
    #[wasm_bindgen(js_name = backpressureThresholds)]
    pub fn backpressure_thresholds(&self) -> Vec<f64> {
        let limit = self.core.engine().config().limits.max_buffered_bytes;
        let t = engine::backpressure::Thresholds::for_limit(limit);
        vec![t.over as f64, t.under as f64]
    }

    /// Open connections (engine view).
    #[wasm_bindgen(js_name = connectionCount)]
    pub fn connection_count(&self) -> u32 {
        self.core.engine().connection_count() as u32
    }

    /// Engine counters as JSON (the `metrics` command's result).
    pub fn metrics(&self) -> String {
        serde_json::to_string(self.core.engine().metrics()).unwrap_or_default()
    }

    /// Engine counters as Prometheus text (native host series names).
    #[wasm_bindgen(js_name = metricsText)]
    pub fn metrics_text(&self) -> String {
        engine::metrics::prometheus::render(self.core.engine().metrics())
    }
}

/// The answer to a handshake the runtime refuses before the engine decides
/// (`missing_key`, `unsupported_version`, `method_not_allowed`, `upgrade_failed`,
/// `draining`, `bad_deployment`, `no_decision`): `{"status", "body", "headers"}` as JSON text, the
/// body valid against `upgrade-rejection.schema.json`. An unknown reason is `no_decision`.
#[wasm_bindgen(js_name = handshakeRefusal)]
pub fn handshake_refusal(reason: &str) -> String {
    use engine::handshake::HandshakeRefusal;
    let r = HandshakeRefusal::from_reason(reason).unwrap_or(HandshakeRefusal::NoDecision);
    refusal_json(r)
}

/// The RFC 6455 checks of an upgrade request before the engine decides (method, key,
/// version): `null` if well-formed, else `{"status", "body", "headers"}` as JSON text.
#[wasm_bindgen(js_name = handshakeCheck)]
pub fn handshake_check(
    method: &str,
    key: Option<String>,
    version: Option<String>,
) -> Option<String> {
    use engine::handshake::HandshakeRefusal;
    let r = HandshakeRefusal::check(method, key.as_deref(), version.as_deref())?;
    Some(refusal_json(r))
}

fn refusal_json(r: engine::handshake::HandshakeRefusal) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({"status": r.status(), "body": r.body(), "headers": headers}).to_string()
}

/// The answer to `GET /readyz` (`{"status", "body"}` as JSON text): 200 `ready`, or 503
/// `draining` while the server drains ([`engine::endpoint::readiness`]).
#[wasm_bindgen(js_name = readiness)]
pub fn readiness(draining: bool) -> String {
    let (status, body) = engine::endpoint::readiness(engine::endpoint::NotReady {
        draining,
        ..Default::default()
    });
    serde_json::json!({"status": status, "body": body.to_string()}).to_string()
}

/// The 404 body for `method` on `path` (JSON text), the same as on every host.
#[wasm_bindgen(js_name = notFound)]
pub fn not_found(method: &str, path: &str) -> String {
    engine::endpoint::not_found(method, path).to_string()
}

/// What a plain-HTTP request is for, without a deployment's routes (the Worker's edge,
/// before the Durable Object): see `Engine.endpoint`.
#[wasm_bindgen(js_name = plainEndpoint)]
pub fn plain_endpoint(method: &str, path: &str) -> String {
    engine::endpoint::Endpoint::of(&[], method, path)
        .as_str()
        .to_string()
}

/// The engine's error-code vocabulary ([`engine::ErrorCode`]) as a JSON object from each
/// code's name to its wire spelling: `{"InvalidJson": "INVALID_JSON", ...}` (every code,
/// in table order). Host code takes protocol error codes from here (`http.js`
/// `errorCodes()`) instead of spelling them.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> String {
    let codes: serde_json::Map<String, serde_json::Value> = engine::ErrorCode::ALL
        .iter()
        .map(|code| (format!("{code:?}"), code.as_str().into()))
        .collect();
    serde_json::Value::Object(codes).to_string()
}

/// The body of `GET /healthz` (JSON text).
#[wasm_bindgen(js_name = healthBody)]
pub fn health_body() -> String {
    engine::endpoint::HEALTH_BODY.to_string()
}

/// Split a deployment document into `{config, server, warnings}` (JSON), applying the
/// environment overrides in `envJson`. Throws with every problem and its field path.
#[wasm_bindgen(js_name = loadDeployment)]
pub fn load_deployment(doc_json: &str, env_json: &str) -> Result<String, JsError> {
    deployment::load(doc_json, env_json).map_err(|e| JsError::new(&e))
}

/// Apply a storage request to the records a host read for it; returns the
/// `HostResult` JSON to pass to `completed()` (see [`core::apply_to_records`]).
#[wasm_bindgen(js_name = applyToRecords)]
pub fn apply_to_records(request_json: &str, records_json: &str) -> Result<String, JsError> {
    core::apply_to_records(request_json, records_json).map_err(|e| JsError::new(&e))
}

/// Crate version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_name_every_engine_code_with_its_wire_spelling() {
        let codes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&error_codes()).unwrap();
        assert_eq!(codes.len(), engine::ErrorCode::ALL.len());
        assert_eq!(codes["InvalidMessage"], "INVALID_MESSAGE");
        assert_eq!(codes["NotFound"], "NOT_FOUND");
        assert_eq!(codes["Forbidden"], "FORBIDDEN");
        assert_eq!(codes["InternalError"], "INTERNAL_ERROR");
        for code in engine::ErrorCode::ALL {
            assert_eq!(codes[&format!("{code:?}")], code.as_str());
        }
    }
}
