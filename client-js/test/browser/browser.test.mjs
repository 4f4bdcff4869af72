// A real headless Chromium (Debian's `chromium`, driven by playwright-core) loads a page
// that uses the browser bundle of @switchboard/client, connects to the native host,
// subscribes, receives publications and resource events, and survives a server restart.
// Then the web console (/console) is signed into in the same browser and a screenshot is
// saved to client-js/test-artifacts/console.png (not committed).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { WebSocket } from "ws";
import { Client } from "../../dist/index.js";
import { ADMIN_KEY, TestServer, until } from "../e2e/servers.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts");
// Without the background-networking flags Chromium keeps calling home on a closed network.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let server;
let statics;
let context;
let profile;

/** Serves the test page and the bundle on 127.0.0.1 (another origin than the WebSocket server). */
function serveStatics() {
  const files = {
    "/page.html": ["text/html", join(ROOT, "test", "browser", "page.html")],
    "/switchboard-client.browser.js": ["text/javascript", join(ROOT, "dist", "switchboard-client.browser.js")],
  };
  const s = createServer((req, res) => {
    const f = files[new URL(req.url, "http://x").pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": f[0] }).end(readFileSync(f[1]));
  });
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s)));
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup.sh (installs Debian's chromium)`);
  server = new TestServer("native");
  await server.start();
  statics = await serveStatics();
  profile = mkdtempSync(join(tmpdir(), "sb-chromium-"));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await context?.close();
  statics?.close();
  await server?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("the browser bundle connects, subscribes, receives, and survives a server restart", async () => {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const { port } = statics.address();
  await page.goto(`http://127.0.0.1:${port}/page.html?ws=${encodeURIComponent(server.url)}`);
  await page.waitForFunction(() => window.sb?.ready === true, null, { timeout: 15000 });
  assert.deepEqual(await page.evaluate(() => window.sb.authedUser), { id: "u1", role: "user", scopes: [] });

  const pub = new Client({ url: server.url, WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 300 }, pingIntervalMs: 0 });
  try {
    await pub.connect();
    for (let n = 1; n <= 3; n++) assert.equal((await pub.publish("browser:chat", { n })).delivered, 1);
    await page.waitForFunction(() => window.sb.received.length === 3, null, { timeout: 10000 });

    // From the page: a write whose event comes back to the page's own subscription.
    await page.evaluate(() => window.client.resource("messages").insert({ from: "browser", text: "one" }));
    await page.waitForFunction(() => window.sb.events.length === 1, null, { timeout: 10000 });

    await server.stop("SIGKILL");
    await page.waitForFunction(() => window.sb.states.includes("disconnected"), null, { timeout: 10000 });
    await server.start();
    await page.waitForFunction(() => window.sb.subscribed.length === 2 && window.client.state === "connected", null, { timeout: 15000 });
    await until(() => pub.state === "connected", "the publisher is back");
    for (let n = 4; n <= 6; n++) assert.equal((await pub.publish("browser:chat", { n })).delivered, 1);
    await page.waitForFunction(() => window.sb.received.length === 6, null, { timeout: 10000 });
    await page.evaluate(() => window.client.resource("messages").insert({ from: "browser", text: "two" }));
    await page.waitForFunction(() => window.sb.events.length === 2, null, { timeout: 10000 });

    const sb = await page.evaluate(() => window.sb);
    assert.deepEqual(sb.received, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(sb.events, ["one", "two"]);
    assert.deepEqual(sb.subscribed, [
      { resubscribed: false, recovered: false },
      { resubscribed: true, recovered: false },
    ]);
    assert.deepEqual(sb.states.slice(0, 4), ["connecting", "connected", "disconnected", "connecting"]);
    assert.equal(sb.states.at(-1), "connected");
    assert.deepEqual(consoleErrors, []);
  } finally {
    pub.close();
    await page.close();
  }
});

test("the web console: sign in with the admin key, live tables and charts, screenshot", async () => {
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Something to show: a subscribed client and a room.
  const c = new Client({ url: server.url, WebSocket, pingIntervalMs: 0 });
  try {
    await c.connect();
    await c.channel("console:demo").subscribe().ready();
    await c.room("lobby").join();
    await c.publish("console:demo", { hello: 1 });

    const first = await page.goto(`${server.http}/console`);
    assert.equal(first.status(), 401, "signed out: the sign-in form");
    await page.fill("#key", "wrong");
    await page.click("button[type=submit]");
    await page.waitForSelector("p.error");
    await page.fill("#key", ADMIN_KEY);
    await Promise.all([page.waitForURL(`${server.http}/console`), page.click("button[type=submit]")]);
    await page.waitForSelector("#clients tbody tr td:not(.empty)", { timeout: 10000 });
    await page.waitForFunction(() => document.getElementById("t-state").textContent === "connected", null, { timeout: 10000 });
    // Channels and rooms tables are filled from the server's state.
    await page.waitForFunction(() => document.querySelector("#channels tbody").textContent.includes("console:demo"), null, { timeout: 10000 });
    assert.match(await page.textContent("#rooms tbody"), /lobby/);
    // The message tester: a request through @switchboard/client.
    await page.fill("#t-type", "publish");
    await page.fill("#t-fields", '{"channel":"console:demo","message":{"from":"console"}}');
    await page.click("#tester-send button[type=submit]");
    await page.waitForFunction(() => document.getElementById("t-log").textContent.includes('"type":"published"'), null, { timeout: 10000 });
    // Let the charts collect a few samples (rates every 2 s, latency every 3 s).
    await page.waitForTimeout(6500);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "console.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(readFileSync(shot).length > 10000, "a real screenshot");
    assert.deepEqual(pageErrors, []);
    console.log(`console screenshot: ${shot}`);
  } finally {
    c.close();
    await page.close();
  }
});
