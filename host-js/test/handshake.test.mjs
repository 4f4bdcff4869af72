// Refused WebSocket handshakes on every host (native, Node, Deno, Bun, workerd): a method
// other than GET, no Sec-WebSocket-Key, a version other than 13, and the engine's own
// refusal of an unknown route. The bodies come from the engine on every host
// (switchboard_engine::handshake), so they must be byte-identical across hosts and valid
// against protocol-spec/schemas/upgrade-rejection.schema.json. Plain-HTTP endpoints too:
// the engine routes them (engine::endpoint), so every host answers the same bytes.
//
//   cargo build -p switchboard && bash host-js/build.sh
//   node --test host-js/test/handshake.test.mjs
//   HANDSHAKE_RUNTIMES=native,node node --test ...   (a subset)
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startServer } from "./helpers.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNTIMES = (process.env.HANDSHAKE_RUNTIMES ?? "native,node,deno,bun,workerd").split(",").filter(Boolean);
const schema = JSON.parse(readFileSync(path.join(root, "protocol-spec/schemas/upgrade-rejection.schema.json"), "utf8"));
const KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/** The native host (`switchboard serve --memory`, demo deployment) on a free port. */
async function startNative() {
  const bin = process.env.SWITCHBOARD_BIN ?? path.join(root, "target/debug/switchboard");
  assert.ok(existsSync(bin), `${bin} is missing: cargo build -p switchboard`);
  const child = spawn(bin, ["serve", "--memory", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on \S*?127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
}

/** Send a raw HTTP request; resolve with {status, headers, body} once the server closes or the body is complete. */
function raw(port, request) {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer within 5 s: ${buf}`));
    }, 5000);
    const finish = () => {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const [statusLine, ...lines] = buf.subarray(0, end).toString().split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      const body = buf.subarray(end + 4);
      const len = Number(headers["content-length"] ?? NaN);
      if (Number.isFinite(len) && body.length < len) return false;
      clearTimeout(timer);
      sock.destroy();
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: body.toString() });
      return true;
    };
    sock.on("connect", () => sock.write(request));
    sock.on("error", () => {});
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      finish();
    });
    sock.on("close", () => {
      if (!finish()) {
        clearTimeout(timer);
        reject(new Error(`connection closed before a complete answer: ${buf}`));
      }
    });
  });
}

// No Content-Length: Deno's HTTP layer refuses an upgrade that announces a body (400,
// empty) before any host code runs.
const upgrade = (method, path, extra) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

/** Validate a body against upgrade-rejection.schema.json: exact keys, and exactly one branch of oneOf. */
function assertSchema(text) {
  const v = JSON.parse(text);
  assert.deepEqual(Object.keys(v), schema.required, `keys of ${text}`);
  assert.equal(v.type, "error");
  assert.ok(schema.properties.code.enum.includes(v.code), `code ${v.code}`);
  const branches = schema.oneOf.filter((b) => {
    const c = b.properties.code;
    const r = b.properties.reason;
    return (c.const ?? null) === v.code && (r.const === v.reason || (r.enum ?? []).includes(v.reason));
  });
  assert.equal(branches.length, 1, `exactly one schema branch for ${text}`);
  assert.equal(typeof v.message, "string");
  return v;
}

const CASES = [
  ["a POST upgrade", upgrade("POST", "/", `${KEY}Sec-WebSocket-Version: 13\r\n`), 405, "method_not_allowed"],
  ["an upgrade without Sec-WebSocket-Key", upgrade("GET", "/", "Sec-WebSocket-Version: 13\r\n"), 400, "missing_key"],
  ["an upgrade with version 8", upgrade("GET", "/", `${KEY}Sec-WebSocket-Version: 8\r\n`), 426, "unsupported_version"],
  ["an upgrade on an unknown route (the engine's refusal)", upgrade("GET", "/nowhere", `${KEY}Sec-WebSocket-Version: 13\r\n`), 404, "unknown_route"],
];

/**
 * Where a runtime refuses before any host code runs, measured on this machine: workerd
 * (through miniflare) fails a non-GET request carrying `Upgrade: websocket` inside its
 * own HTTP server ("internal error", 500 text/plain), before the Worker's fetch. The test
 * pins the divergence so a runtime upgrade that fixes it fails here ("looks fixed").
 */
const KNOWN = {
  workerd: { "a POST upgrade": { status: 500, body: "Internal Server Error" } },
};

/**
 * Plain-HTTP requests: the engine decides what a path is (engine::endpoint) and writes the
 * bodies, so every host answers the same status and bytes (a trailing slash ignored, a
 * long path cut the same way, a POST on a read endpoint not found).
 */
const HTTP_CASES = [
  ["GET /healthz/ (a trailing slash)", ["GET", "/healthz/"], 200, '{"status":"ok"}'],
  ["GET /readyz", ["GET", "/readyz"], 200, '{"status":"ready"}'],
  ["POST /healthz", ["POST", "/healthz"], 404, '{"code":"NOT_FOUND","message":"nothing at POST /healthz"}'],
  ["GET /healthzz", ["GET", "/healthzz"], 404, '{"code":"NOT_FOUND","message":"nothing at GET /healthzz"}'],
  [
    "GET on a 300-byte path",
    ["GET", `/${"x".repeat(299)}`],
    404,
    JSON.stringify({ code: "NOT_FOUND", message: `nothing at GET /${"x".repeat(199)}` }),
  ],
];

// Every host's answer per case, compared across hosts at the end.
const seen = new Map();

for (const runtime of RUNTIMES) {
  describe(`${runtime}: refused handshakes`, () => {
    let srv;
    before(async () => {
      srv = runtime === "native" ? await startNative() : await startServer(runtime);
    });
    after(async () => {
      await srv?.stop();
    });
    for (const [what, request, status, reason] of CASES) {
      test(`${what}: ${status} ${reason}, a body valid against the schema`, async () => {
        const r = await raw(srv.port, request);
        const known = KNOWN[runtime]?.[what];
        if (known) {
          assert.deepEqual(
            { status: r.status, body: r.body },
            known,
            `${runtime} diverges here; if it now answers ${status}, the divergence looks fixed: remove it from KNOWN`,
          );
          return;
        }
        assert.equal(r.status, status, r.body);
        assert.match(r.headers["content-type"] ?? "", /^application\/json/);
        const v = assertSchema(r.body);
        assert.equal(v.reason, reason);
        if (status === 426) assert.equal(r.headers["sec-websocket-version"], "13");
        if (!seen.has(what)) seen.set(what, new Map());
        seen.get(what).set(runtime, r.body);
      });
    }
  });
}

for (const runtime of RUNTIMES) {
  describe(`${runtime}: plain HTTP endpoints`, () => {
    let srv;
    before(async () => {
      srv = runtime === "native" ? await startNative() : await startServer(runtime);
    });
    after(async () => {
      await srv?.stop();
    });
    for (const [what, [method, path], status, body] of HTTP_CASES) {
      test(`${what}: ${status} ${body.slice(0, 80)}`, async () => {
        const r = await fetch(`http://127.0.0.1:${srv.port}${path}`, { method, signal: AbortSignal.timeout(5000) });
        const text = await r.text();
        assert.equal(r.status, status, text);
        assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
        assert.equal(text, body);
      });
    }
  });
}

test("every host answers the same bytes", () => {
  for (const [what, byHost] of seen) {
    const bodies = new Set(byHost.values());
    assert.equal(bodies.size, 1, `${what}: ${JSON.stringify(Object.fromEntries(byHost))}`);
  }
});
