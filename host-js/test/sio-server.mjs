// The Socket.IO compliance application on the host named by SIO_HOST (native, node,
// deno, bun or workerd), for the Socket.IO tests (socketio*.test.mjs).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const hostJs = path.join(root, "host-js");
const app = path.join(hostJs, "examples/socketio-compliance");
export const HOST = process.env.SIO_HOST ?? "native";
const BIN =
  process.env.SWITCHBOARD_SIO_BIN ?? path.join(root, "target/debug/examples/socketio-compliance");

/** The command that serves the compliance application on `port` (0: any). */
function command(port) {
  const bin = (name) => path.join(hostJs, "node_modules/.bin", name);
  switch (HOST) {
    case "native":
      assert.ok(existsSync(BIN), `${BIN} is missing: cargo build -p switchboard --example socketio-compliance`);
      return [BIN, ["--listen", `127.0.0.1:${port}`]];
    case "node":
      return [process.execPath, [path.join(app, "node.mjs")]];
    case "deno":
      return [bin("deno"), ["run", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", path.join(app, "deno.mjs")]];
    case "bun":
      return [bin("bun"), [path.join(app, "bun.mjs")]];
    case "workerd":
      return [process.execPath, [path.join(app, "cloudflare.mjs")]];
    default:
      throw new Error(`SIO_HOST must be native, node, deno, bun or workerd, got ${HOST}`);
  }
}

/** `env`: more environment for the server (e.g. SWITCHBOARD_HIBERNATION on workerd). */
export async function startServer(port = 0, env = {}) {
  const [cmd, args] = command(port);
  const child = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", ...env },
  });
  const addr = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  return { child, addr, port: Number(addr.split(":").pop()) };
}

export function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

