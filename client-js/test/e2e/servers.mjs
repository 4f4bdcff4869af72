// Real servers for the end-to-end tests, on 127.0.0.1: the native host (the `switchboard`
// binary) and the Node example server (host-js/examples/node/server.mjs). Each can be
// killed and started again on the same port (and, for the native host, the same SQLite
// data directory). Every process is stopped when the test process exits.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
export const ADMIN_KEY = "e2e-admin";
export const JWT_SECRET = "e2e-secret";

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => process.exit(128 + (sig === "SIGINT" ? 2 : 15)));
}

/** The native binary: $SWITCHBOARD_BIN, else target/debug/switchboard (built by scripts/test.sh). */
export function nativeBinary() {
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, "target");
  const bin = process.env.SWITCHBOARD_BIN ?? join(target, "debug", "switchboard");
  if (!existsSync(bin)) throw new Error(`no native binary at ${bin}: run \`cargo build -p switchboard --bin switchboard\` (or set SWITCHBOARD_BIN)`);
  return bin;
}

/** Whether the Node host's wasm module is built (bash host-js/build.sh). */
export function nodeHostBuilt() {
  return existsSync(join(REPO, "host-js", "pkg", "switchboard_wasm_bg.wasm")) && existsSync(join(REPO, "host-js", "node_modules", "ws"));
}

/** An HS256 JWT for the test secret. */
export function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${head}.${createHmac("sha256", JWT_SECRET).update(head).digest("base64url")}`;
}

/** The deployment every e2e server runs. */
export function deployment(dataDir, extra = {}) {
  return {
    name: "client-js-e2e",
    server: { listen: "127.0.0.1:0", adminKey: ADMIN_KEY, dataDir, shutdownTimeoutMs: 1000, logLevel: "warn" },
    routes: [{ path: "/" }, { path: "/ws" }],
    auth: {
      jwt: { secret: JWT_SECRET },
      apiKeys: { key_user: { id: "u1", role: "user" }, key_admin: { id: "admin1", role: "admin" } },
    },
    resources: { messages: {} },
    ...extra,
  };
}

/**
 * A server that can be stopped and started again on the same port.
 * kind: "native" (SQLite in a temp dir unless memory) or "node" (memory store).
 */
export class TestServer {
  constructor(kind, { memory = false, extra = {} } = {}) {
    this.kind = kind;
    this.memory = memory;
    this.dir = mkdtempSync(join(tmpdir(), `sb-client-e2e-${kind}-`));
    this.configPath = join(this.dir, "config.json");
    writeFileSync(this.configPath, JSON.stringify(deployment(join(this.dir, "data"), extra)));
    this.proc = null;
    this.port = null;
    this.log = "";
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get http() {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Start the process. The first start binds port 0 and reads the port from the startup
   * output (picking a free port first would race with parallel tests); a restart
   * reuses that port, since reconnecting clients expect the same address.
   */
  async start() {
    const port = this.port ?? 0;
    const env = { ...process.env, SWITCHBOARD_ADMIN_KEY: ADMIN_KEY, SWITCHBOARD_JWT_SECRET: JWT_SECRET };
    if (this.kind === "native") {
      const args = ["serve", "--config", this.configPath, "--listen", `127.0.0.1:${port}`];
      if (this.memory) args.push("--memory");
      this.proc = spawn(nativeBinary(), args, { env, stdio: ["ignore", "pipe", "pipe"] });
    } else {
      this.proc = spawn(process.execPath, [join(REPO, "host-js", "examples", "node", "server.mjs")], {
        env: { ...env, PORT: String(port), HOST: "127.0.0.1", SWITCHBOARD_CONFIG: this.configPath },
        stdio: ["ignore", "pipe", "pipe"],
      });
    }
    const proc = this.proc;
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    for (const s of [proc.stdout, proc.stderr]) s.on("data", (d) => (this.log = (this.log + d).slice(-20000)));
    await this.ready(proc);
  }

  async ready(proc) {
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`${this.kind} server exited (${proc.exitCode}):\n${this.log}`);
      if (this.port === null) {
        // native: "switchboard 0.1.0 listening on 127.0.0.1:PORT"; node: "listening on http://127.0.0.1:PORT"
        const m = this.log.match(/listening on (?:http:\/\/)?127\.0\.0\.1:(\d+)\s/);
        if (m) this.port = Number(m[1]);
        else {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      }
      try {
        const r = await fetch(`${this.http}/healthz`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.kind} server not ready within 20 s:\n${this.log}`);
  }

  /** Stop the process: SIGKILL (a crash) by default, SIGTERM for a graceful shutdown. */
  async stop(signal = "SIGKILL") {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }

  async admin(method, path, body) {
    const r = await fetch(`${this.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, json: await r.json() };
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolve when `pred()` is true (polled), or fail after `ms` with `what`. */
export async function until(pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
