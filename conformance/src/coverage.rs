//! The coverage table: every spec item → the vectors that exercise it.
//!
//! Spec items come from the spec itself where it is machine-readable
//! (`protocol-spec/schemas/*.json` for message types and rejection reasons, the tables
//! of `PROTOCOL.md` §16–§18 for error codes, close codes and server commands) and from
//! the engine (`ErrorCode::ALL`, `CLIENT_TYPES`), so an item added on either side shows
//! up here. [`build`] maps items to vectors, [`render`] writes `COVERAGE.md`, and the
//! suite's tests fail when an item has no vector or the file is stale.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::Value;

use crate::intent::{observe, LIMITS};
use crate::LoadedVector;

/// Behaviours (not tied to one message or code) the suite must show. Vectors declare
/// them in `intent.features`.
pub const FEATURES: &[(&str, &str)] = &[
    ("auth:api-key", "API key authenticates as its user"),
    ("auth:source-query", "credential from `?token=`"),
    (
        "auth:source-authorization",
        "credential from `Authorization: Bearer`",
    ),
    ("auth:source-x-api-key", "credential from `X-API-Key`"),
    (
        "auth:source-subprotocol",
        "credential from a `bearer.<token>` subprotocol entry",
    ),
    (
        "auth:first-credential-wins",
        "no fallback to a later credential source",
    ),
    (
        "auth:missing-token",
        "no credential on a route that requires one",
    ),
    (
        "auth:anonymous",
        "no credential on an optional route: anonymous",
    ),
    (
        "auth:invalid-token-optional-route",
        "an invalid credential is refused on an optional route",
    ),
    ("auth:jwt-valid", "a valid JWT"),
    ("auth:jwt-expired", "`exp` in the past"),
    ("auth:jwt-leeway", "`exp` just past but within the leeway"),
    ("auth:jwt-not-yet-valid", "`nbf` in the future"),
    ("auth:jwt-wrong-aud", "`aud` not accepted"),
    ("auth:jwt-wrong-iss", "`iss` not accepted"),
    ("auth:jwt-unknown-kid", "no key with the token's `kid`"),
    (
        "auth:jwt-kid-other-issuer",
        "a `kid` of another issuer is never used",
    ),
    ("auth:jwt-alg-none", "`alg: none` refused"),
    (
        "auth:jwt-hs-rs-confusion",
        "HS256 token signed with an RSA public key",
    ),
    (
        "auth:jwt-alg-not-allowed",
        "an HMAC algorithm not in `algorithms`",
    ),
    ("auth:jwt-bad-signature", "signature does not verify"),
    ("auth:jwt-malformed", "not a decodable JWT"),
    ("auth:jwt-missing-claim", "required claim missing"),
    ("auth:jwt-rs256", "RS256 with an explicit key and kid"),
    ("auth:jwt-es256", "ES256 from a JWKS"),
    ("auth:jwt-eddsa", "EdDSA from a JWKS"),
    (
        "auth:jwt-not-accepted",
        "JWT-shaped token without `auth.jwt`",
    ),
    ("auth:jwks-runtime", "JWKS installed with `setJwks`"),
    (
        "auth:key-source-fetch",
        "keys fetched from a URL through a `fetch` host call (503 `keys_unavailable` until then)",
    ),
    (
        "auth:expiry-notice",
        "`token:expiring` before the token's `exp`",
    ),
    (
        "auth:expiry-close",
        "close 4401 when the token expired without `refresh`",
    ),
    (
        "auth:refresh",
        "`refresh` with the same subject extends the connection",
    ),
    (
        "auth:refresh-other-subject",
        "`refresh` for another user is refused (`subject_mismatch`)",
    ),
    ("auth:route-scopes", "route scopes (403 `missing_scope`)"),
    (
        "auth:resource-roles",
        "resource roles (UNAUTHORIZED / FORBIDDEN)",
    ),
    ("auth:channel-roles", "channel publish / subscribe roles"),
    (
        "streams:offsets",
        "`message` frames carry the stream's `offset` and `epoch`",
    ),
    ("streams:history-size", "history bounded by `history.size`"),
    (
        "streams:history-ttl",
        "history bounded by `history.ttlMs` (and `metaTtlMs`)",
    ),
    (
        "streams:recovery",
        "`subscribe` with `since` recovers the missed publications",
    ),
    (
        "streams:recovery-failed",
        "`recovered: false` when the gap is not covered",
    ),
    (
        "streams:recovery-race",
        "a publication racing a recovery is neither lost nor duplicated",
    ),
    (
        "streams:eviction",
        "recovery across a server eviction (Durable Object storage)",
    ),
    (
        "streams:resource-offsets",
        "`event` frames of a resource with history carry `offset` and `epoch`",
    ),
    (
        "streams:resource-recovery",
        "`subscribe {resource, since}` recovers the missed changes",
    ),
    (
        "streams:resource-recovery-failed",
        "resource recovery: `recovered: false` when the gap is not covered",
    ),
    (
        "streams:resource-projection",
        "recovered changes get the subscriber's filter, guards and protected fields",
    ),
    (
        "streams:resource-recovery-race",
        "a change racing a resource recovery is neither lost nor duplicated",
    ),
    ("streams:presence", "`presence` and `presence:stats`"),
    (
        "streams:presence-info",
        "presence entries carry the connection's public `info` claim",
    ),
    (
        "streams:join-leave",
        "`presence:join` / `presence:leave` pushes",
    ),
    (
        "streams:namespace-roles",
        "namespace publish / subscribe roles",
    ),
    (
        "streams:namespace-guard",
        "namespace CEL guard over `user`, `channel`, `params`",
    ),
    (
        "streams:user-limited",
        "user-limited channels (`#{user.id}`)",
    ),
    ("filter:$eq", "operator `$eq`"),
    ("filter:$ne", "operator `$ne`"),
    ("filter:$in", "operator `$in`"),
    ("filter:$gt", "operator `$gt`"),
    ("filter:$gte", "operator `$gte`"),
    ("filter:$lt", "operator `$lt`"),
    ("filter:$lte", "operator `$lte`"),
    ("filter:$exists", "operator `$exists`"),
    ("filter:$and", "operator `$and`"),
    (
        "filter:literal",
        "literal equality (numbers by value, objects, arrays)",
    ),
    ("filter:dotted-path", "dotted field paths"),
    (
        "filter:kinds-never-match",
        "values of different kinds never compare",
    ),
    ("filter:invalid", "invalid filters are refused"),
    (
        "publish:resource-opt-in",
        "`publish` reaches a resource's subscribers only with its opt-in and roles",
    ),
    (
        "filter:protected-refused",
        "filters reaching a protected field, its parent or child are refused",
    ),
    ("heartbeat:ping", "server pings at the interval"),
    ("heartbeat:pong", "a pong keeps the connection"),
    ("heartbeat:any-frame", "any frame counts as alive"),
    ("heartbeat:timeout", "close 4000 when nothing comes back"),
    (
        "heartbeat:single-outstanding",
        "no second ping while one is unanswered",
    ),
    ("heartbeat:off", "`heartbeatInterval: 0`"),
    (
        "handler:message",
        "a declared message type becomes a `message` host call",
    ),
    (
        "handler:reply",
        "the handler's reply is sent as `reply` with the requestId",
    ),
    (
        "handler:validation",
        "JSON Schema validation of an application message's data",
    ),
    (
        "handler:roles",
        "roles and scopes of an application message type",
    ),
    (
        "handler:guard",
        "the CEL guard of an application message type",
    ),
    (
        "handler:error",
        "a handler's error (documented or application code)",
    ),
    ("handler:failure", "a handler the host could not run"),
    ("handler:no-reply", "a handler that answers nothing"),
    ("handler:timeout", "a handler misses its deadline: TIMEOUT"),
    (
        "handler:limits",
        "handler calls count against the calls in flight",
    ),
    ("handler:cost", "the rate-limit cost of a message type"),
    (
        "handler:commands",
        "server-API commands in a handler's answer",
    ),
    (
        "handler:streaming",
        "several sends to the caller before the reply",
    ),
    ("hook:connect", "the `connect` hook admits a connection"),
    ("hook:connect-user", "the `connect` hook replaces the user"),
    ("hook:connect-meta", "the `connect` hook attaches metadata"),
    (
        "hook:connect-refuse",
        "the `connect` hook refuses (4403 or its code)",
    ),
    (
        "hook:connect-timeout",
        "a failed or late `connect` hook closes with 1013",
    ),
    (
        "hook:disconnect",
        "the `disconnect` hook is told about closes",
    ),
    (
        "intercept:cancel",
        "an interceptor cancels a built-in message",
    ),
    (
        "intercept:modify",
        "an interceptor modifies a built-in message",
    ),
    (
        "route:params",
        "route path parameters reach guards and handlers",
    ),
    (
        "rooms:permissions",
        "room join / members / message permissions",
    ),
    ("room-control", "room control through the server API"),
    (
        "tenant:isolation",
        "a route's tenant isolates rooms, channels, presence, history, client lookups and broadcasts",
    ),
    ("hostcall:store", "storage through host calls"),
    ("hostcall:timeout", "a host call misses its deadline"),
    ("hostcall:late-completion", "a late completion is dropped"),
    ("hostcall:store-unavailable", "storage unavailable"),
    (
        "hostcall:store-internal",
        "storage failure without leaking internals",
    ),
    ("hostcall:wrong-kind", "a completion of the wrong kind"),
    (
        "hostcall:writer-gone",
        "a write completing after its writer left still fans out",
    ),
    (
        "fanout:many",
        "one frame shared by many connections (`sendMany`)",
    ),
    ("slow-consumer:close", "close 1013"),
    ("slow-consumer:drop", "pushes skipped while over the limit"),
    ("guard:cel", "CEL guards allow / deny"),
    ("guard:forced-filter", "a guard forces a filter"),
    ("guard:read", "the `read` guard filters outgoing records"),
    ("guard:fail-closed", "a guard evaluation error denies"),
    ("guard:host", "host guards through host calls"),
    (
        "protected-fields",
        "protected fields never leave, `$before`/`$after` included",
    ),
    ("validation:schema", "JSON Schema validation of `data`"),
    ("pagination:cursor", "list pages with an opaque cursor"),
    (
        "request-id:echo",
        "`requestId` echoed as the same JSON value",
    ),
    ("frames:binary", "binary frames holding JSON"),
    ("subprotocol", "`switchboard.v1` echoed only when offered"),
    ("routes:host", "host-specific routes"),
    ("routes:origin", "Origin checks"),
    ("close:cleanup", "closing removes subscriptions and rooms"),
    (
        "codec:event",
        "the `{event, data}` envelope codec (`routes[].codec = \"event\"`)",
    ),
    (
        "fanout:codecs",
        "one push to clients of different codecs, encoded once per codec",
    ),
    (
        "server-api:envelope",
        "server-API messages on envelope routes (verbatim or wrapped)",
    ),
    (
        "codec:socket.io",
        "Socket.IO v5 over Engine.IO v4 (`routes[].codec = \"socket.io\"`)",
    ),
    (
        "socket.io:server-ack",
        "acks requested by the server (`emitWithAck`): ids, answers, timeouts, failures",
    ),
];

/// One section of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section title.
    pub title: String,
    /// Where the items come from.
    pub source: String,
    /// Item → vectors (names), in item order.
    pub rows: Vec<(String, Vec<String>)>,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Coverage {
    /// Items without any vector, as `section: item`.
    pub fn uncovered(&self) -> Vec<String> {
        self.sections
            .iter()
            .flat_map(|s| {
                s.rows
                    .iter()
                    .filter(|(_, v)| v.is_empty())
                    .map(move |(i, _)| format!("{}: {i}", s.title))
            })
            .collect()
    }
}

fn read(rel: &str) -> anyhow::Result<String> {
    let path = crate::workspace_dir().join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn read_json(rel: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&read(rel)?)?)
}

/// Table rows of a `## N.` section of PROTOCOL.md: the first cell of every row, with
/// backticks removed (header and separator rows skipped).
fn spec_table_first_cells(spec: &str, section: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in spec.lines() {
        if line.starts_with("## ") {
            inside = line.starts_with(&format!("## {section}."));
            continue;
        }
        if !inside || !line.starts_with('|') {
            continue;
        }
        let cell = line
            .trim_start_matches('|')
            .split('|')
            .next()
            .unwrap_or("")
            .trim();
        if cell.is_empty() || cell.starts_with("---") || cell == "code" || cell == "command" {
            continue;
        }
        out.push(cell.trim_matches('`').to_string());
    }
    out
}

fn push_unique(v: &mut Vec<String>, item: String) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// The spec's items, by section key.
pub fn spec_items() -> anyhow::Result<BTreeMap<&'static str, Vec<String>>> {
    let spec = read("protocol-spec/PROTOCOL.md")?;
    let mut m: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();

    let mut errors: Vec<String> = engine::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    for c in spec_table_first_cells(&spec, "16") {
        push_unique(&mut errors, c);
    }
    m.insert("errors", errors);

    let mut closes = Vec::new();
    for c in spec_table_first_cells(&spec, "17") {
        if c.parse::<u16>().is_ok() {
            push_unique(&mut closes, c);
        }
    }
    anyhow::ensure!(
        !closes.is_empty(),
        "no close codes found in PROTOCOL.md §17"
    );
    m.insert("closes", closes);

    let client = read_json("protocol-spec/schemas/client-message.schema.json")?;
    let mut client_types: Vec<String> = engine::protocol::CLIENT_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for t in client["properties"]["type"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        push_unique(&mut client_types, t.to_string());
    }
    m.insert("client", client_types);

    let server = read_json("protocol-spec/schemas/server-message.schema.json")?;
    let mut server_types = Vec::new();
    for r in server["oneOf"].as_array().into_iter().flatten() {
        let Some(ptr) = r["$ref"].as_str().and_then(|s| s.strip_prefix('#')) else {
            continue;
        };
        if let Some(t) = server
            .pointer(ptr)
            .and_then(|d| d["properties"]["type"]["const"].as_str())
        {
            push_unique(&mut server_types, t.to_string());
        }
    }
    anyhow::ensure!(
        !server_types.is_empty(),
        "no server types in server-message.schema.json"
    );
    m.insert("server", server_types);

    let rejection = read_json("protocol-spec/schemas/upgrade-rejection.schema.json")?;
    let mut reasons = Vec::new();
    // Refusals a host's HTTP layer decides (`x-host-handshake`) never reach the engine,
    // so no vector can hold them; host tests check them live.
    let engine_branches = rejection["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["x-host-handshake"] != Value::Bool(true));
    for branch in engine_branches {
        let r = &branch["properties"]["reason"];
        if let Some(c) = r["const"].as_str() {
            push_unique(&mut reasons, c.to_string());
        }
        for c in r["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            push_unique(&mut reasons, c.to_string());
        }
    }
    anyhow::ensure!(
        !reasons.is_empty(),
        "no reasons in upgrade-rejection.schema.json"
    );
    m.insert("rejects", reasons);

    let commands: Vec<String> = spec_table_first_cells(&spec, "18")
        .into_iter()
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .collect();
    anyhow::ensure!(!commands.is_empty(), "no commands in PROTOCOL.md §18");
    m.insert("commands", commands);
    Ok(m)
}

/// Map every spec item to the vectors that exercise it.
pub fn build(vectors: &[LoadedVector]) -> anyhow::Result<Coverage> {
    let items = spec_items()?;
    let observed: Vec<(String, crate::intent::Observed, &conformance_core::Intent)> = vectors
        .iter()
        .map(|l| (l.vector.name.clone(), observe(&l.vector), &l.vector.intent))
        .collect();
    let rows = |list: &[String], has: &dyn Fn(&crate::intent::Observed, &str) -> bool| {
        list.iter()
            .map(|item| {
                let names = observed
                    .iter()
                    .filter(|(_, o, _)| has(o, item))
                    .map(|(n, _, _)| n.clone())
                    .collect();
                (item.clone(), names)
            })
            .collect::<Vec<_>>()
    };
    let mut sections = vec![
        Section {
            title: "Error codes".into(),
            source: "PROTOCOL.md §16 and `ErrorCode::ALL`; error frames, rejection bodies and command errors".into(),
            rows: rows(&items["errors"], &|o, i| o.errors.contains(i)),
        },
        Section {
            title: "Close codes".into(),
            source: "PROTOCOL.md §17; expected `close` actions (1000: a client close the host reports)".into(),
            rows: rows(&items["closes"], &|o, i| {
                let c: u16 = i.parse().unwrap_or(0);
                o.closes.contains(&c) || (c == 1000 && o.client_closes.contains(&c))
            }),
        },
        Section {
            title: "Client message types".into(),
            source: "client-message.schema.json and `CLIENT_TYPES`; frames sent by the vector".into(),
            rows: rows(&items["client"], &|o, i| o.client_types.contains(i)),
        },
        Section {
            title: "Server message types".into(),
            source: "server-message.schema.json; expected frames".into(),
            rows: rows(&items["server"], &|o, i| o.types.contains(i)),
        },
        Section {
            title: "Upgrade rejection reasons".into(),
            source: "upgrade-rejection.schema.json; expected `reject` bodies".into(),
            rows: rows(&items["rejects"], &|o, i| o.rejects.contains(i)),
        },
        Section {
            title: "Server API commands".into(),
            source: "PROTOCOL.md §18; command inputs".into(),
            rows: rows(&items["commands"], &|o, i| o.commands.contains(i)),
        },
    ];
    let limit_names: Vec<String> = LIMITS.iter().map(|l| l.name.to_string()).collect();
    sections.push(Section {
        title: "Limits".into(),
        source: "PROTOCOL.md §15; `intent.limits` (checked: the limit is configured and its outcome appears)".into(),
        rows: limit_names
            .iter()
            .map(|l| {
                let names = observed
                    .iter()
                    .filter(|(_, _, i)| i.limits.contains(l))
                    .map(|(n, _, _)| n.clone())
                    .collect();
                (l.clone(), names)
            })
            .collect(),
    });
    sections.push(Section {
        title: "Behaviours".into(),
        source: "`intent.features`".into(),
        rows: FEATURES
            .iter()
            .map(|(f, _)| {
                let names = observed
                    .iter()
                    .filter(|(_, _, i)| i.features.iter().any(|x| x == f))
                    .map(|(n, _, _)| n.clone())
                    .collect();
                (f.to_string(), names)
            })
            .collect(),
    });
    Ok(Coverage { sections })
}

/// The hosts of the live matrix (the columns of `live:HOST`).
pub const LIVE_HOSTS: &[&str] = &["native", "node", "deno", "bun", "workerd", "workerd-lean"];

/// Render the table as `COVERAGE.md`.
pub fn render(c: &Coverage, vectors: &[LoadedVector]) -> String {
    let mut s = String::new();
    s.push_str("# Conformance coverage\n\n");
    s.push_str("Generated by `cargo run -p switchboard-conformance --bin conformance -- --write-coverage`;\n");
    s.push_str("`cargo test -p switchboard-conformance` fails when this file is stale or an item has no vector.\n\n");
    let hosts = LIVE_HOSTS;
    let mut per_area: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    let mut na: BTreeMap<(&str, String), Vec<&str>> = BTreeMap::new();
    for l in vectors {
        let area = l.vector.name.split('/').next().unwrap_or("").to_string();
        let row = per_area
            .entry(area)
            .or_insert_with(|| (0, vec![0; hosts.len()]));
        row.0 += 1;
        let Some(live) = &l.vector.live else {
            continue;
        };
        for (h, host) in hosts.iter().enumerate() {
            match live.not_on.get(*host) {
                None => row.1[h] += 1,
                Some(reason) => na
                    .entry((*host, reason.clone()))
                    .or_default()
                    .push(&l.vector.name),
            }
        }
    }
    s.push_str(&format!(
        "{} vectors. Every target runs each of them: in-process, under wasmtime, and live on every host, \
         each host with one server per distinct vector config (`conformance/README.md`, \"Live\"). \
         Live coverage per host (the matrix checks it on every run; `n/a` is never a pass):\n\n",
        vectors.len()
    ));
    let totals: Vec<usize> = (0..hosts.len())
        .map(|h| per_area.values().map(|r| r.1[h]).sum())
        .collect();
    let mut header = "| area | vectors |".to_string();
    let mut rule = "|---|---|".to_string();
    for h in hosts {
        header.push_str(&format!(" live:{h} |"));
        rule.push_str("---|");
    }
    s.push_str(&format!("{header}\n{rule}\n"));
    for (a, (n, live)) in &per_area {
        let cells: Vec<String> = live.iter().map(|x| format!(" {x} |")).collect();
        s.push_str(&format!("| {a} | {n} |{}\n", cells.concat()));
    }
    let cells: Vec<String> = totals
        .iter()
        .map(|x| {
            let missing = vectors.len() - x;
            if missing == 0 {
                format!(" **{x}/{}** |", vectors.len())
            } else {
                format!(" **{x}/{}**, {missing} n/a |", vectors.len())
            }
        })
        .collect();
    s.push_str(&format!(
        "| **all** | **{}** |{}\n",
        vectors.len(),
        cells.concat()
    ));
    if !na.is_empty() {
        s.push_str("\nNot live on a host, with the reason the vector states (`live.notOn`):\n\n");
        for ((host, reason), names) in &na {
            s.push_str(&format!(
                "- live:{host} ({}): {reason} — {}\n",
                names.len(),
                names.join(", ")
            ));
        }
    }
    let descriptions: BTreeMap<&str, &str> = FEATURES.iter().copied().collect();
    let limit_desc: BTreeMap<&str, &str> = LIMITS.iter().map(|l| (l.name, l.what)).collect();
    for sec in &c.sections {
        s.push_str(&format!(
            "\n## {}\n\nSource: {}.\n\n",
            sec.title, sec.source
        ));
        s.push_str("| item | # | vectors |\n|---|---|---|\n");
        for (item, names) in &sec.rows {
            let label = match (
                descriptions.get(item.as_str()),
                limit_desc.get(item.as_str()),
            ) {
                (Some(d), _) | (None, Some(d)) => format!("`{item}` ({d})"),
                _ => format!("`{item}`"),
            };
            let list = if names.is_empty() {
                "**UNCOVERED**".to_string()
            } else {
                names.join(", ")
            };
            s.push_str(&format!("| {label} | {} | {list} |\n", names.len()));
        }
    }
    let uncovered: BTreeSet<String> = c.uncovered().into_iter().collect();
    s.push_str(&format!("\nUncovered items: {}.\n", uncovered.len()));
    s
}
