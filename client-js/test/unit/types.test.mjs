// The generated protocol types stay in step with protocol-spec/schemas, and the small
// helpers (backoff, JWT expiry) behave.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate, GENERATED } from "../../scripts/gen-types.mjs";
import { backoffDelay, tokenExpiry, SERVER_MESSAGE_TYPES, CLIENT_MESSAGE_TYPES, ERROR_CODES } from "../../dist/index.js";
import { fakeJwt } from "./fake.mjs";

const SCHEMAS = new URL("../../../protocol-spec/schemas/", import.meta.url).pathname;

test("generated types match the protocol schemas (run `npm run gen` in client-js when this fails)", () => {
  assert.equal(readFileSync(GENERATED, "utf8"), generate(), "src/protocol.gen.ts drifted from protocol-spec/schemas");
});

test("a schema change changes the generated types (the drift check can fail)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sb-schemas-"));
  try {
    cpSync(SCHEMAS, dir, { recursive: true });
    const p = join(dir, "server-message.schema.json");
    const s = JSON.parse(readFileSync(p, "utf8"));
    s.$defs.reply = { title: "reply", type: "object", required: ["type", "data"], properties: { type: { const: "reply" }, data: true, requestId: { $ref: "#/$defs/requestId" } } };
    s.oneOf.push({ $ref: "#/$defs/reply" });
    writeFileSync(p, JSON.stringify(s));
    const out = generate(dir);
    assert.notEqual(out, readFileSync(GENERATED, "utf8"));
    assert.match(out, /export type ServerReply = \{\n  type: "reply";\n  data: unknown;/);
    assert.match(out, /"reply": ServerReply;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("runtime lists come from the schemas", () => {
  const server = JSON.parse(readFileSync(join(SCHEMAS, "server-message.schema.json"), "utf8"));
  const client = JSON.parse(readFileSync(join(SCHEMAS, "client-message.schema.json"), "utf8"));
  assert.deepEqual([...ERROR_CODES], server.$defs.errorCode.enum);
  // The built-in types: exactly those the application branch excludes.
  assert.deepEqual([...CLIENT_MESSAGE_TYPES], client.$defs.application.properties.type.not.enum);
  assert.equal(SERVER_MESSAGE_TYPES.length, server.oneOf.length);
  assert.ok(SERVER_MESSAGE_TYPES.includes("room:members"));
});

test("backoff grows exponentially, is capped and jittered downwards", () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, opts, () => 0)), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([0, 3].map((a) => backoffDelay(a, opts, () => 1)), [50, 400]);
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(2, opts);
    assert.ok(d >= 200 && d <= 400, `${d} within [200, 400]`);
  }
  assert.equal(backoffDelay(1e6, opts, () => 0), 1000, "huge attempt counts stay capped");
});

test("tokenExpiry reads a JWT's exp and ignores everything else", () => {
  assert.equal(tokenExpiry(fakeJwt(1700000000)), 1700000000 * 1000);
  assert.equal(tokenExpiry("key_user"), null);
  assert.equal(tokenExpiry("a.b.c"), null);
  const noExp = `${Buffer.from("{}").toString("base64url")}.${Buffer.from('{"sub":"x"}').toString("base64url")}.s`;
  assert.equal(tokenExpiry(noExp), null);
});
