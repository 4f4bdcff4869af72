// Test helpers: start an example server as a child process on a random 127.0.0.1 port,
// and a small promise-based WebSocket client (the `ws` package).
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

export const HOST_JS = fileURLToPath(new URL("../", import.meta.url));
export const DEMO_JSON = fileURLToPath(new URL("../../examples/demo.json", import.meta.url));
const bin = (b) => join(HOST_JS, "node_modules/.bin", b);

/** The documented command of each example server. */
export const RUNTIMES = {
  node: () => [process.execPath, [join(HOST_JS, "examples/node/server.mjs")]],
  deno: () => [bin("deno"), ["run", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", join(HOST_JS, "examples/deno/server.mjs")]],
  bun: () => [bin("bun"), [join(HOST_JS, "examples/bun/server.mjs")]],
  workerd: () => [process.execPath, [join(HOST_JS, "examples/cloudflare/run.mjs")]],
  // The Worker with the lean module (js/cloudflare-lean.js).
  "workerd-lean": () => [process.execPath, [join(HOST_JS, "examples/cloudflare/run.mjs")], { SWITCHBOARD_MODULE: "lean" }],
};

/** Write a variant of the demo deployment (deep-merged with `patch`) to a temp file. */
export function demoVariant(patch) {
  const merge = (a, b) => {
    if (b === null || typeof b !== "object" || Array.isArray(b)) return b;
    const out = { ...(a ?? {}) };
    for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v);
    return out;
  };
  const doc = merge(JSON.parse(readFileSync(DEMO_JSON, "utf8")), patch);
  const dir = mkdtempSync(join(tmpdir(), "switchboard-hostjs-"));
  const path = join(dir, "deployment.json");
  writeFileSync(path, JSON.stringify(doc, null, 2));
  return path;
}

// Servers this test process started; killed if it exits without stopping them.
const children = new Set();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/**
 * Start an example server with PORT=0; resolves {port, url, http, stop()} once it printed
 * its "listening on http://127.0.0.1:PORT" banner. Bounded: 30 s to start, 5 s to stop.
 */
export async function startServer(runtime, env = {}) {
  const [cmd, args, runtimeEnv = {}] = RUNTIMES[runtime]();
  const child = spawn(cmd, args, {
    // SWITCHBOARD_WARMUP=0: the example servers listen without the wasm warm-up (about a
    // second per start); test/conformance.test.mjs starts them as shipped, with it.
    env: { ...process.env, PORT: "0", SWITCHBOARD_JWT_SECRET: "", SWITCHBOARD_ADMIN_KEY: "", SWITCHBOARD_WARMUP: "0", ...runtimeEnv, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${runtime} server did not start in 120 s: ${out}${err}`)), 120000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime} server exited with ${code}: ${out}${err}`));
    });
  });
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    output: () => out + err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * A WebSocket client with a queue of received JSON frames.
 * connect(url) resolves once open; rejects with {status, body} when the upgrade is refused.
 */
export function connect(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { autoPong: options.autoPong ?? true, headers: options.headers, maxPayload: 64 * 1024 * 1024 });
    const c = new Client(ws);
    ws.once("open", () => resolve(c));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        const e = new Error(`upgrade refused: ${res.statusCode} ${body}`);
        e.status = res.statusCode;
        e.body = body;
        reject(e);
        ws.terminate();
      });
    });
    ws.once("error", reject);
  });
}

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.pings = 0;
    this.closeInfo = null;
    this.closed = new Promise((r) => (this.onClosed = r));
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      this.frames.push(msg);
      this.wake();
    });
    ws.on("ping", () => {
      this.pings++;
      this.wake();
    });
    ws.on("close", (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.onClosed(this.closeInfo);
      this.wake();
    });
    ws.on("error", () => {});
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get protocol() {
    return this.ws.protocol;
  }

  send(msg) {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** Wait until `pred()` is truthy (re-checked on every event), at most `ms`. */
  async until(pred, ms = 3000, what = "condition") {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; frames: ${JSON.stringify(this.frames).slice(0, 2000)} close: ${JSON.stringify(this.closeInfo)}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Take the first received frame matching `match` (a type string or predicate). */
  next(match, ms = 3000) {
    const pred = typeof match === "string" ? (f) => f.type === match : match;
    return this.until(
      () => {
        const i = this.frames.findIndex(pred);
        return i >= 0 ? this.frames.splice(i, 1)[0] : null;
      },
      ms,
      `frame ${typeof match === "string" ? match : "matching predicate"}`,
    );
  }

  /** Send a request with a requestId and wait for the answer carrying it. */
  async request(msg, ms = 3000) {
    const requestId = `r${++Client.seq}`;
    this.send({ ...msg, requestId });
    return this.next((f) => f.requestId === requestId, ms);
  }

  waitClose(ms = 3000) {
    return this.until(() => this.closeInfo, ms, "close");
  }

  close() {
    try {
      this.ws.close(1000);
    } catch {}
    return Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]).finally(() => this.ws.terminate());
  }
}
Client.seq = 0;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
