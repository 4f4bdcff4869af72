// Identity providers on the JS hosts (Node, and Workers in workerd through miniflare):
// a fake OpenID provider on 127.0.0.1 (discovery + JWKS for two issuers, key rotation,
// going down, a `kid` shared by both issuers) serves the example servers, which fetch
// keys with `fetch` when the engine asks. Also token expiry and `refresh` over a socket.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createPrivateKey, createPublicKey, createHmac, sign as rsaSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { startServer, connect, demoVariant, sleep } from "./helpers.mjs";

const key = (name) => readFileSync(new URL(`../../engine/src/auth/testkeys/${name}`, import.meta.url), "utf8");
const RSA1 = createPrivateKey(key("rsa_private.pem"));
const RSA2 = createPrivateKey(key("rsa2_private.pem"));

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const nowS = () => Math.floor(Date.now() / 1000);

function rs256(priv, kid, claims) {
  const input = `${b64url({ alg: "RS256", typ: "JWT", kid })}.${b64url(claims)}`;
  return `${input}.${rsaSign("sha256", Buffer.from(input), priv).toString("base64url")}`;
}

function hs256(secret, claims) {
  const input = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

const jwk = (priv, kid) => ({ ...createPublicKey(priv).export({ format: "jwk" }), kid, use: "sig", alg: "RS256" });

/** The fake provider: /<name>/.well-known/openid-configuration and /<name>/jwks. */
async function startIdp() {
  const idp = { keys: {}, down: false, hits: {} };
  const server = createServer((req, res) => {
    idp.hits[req.url] = (idp.hits[req.url] ?? 0) + 1;
    const [, name, ...rest] = req.url.split("/");
    const tail = rest.join("/");
    const json = (status, body, headers = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (idp.down) return json(503, { error: "down" });
    if (!idp.keys[name]) return json(404, {});
    if (tail === ".well-known/openid-configuration") {
      return json(200, { issuer: idp.issuer(name), jwks_uri: `${idp.issuer(name)}/jwks` });
    }
    if (tail === "jwks") return json(200, { keys: idp.keys[name] }, { "cache-control": "max-age=1" });
    return json(404, {});
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  idp.port = server.address().port;
  idp.issuer = (name) => `http://127.0.0.1:${idp.port}/${name}`;
  idp.close = () => new Promise((r) => server.close(r));
  return idp;
}

/** Upgrade with `token`: 101, or the refusal's {status, reason}. */
async function upgrade(url, token) {
  try {
    const c = await connect(`${url}/?token=${token}`);
    await c.next("connected");
    await c.close();
    return { status: 101 };
  } catch (e) {
    if (!e.status) throw e;
    return { status: e.status, reason: JSON.parse(e.body).reason };
  }
}

/** Retry while the server says the issuer's keys are being fetched (bounded). */
async function upgradeWhenReady(url, token) {
  for (let i = 0; i < 60; i++) {
    const r = await upgrade(url, token);
    if (!(r.status === 503 && r.reason === "keys_unavailable")) return r;
    await sleep(100);
  }
  throw new Error("keys never became available");
}

const metric = async (srv, name) => {
  const text = await (await fetch(`${srv.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : undefined;
};

for (const runtime of ["node", "workerd"]) {
  describe(`${runtime}: keys from an OpenID provider`, () => {
    let idp, srv;
    before(async () => {
      idp = await startIdp();
      idp.keys.a = [jwk(RSA1, "k1"), jwk(RSA1, "shared")];
      idp.keys.b = [jwk(RSA2, "shared")];
      const config = demoVariant({
        heartbeatInterval: 0,
        auth: {
          oidc: [
            { issuer: idp.issuer("a"), audience: "app" },
            { issuer: idp.issuer("b"), audience: "app" },
          ],
          jwt: { keyRefresh: { unknownKidCooldownSeconds: 1, minSeconds: 1, retrySeconds: 1, maxRetrySeconds: 1 } },
        },
      });
      srv = await startServer(runtime, { SWITCHBOARD_CONFIG: config });
    });
    after(async () => {
      await srv?.stop();
      await idp?.close();
    });

    const tok = (priv, kid, iss, sub = "u1") => rs256(priv, kid, { sub, iss, aud: "app", exp: nowS() + 600 });

    test("discovery, rotation, unknown-kid cooldown, cross-issuer kid, outage", async () => {
      const a = idp.issuer("a");
      const b = idp.issuer("b");
      assert.deepEqual(await upgradeWhenReady(srv.url, tok(RSA1, "k1", a)), { status: 101 });
      assert.ok(idp.hits["/a/.well-known/openid-configuration"] >= 1);
      // Rotation: a new key appears at the provider; the first token with it starts a fetch.
      idp.keys.a = [...idp.keys.a, jwk(RSA2, "k2")];
      await sleep(1100);
      assert.deepEqual(await upgradeWhenReady(srv.url, tok(RSA2, "k2", a)), { status: 101 });
      // The same kid published by both issuers: B's key for B's tokens only.
      assert.deepEqual(await upgradeWhenReady(srv.url, tok(RSA2, "shared", b)), { status: 101 });
      assert.deepEqual(await upgrade(srv.url, tok(RSA1, "shared", b)), { status: 401, reason: "bad_signature" });
      // A burst of made-up kids starts at most one fetch per cooldown.
      await sleep(1100);
      const before = (await metric(srv, "switchboard_unknown_kid_fetches_total")) ?? 0;
      const answers = [];
      for (let i = 0; i < 15; i++) answers.push(await upgrade(srv.url, tok(RSA1, `made-up-${i}`, a)));
      const after = await metric(srv, "switchboard_unknown_kid_fetches_total");
      assert.ok(after - before <= 1, `${after - before} unknown-kid fetches for one burst`);
      assert.ok(answers.every((r) => r.status === 401 || r.reason === "keys_unavailable"), JSON.stringify(answers));
      // Outage: fetches fail, the last good keys stay, the failures show in /metrics and logs.
      idp.down = true;
      await sleep(2500);
      assert.deepEqual(await upgrade(srv.url, tok(RSA1, "k1", a)), { status: 101 });
      const failures = await metric(srv, `switchboard_key_fetch_failures_total{issuer="${a}"}`);
      assert.ok(failures >= 1, `failures: ${failures}`);
      assert.match(srv.output(), /key source .*failed: HTTP status 503; keeping the \d+ keys/);
      idp.down = false;
    });
  });
}

describe("node: token expiry and refresh over a socket", () => {
  let srv;
  before(async () => {
    const config = demoVariant({ heartbeatInterval: 0, auth: { jwt: { leewaySeconds: 0, refreshNoticeSeconds: 1 } } });
    srv = await startServer("node", { SWITCHBOARD_CONFIG: config });
  });
  after(async () => {
    await srv?.stop();
  });

  test("token:expiring, refused refresh for another user, refreshed, then close 4401", async () => {
    const t = (sub, secs) => hs256("dev-secret", { sub, exp: nowS() + secs });
    const c = await connect(`${srv.url}/?token=${t("u1", 1)}`);
    await c.next("connected");
    const notice = await c.next("token:expiring", 3000);
    assert.match(notice.expiresAt, /Z$/);
    const refused = await c.request({ type: "refresh", token: t("u2", 60) });
    assert.equal(refused.code, "FORBIDDEN");
    assert.equal(refused.reason, "subject_mismatch");
    const ok = await c.request({ type: "refresh", token: t("u1", 2) });
    assert.equal(ok.type, "refreshed", JSON.stringify(ok));
    assert.equal(ok.user.id, "u1");
    const closed = await c.waitClose(6000);
    assert.deepEqual(closed, { code: 4401, reason: "token expired" });
  });
});
