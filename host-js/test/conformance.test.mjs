// The conformance suite's live runner (conformance/, `--live-url`) against each example
// server: every vector with a `live` section, over real sockets, must pass on every host.
// Needs target/debug/conformance (test.sh builds it; set LIVE_CONFORMANCE=0 to skip).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HOST_JS, startServer } from "./helpers.mjs";

const bin = join(HOST_JS, "..", process.env.CARGO_TARGET_DIR ?? "target", "debug/conformance");
const skip = process.env.LIVE_CONFORMANCE === "0" ? "LIVE_CONFORMANCE=0" : !existsSync(bin) ? `${bin} not built` : false;

for (const runtime of ["node", "deno", "bun", "workerd"]) {
  test(`conformance live vectors on ${runtime}`, { skip, timeout: 180000 }, async (t) => {
    const srv = await startServer(runtime, { SWITCHBOARD_WARMUP: "1" }); // as shipped: warm-up on
    try {
      const { code, out } = await new Promise((resolve) => {
        execFile(bin, ["--live-url", srv.url, "--failures-only"], { cwd: join(HOST_JS, ".."), timeout: 170000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
          resolve({ code: err ? (err.code ?? 1) : 0, out: stdout + stderr }),
        );
      });
      t.diagnostic(out.split("\n").find((l) => l.includes("live:url:"))?.trim() ?? "no live:url summary");
      assert.equal(code, 0, out);
    } finally {
      await srv.stop();
    }
  });
}
