// The Switchboard web console (served by the native host at /console). Polls the
// read-only console API for the server's clients, channels, subscriptions, rooms and
// counters, charts message rates and round-trip latency, and offers a message tester
// that connects through @switchboard/client. Bundled by scripts/build.mjs into
// host-native/console/console.js; the page it drives is host-native/console/index.html.
import { Client, type SwitchboardError } from "../src/index.js";

type Json = Record<string, unknown>;
interface Sub { subscriptionId: string; resource?: string; channel?: string; filter?: Json; events?: string[] }
interface ClientRow { clientId: string; user: { id: string; role: string | null } | null; peer?: string; subscriptions: Sub[]; rooms: string[]; connectedAt?: string }
interface RoomRow { room: string; members: number; maxConnections: number }

const POLL_MS = 2000;
const PING_MS = 3000;
const SAMPLES = 90;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function el(tag: string, text?: string, cls?: string): HTMLElement {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fillTable(id: string, rows: string[][], empty: string): void {
  const body = $(id).querySelector("tbody")!;
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", empty, "empty");
    (td as HTMLTableCellElement).colSpan = 8;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const r of rows) {
    const tr = el("tr");
    for (const c of r) {
      const td = el("td", c);
      td.title = c;
      tr.append(td);
    }
    body.append(tr);
  }
}

async function api<T>(what: string): Promise<T> {
  const r = await fetch(`/console/api/${what}`, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) {
    location.reload(); // the session ended: back to the sign-in form
    throw new Error("signed out");
  }
  if (!r.ok) throw new Error(`${what}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

function ago(iso?: string): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function duration(ms: number): string {
  return ago(new Date(Date.now() - ms).toISOString());
}

// ---------------------------------------------------------------- charts

class Chart {
  private series: { color: string; values: (number | null)[] }[];
  constructor(
    private canvas: HTMLCanvasElement,
    colors: string[],
  ) {
    this.series = colors.map((color) => ({ color, values: [] }));
  }
  push(values: (number | null)[]): void {
    values.forEach((v, i) => {
      const s = this.series[i].values;
      s.push(v);
      if (s.length > SAMPLES) s.shift();
    });
    this.draw();
  }
  draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || c.width;
    const h = c.clientHeight || c.height;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const g = c.getContext("2d")!;
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const all = this.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
    const max = Math.max(1, ...all) * 1.15;
    const css = getComputedStyle(document.documentElement);
    g.strokeStyle = css.getPropertyValue("--line").trim() || "#333";
    g.fillStyle = css.getPropertyValue("--muted").trim() || "#888";
    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = 4 + ((h - 16) * i) / 4;
      g.beginPath();
      g.moveTo(34, y);
      g.lineTo(w, y);
      g.stroke();
      const label = (max * (1 - i / 4)).toFixed(max < 10 ? 1 : 0);
      g.fillText(label, 0, y + 4);
    }
    for (const s of this.series) {
      g.strokeStyle = css.getPropertyValue(s.color).trim() || s.color;
      g.lineWidth = 2;
      g.beginPath();
      let started = false;
      s.values.forEach((v, i) => {
        if (v === null) {
          started = false;
          return;
        }
        const x = 34 + ((w - 34) * (i + SAMPLES - s.values.length)) / (SAMPLES - 1);
        const y = 4 + (h - 16) * (1 - v / max);
        if (started) g.lineTo(x, y);
        else g.moveTo(x, y);
        started = true;
      });
      g.stroke();
    }
  }
}

const rates = new Chart($("chart-rates"), ["--in", "--out"]);
const latency = new Chart($("chart-latency"), ["--lat"]);

// ---------------------------------------------------------------- server view

let last: { at: number; received: number; sent: number } | null = null;
let info: Json | null = null;

function card(label: string, value: string): HTMLElement {
  const d = el("div", undefined, "card");
  d.append(el("b", value), el("span", label));
  return d;
}

async function poll(): Promise<void> {
  try {
    const [i, clients, rooms, metrics] = await Promise.all([
      api<Json>("info"),
      api<ClientRow[]>("clients"),
      api<RoomRow[]>("rooms"),
      api<Json>("metrics"),
    ]);
    info = i;
    $("server-name").textContent = String(i.name ?? "");
    const status = $("status");
    status.textContent = i.draining ? "draining" : "live";
    status.className = `badge ${i.draining ? "wait" : "ok"}`;
    const received = Number(metrics.messagesReceived ?? 0);
    const sent = Number(metrics.messagesSent ?? 0);
    const now = performance.now();
    if (last) {
      const dt = (now - last.at) / 1000;
      rates.push([(received - last.received) / dt, (sent - last.sent) / dt]);
    }
    last = { at: now, received, sent };
    $("summary").replaceChildren(
      card("clients", String(i.clients ?? clients.length)),
      card("subscriptions", String(i.subscriptions ?? "")),
      card("rooms", String(i.rooms ?? rooms.length)),
      card("messages received", String(received)),
      card("messages sent", String(sent)),
      card("errors", String(metrics.errors ?? 0)),
      card("uptime", duration(Number(i.uptimeMs ?? 0))),
    );
    $("clients-count").textContent = `(${clients.length})`;
    fillTable(
      "clients",
      clients.map((c) => [
        c.clientId,
        c.user ? `${c.user.id}${c.user.role ? ` (${c.user.role})` : ""}` : "anonymous",
        c.peer ?? "",
        c.subscriptions.map((s) => s.channel ?? `${s.resource}${s.filter ? JSON.stringify(s.filter) : ""}`).join(", "),
        c.rooms.join(", "),
        ago(c.connectedAt),
      ]),
      "no clients connected",
    );
    const channels = new Map<string, number>();
    const resources = new Map<string, { subs: number; clients: Set<string> }>();
    for (const c of clients) {
      for (const s of c.subscriptions) {
        if (s.channel !== undefined) channels.set(s.channel, (channels.get(s.channel) ?? 0) + 1);
        if (s.resource !== undefined) {
          const r = resources.get(s.resource) ?? { subs: 0, clients: new Set<string>() };
          r.subs++;
          r.clients.add(c.clientId);
          resources.set(s.resource, r);
        }
      }
    }
    fillTable("channels", [...channels].sort().map(([n, k]) => [n, String(k)]), "no channel subscriptions");
    fillTable("resources", [...resources].sort().map(([n, r]) => [n, String(r.subs), String(r.clients.size)]), "no resource subscriptions");
    fillTable("rooms", rooms.map((r) => [r.room, String(r.members), String(r.maxConnections)]), "no rooms");
    if (!testerUrl.value) testerUrl.value = defaultUrl();
  } catch (err) {
    const status = $("status");
    status.textContent = `unreachable: ${(err as Error).message}`;
    status.className = "badge bad";
  }
}

// ---------------------------------------------------------------- tester

const testerUrl = $<HTMLInputElement>("t-url");
const log = $("t-log");
let client: Client | null = null;

function defaultUrl(): string {
  const routes = (info?.routes as { path: string; host?: string | null }[] | undefined) ?? [];
  const route = routes.find((r) => !r.host) ?? { path: "/" };
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${route.path}`;
}

function write(kind: string, payload: unknown): void {
  const line = `${new Date().toISOString().slice(11, 23)} ${kind} ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n`;
  log.textContent = (line + (log.textContent ?? "")).slice(0, 20000);
}

function parseJson(id: string): unknown {
  const v = $<HTMLInputElement>(id).value.trim();
  return v === "" ? undefined : JSON.parse(v);
}

function connectTester(): void {
  client?.close();
  const token = $<HTMLInputElement>("t-token").value.trim() || null;
  const c = new Client({ url: testerUrl.value || defaultUrl(), token, pingIntervalMs: 0 });
  client = c;
  const badge = $("t-state");
  c.on("state", ({ state }) => {
    badge.textContent = state;
    badge.className = `badge ${state === "connected" ? "ok" : state === "closed" ? "bad" : "wait"}`;
  });
  c.on("connected", (i) => write("connected", i));
  c.on("disconnected", (d) => write("disconnected", d));
  c.on("closed", (d) => write("closed", d));
  c.on("frame", (f) => {
    const frame = f as Json | null;
    // Answers are logged with their request; pushes and verbatim messages here.
    if (frame?.type !== "connected" && !(frame && "requestId" in frame)) write("<", f);
  });
  c.on("error", (e) => write("error", `${e.code}: ${e.message}`));
  void c.connect().catch((e: SwitchboardError) => write("error", `${e.code}: ${e.message}`));
}

async function measureLatency(): Promise<void> {
  if (!client || client.state !== "connected") {
    latency.push([null]);
    return;
  }
  try {
    latency.push([await client.ping({ timeoutMs: 5000 })]);
  } catch {
    latency.push([null]);
  }
}

$("tester-connect").addEventListener("submit", (e) => {
  e.preventDefault();
  connectTester();
});
$("t-disconnect").addEventListener("click", () => client?.close());
$("tester-send").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!client) connectTester();
  const type = $<HTMLInputElement>("t-type").value.trim();
  try {
    const fields = (parseJson("t-fields") ?? {}) as Json;
    write(">", { type, ...fields });
    write("answer", await client!.request(type, fields));
  } catch (err) {
    const e = err as SwitchboardError;
    write("error", `${e.code ?? "INVALID_INPUT"}: ${e.message}`);
  }
});
$("tester-sub").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!client) connectTester();
  const name = $<HTMLInputElement>("t-channel").value.trim();
  const ch = client!.channel(name);
  if (ch.listenerCount("message") === 0) ch.on("message", (m) => write(`#${name}`, m));
  ch.subscribe();
  try {
    await ch.ready();
    write("subscribed", name);
  } catch (err) {
    write("error", `${(err as SwitchboardError).code}: ${(err as Error).message}`);
  }
});
$("t-publish").addEventListener("click", async () => {
  if (!client) connectTester();
  const name = $<HTMLInputElement>("t-channel").value.trim();
  try {
    write("published", await client!.publish(name, parseJson("t-message")));
  } catch (err) {
    write("error", `${(err as SwitchboardError).code ?? "INVALID_INPUT"}: ${(err as Error).message}`);
  }
});

void poll().then(() => {
  testerUrl.value = defaultUrl();
  connectTester();
});
setInterval(() => void poll(), POLL_MS);
setInterval(() => void measureLatency(), PING_MS);
window.addEventListener("resize", () => {
  rates.draw();
  latency.draw();
});
