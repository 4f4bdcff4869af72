// Socket.IO side by side: the native host's compliance application vs the same
// application on the `socket.io` npm server (Node), same load, one run.
//
//   cargo build --release -p switchboard --example socketio-compliance
//   node host-js/bench/socketio-bench.mjs [--seconds 20] [--clients 50] [--members 100] [--window 4] [--rounds 1]
//
// The load is raw WebSockets speaking Engine.IO v4 / Socket.IO v5 with pre-encoded
// packets (cheaper on the client side than socket.io-client, so the servers are what is
// measured), all clients in this one Node process:
//   - round trips: `--clients` connections each emit `42<id>["message-with-ack",{...}]`
//     in a closed loop (the next one when `43<id>[...]` arrives): acks/s, p50, p99;
//   - fan-out: `--members` connections join the room `bench` (`join`), one more member
//     sends `42["room:message",{"room":"bench","data":{...}}]`, the server broadcasts it to
//     the other members; at most `--window` messages are in flight (sent but not yet
//     received by every member): deliveries/s.
// Both also report the server process's CPU time per round trip / delivery (from /proc, so
// Linux only) and this load process's CPU share: on a shared machine, CPU per operation is
// steadier than the rates, and a load client near 100 % means the client was the limit.
// Every connection answers the server's pings (`2` → `3`); a connection the server closes
// is counted and reported (with its close code). SWITCHBOARD_SIO_BIN overrides the native
// binary; --only native|npm runs one server; --rounds N alternates the servers N times
// (one table row per server and round: the machine may be shared, so rounds show the noise).
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg("seconds", 20));
const WARMUP = Number(arg("warmup", 2));
const CLIENTS = Number(arg("clients", 50));
const MEMBERS = Number(arg("members", 100));
const WINDOW = Number(arg("window", 4));
const ONLY = arg("only", null);
const ROUNDS = Number(arg("rounds", 1));
const NATIVE_BIN =
  process.env.SWITCHBOARD_SIO_BIN ??
  path.join(root, process.env.CARGO_TARGET_DIR ?? "target", "release/examples/socketio-compliance");

const servers = {
  native: () => [NATIVE_BIN, ["--listen", "127.0.0.1:0"]],
  npm: () => [process.execPath, [path.join(here, "socketio-npm-server.mjs")]],
};

function start(name) {
  const [cmd, args] = servers[name]();
  if (name === "native" && !existsSync(cmd)) {
    throw new Error(`${cmd} is missing: cargo build --release -p switchboard --example socketio-compliance`);
  }
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, PORT: "0" } });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name}: no banner: ${out}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, addr: m[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

const stats = { closed: 0, badAcks: 0, closeCodes: {} };

/**
 * A Socket.IO connection on `/`: resolves once CONNECT is answered. `onPacket(text)`
 * gets every Socket.IO text packet after that (the `4` stripped).
 */
function connect(addr, onPacket) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${addr}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
    let ready = false;
    ws.on("message", (data) => {
      const s = data.toString();
      const kind = s.charCodeAt(0);
      if (kind === 50 /* 2: ping */) return ws.send("3");
      if (kind === 48 /* 0: open */) return ws.send("40");
      if (kind !== 52 /* 4: message */) return;
      if (!ready) {
        if (s.startsWith("40")) {
          ready = true;
          resolve(ws);
        }
        return;
      }
      onPacket(s);
    });
    ws.on("error", (e) => (ready ? undefined : reject(e)));
    ws.on("close", (code, reason) => {
      if (ready && !ws.finished) {
        stats.closed++;
        const why = `${code} ${reason}`;
        stats.closeCodes[why] = (stats.closeCodes[why] ?? 0) + 1;
      }
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used so far (Linux /proc; 100 ticks/s). */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Measure `SECONDS` of load: the server's and this process's CPU seconds over the window. */
async function window(serverPid, setMeasuring) {
  const c0 = process.cpuUsage();
  const s0 = cpuSeconds(serverPid);
  setMeasuring(true);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  setMeasuring(false);
  const secs = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { secs, serverCpu: cpuSeconds(serverPid) - s0, clientCpu: (c.user + c.system) / 1e6 };
}

/** Closed-loop emit → ack round trips on `CLIENTS` connections. */
async function roundTrips(addr, pid) {
  let measuring = false;
  let count = 0;
  const lat = [];
  const payload = ',{"n":1,"text":"hello"}]';
  const conns = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = { id: 0, sent: 0, ws: null };
    c.ws = await connect(addr, (s) => {
      // 43<id>[...]: the ack of our last emit.
      if (s.charCodeAt(1) !== 51) return;
      const t = performance.now();
      if (measuring) {
        count++;
        lat.push(t - c.sent);
      }
      // The ack carries the arguments back (an error answer would not).
      if (!s.includes("hello")) stats.badAcks++;
      if (!c.stop) fire(c);
    });
    conns.push(c);
  }
  const fire = (c) => {
    c.id++;
    c.sent = performance.now();
    c.ws.send('42' + c.id + '["message-with-ack"' + payload);
  };
  conns.forEach(fire);
  await sleep(WARMUP * 1000);
  const w = await window(pid, (m) => (measuring = m));
  for (const c of conns) {
    c.stop = true;
    c.ws.finished = true;
    c.ws.close();
  }
  lat.sort((a, b) => a - b);
  return {
    perSec: count / w.secs,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    serverUsPerOp: (w.serverCpu * 1e6) / count,
    clientCpu: w.clientCpu / w.secs,
  };
}

/** Room fan-out: `MEMBERS` receivers, one sender, at most `WINDOW` messages in flight. */
async function fanOut(addr, pid) {
  let received = 0;
  let measuring = false;
  let measured = 0;
  const members = [];
  const joined = (ws) =>
    new Promise((resolve) => {
      ws.onJoined = resolve;
      ws.send('420["join",{"room":"bench"}]');
    });
  const onPacket = (ws) => (s) => {
    // 42["room:message",...]: a delivery; 430[...]: the answer to `join`.
    if (s.startsWith('42["room:message"')) {
      received++;
      if (measuring) measured++;
      pump();
    } else if (s.startsWith("430") && ws.onJoined) {
      ws.onJoined();
      ws.onJoined = null;
    }
  };
  for (let i = 0; i < MEMBERS + 1; i++) {
    const box = {};
    const ws = await connect(addr, (s) => onPacket(box.ws)(s));
    box.ws = ws;
    await joined(ws);
    members.push(ws);
  }
  const sender = members.pop();
  const frame = '42["room:message",{"room":"bench","data":{"n":1,"text":"hello"}}]';
  let sent = 0;
  let stopped = false;
  // Messages in flight: sent × members − received.
  function pump() {
    while (!stopped && sent * MEMBERS - received < WINDOW * MEMBERS) {
      sent++;
      sender.send(frame);
    }
  }
  pump();
  await sleep(WARMUP * 1000);
  const w = await window(pid, (m) => (measuring = m));
  stopped = true;
  for (const ws of [...members, sender]) {
    ws.finished = true;
    ws.close();
  }
  return {
    perSec: measured / w.secs,
    messagesPerSec: measured / MEMBERS / w.secs,
    serverUsPerOp: (w.serverCpu * 1e6) / measured,
    clientCpu: w.clientCpu / w.secs,
  };
}

const fmt = (n) => Math.round(n).toLocaleString("en-US").replace(/,/g, " ");
const results = [];
console.error(
  `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; ${os.cpus().length} CPUs; ` +
    `${SECONDS} s per run after ${WARMUP} s warm-up; ${CLIENTS} round-trip clients, ${MEMBERS} room members, window ${WINDOW}`,
);
for (let round = 1; round <= ROUNDS; round++) {
  for (const name of Object.keys(servers)) {
    if (ONLY && ONLY !== name) continue;
    const { child, addr } = await start(name);
    try {
      stats.closed = 0;
      stats.badAcks = 0;
      stats.closeCodes = {};
      const rt = await roundTrips(addr, child.pid);
      await sleep(500);
      const fan = await fanOut(addr, child.pid);
      const r = { name, round, rt, fan, closed: stats.closed, closeCodes: stats.closeCodes, badAcks: stats.badAcks };
      results.push(r);
      console.error(`${name} round ${round}: ${JSON.stringify(r)}`);
    } finally {
      await stop(child);
    }
    await sleep(1000);
  }
}
console.error(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(
  "| server | round | emit→ack round trips/s | p50 ms | p99 ms | server CPU µs per round trip | fan-out deliveries/s (messages/s) | server CPU µs per delivery | load client CPU (rt / fan-out) | connections lost | wrong acks |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
const label = { native: "Switchboard native (compliance app, release)", npm: "`socket.io` 4.8.4 on Node " + process.version };
for (const r of results) {
  const lost = r.closed ? `${r.closed} (${Object.entries(r.closeCodes).map(([k, n]) => `${n}× ${k.trim()}`).join(", ")})` : "0";
  console.log(
    `| ${label[r.name]} | ${r.round} | ${fmt(r.rt.perSec)} | ${r.rt.p50.toFixed(2)} | ${r.rt.p99.toFixed(2)} | ` +
      `${r.rt.serverUsPerOp.toFixed(1)} | ${fmt(r.fan.perSec)} (${fmt(r.fan.messagesPerSec)}) | ${r.fan.serverUsPerOp.toFixed(2)} | ` +
      `${(r.rt.clientCpu * 100).toFixed(0)} % / ${(r.fan.clientCpu * 100).toFixed(0)} % | ${lost} | ${r.badAcks} |`,
  );
}
process.exit(0);
