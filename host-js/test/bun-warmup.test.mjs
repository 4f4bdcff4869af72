// The Bun host's socket warm-up (js/bun.js warmUpSockets): a throwaway loopback server
// and clients of the same process fan publishes out through the real socket path, then
// everything is closed. Each case runs in its own Bun process, which must exit by itself:
// a server, socket or timer left behind would keep it running.
//
//   bash host-js/build.sh && node --test host-js/test/bun-warmup.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { HOST_JS } from "./helpers.mjs";

const BUN = join(HOST_JS, "node_modules/.bin/bun");

/** Run `warmUpSockets(options)` in a fresh Bun process; its result, once the process exited. */
function warmUpInBun(options, openFiles = null) {
  const script = `
    import { initFromFile, warmUpSockets } from ${JSON.stringify(join(HOST_JS, "js/bun.js"))};
    initFromFile();
    const r = await warmUpSockets(${JSON.stringify(options)});
    console.log(JSON.stringify(r));`;
  return new Promise((resolve, reject) => {
    // With `openFiles`, under that open-files limit (sh's ulimit, then exec).
    const [cmd, args] = openFiles === null ? [BUN, ["--eval", script]] : ["sh", ["-c", `ulimit -n ${openFiles} && exec "$0" --eval "$1"`, BUN, script]];
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    // The process must end by itself: nothing of the warm-up may stay open.
    const killer = setTimeout(() => child.kill("SIGKILL"), 20000);
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`bun exited with ${code ?? signal} (did not end by itself?): ${err}`));
      resolve(JSON.parse(out.trim().split("\n").pop()));
    });
  });
}

test("the socket warm-up delivers every publish to every subscriber and leaves nothing open", async () => {
  const r = await warmUpInBun({ subscribers: 50, publishes: 40 });
  assert.equal(r.error, undefined);
  assert.equal(r.deliveries, 50 * 40);
});

test("a socket warm-up past its time limit is abandoned with an error and leaves nothing open", async () => {
  const r = await warmUpInBun({ subscribers: 300, publishes: 200, timeoutMs: 1 });
  assert.match(r.error, /within 1 ms/);
  assert.ok(r.deliveries < 300 * 200);
});

test("under a low open-files limit the socket warm-up uses the clients that connect and finishes", async () => {
  // 256 descriptors: about 100 subscribers fit (two descriptors each, in this process).
  const r = await warmUpInBun({ subscribers: 1000, publishes: 10 }, 256);
  assert.equal(r.error, undefined);
  assert.ok(r.deliveries > 0 && r.deliveries < 1000 * 10, `deliveries ${r.deliveries}`);
  assert.equal(r.deliveries % 10, 0, "every subscriber that connected got every publish");
});

test("a socket warm-up abandoned in the middle of its fan-out closes everything", async () => {
  // A million deliveries cannot finish in half a second; 20 subscribers connect well within it.
  const r = await warmUpInBun({ subscribers: 20, publishes: 50000, timeoutMs: 500 });
  assert.match(r.error, /not done within 500 ms/);
  assert.ok(r.deliveries > 0 && r.deliveries < 20 * 50000, `deliveries ${r.deliveries}`);
});
