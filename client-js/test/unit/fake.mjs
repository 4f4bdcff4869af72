// An in-memory WebSocket and a scriptable server side for the unit tests: each socket the
// client opens is a FakeSocket the test drives (welcome, answers, pushes, closes).
import { EventEmitter } from "node:events";

export class FakeNet extends EventEmitter {
  constructor() {
    super();
    /** Every socket the client opened, in order. */
    this.sockets = [];
    const net = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = url;
        this.protocols = protocols;
        this.readyState = 0;
        this.sent = [];
        this.closed = null;
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        net.sockets.push(this);
        queueMicrotask(() => net.emit("socket", this));
      }
      send(data) {
        if (this.readyState !== 1) throw new Error("not open");
        const msg = JSON.parse(data);
        this.sent.push(msg);
        net.emit("sent", this, msg);
      }
      close(code, reason) {
        if (this.closed) return;
        this.closed = { code, reason, by: "client" };
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? "" }), 0);
      }
      // ---- server side
      open() {
        this.readyState = 1;
        this.onopen?.({});
      }
      /** Open and send the welcome frame. */
      welcome(clientId = "c1", user = null) {
        this.open();
        this.push({ type: "connected", clientId, user, timestamp: new Date().toISOString(), protocolVersion: 1 });
      }
      push(frame) {
        this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
      }
      /** Answer `msg` (a sent request) with `frame` + its requestId. */
      answer(msg, frame) {
        this.push({ ...frame, requestId: msg.requestId });
      }
      serverClose(code, reason = "") {
        if (this.closed) return;
        this.closed = { code, reason, by: "server" };
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
      /** A failed upgrade as the `ws` package reports it (error, then close 1006). */
      refuse(status) {
        this.readyState = 3;
        this.closed = { code: 1006, by: "server" };
        this.onerror?.({ message: `Unexpected server response: ${status}` });
        this.onclose?.({ code: 1006, reason: "" });
      }
    };
  }

  /** The next socket the client opens (or the n-th, when it already exists). */
  socket(n) {
    if (n !== undefined && this.sockets[n]) return Promise.resolve(this.sockets[n]);
    return new Promise((resolve) => {
      const on = (s) => {
        if (n === undefined || this.sockets.indexOf(s) === n) {
          this.off("socket", on);
          resolve(s);
        }
      };
      this.on("socket", on);
    });
  }

  /** The next message a socket sends that satisfies `pred` (already-sent ones count). */
  sent(sock, pred = () => true) {
    const hit = sock.sent.find((m) => pred(m) && !m.__seen);
    if (hit) {
      hit.__seen = true;
      return Promise.resolve(hit);
    }
    return new Promise((resolve) => {
      const on = (s, m) => {
        if (s === sock && pred(m) && !m.__seen) {
          m.__seen = true;
          this.off("sent", on);
          resolve(m);
        }
      };
      this.on("sent", on);
    });
  }
}

/**
 * Answers every request on `sock` like a minimal server would: subscribe -> subscribed,
 * publish -> published, ping -> pong, join -> joined, ... `overrides[type](msg, n)` may
 * return another frame (or null for no answer).
 */
export function autoAnswer(net, sock, overrides = {}) {
  let subs = 0;
  const counts = {};
  const on = (s, m) => {
    if (s !== sock || m.requestId === undefined || m.__answered) return;
    m.__answered = true;
    counts[m.type] = (counts[m.type] ?? 0) + 1;
    const o = overrides[m.type];
    let frame;
    if (o) frame = o(m, counts[m.type]);
    else frame = defaultAnswer(m, () => `sub-${++subs}`);
    if (frame) setTimeout(() => sock.readyState === 1 && sock.answer(m, frame), 0);
  };
  net.on("sent", on);
  for (const m of [...sock.sent]) on(sock, m); // sent before this was set up
  return () => net.off("sent", on);
}

function defaultAnswer(m, nextSub) {
  switch (m.type) {
    case "ping":
      return { type: "pong", timestamp: Date.now() };
    case "subscribe":
      return m.resource
        ? { type: "subscribed", subscriptionId: nextSub(), resource: m.resource, ...(m.filter ? { filter: m.filter } : {}), events: m.events ?? ["insert", "update", "delete"] }
        : { type: "subscribed", subscriptionId: nextSub(), channel: m.channel };
    case "unsubscribe":
      return { type: "unsubscribed", subscriptionIds: [m.subscriptionId ?? "sub-x"] };
    case "publish":
      return { type: "published", channel: m.channel, delivered: 1 };
    case "join":
      return { type: "joined", room: m.room, members: 1 };
    case "leave":
      return { type: "left", room: m.room };
    case "room:members":
      return { type: "room:members", room: m.room, members: [{ clientId: "c1", user: null }] };
    case "room:message":
    case "direct":
      return m.ack ? { type: "sent", delivered: 1 } : null;
    case "insert":
      return { type: "inserted", resource: m.resource, data: { id: "r1", ...m.data } };
    default:
      return { type: "error", code: "UNKNOWN_MESSAGE_TYPE", message: `Unknown message type: ${m.type}` };
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolve when `emitter` emits `event` (optionally satisfying `pred`). */
export function once(emitter, event, pred = () => true) {
  return new Promise((resolve) => {
    const off = emitter.on(event, (p) => {
      if (pred(p)) {
        off();
        resolve(p);
      }
    });
  });
}

/** A JWT-shaped token (unsigned: the fake server does not verify) expiring at `expSec`. */
export function fakeJwt(expSec, sub = "u1") {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: expSec })}.sig`;
}
