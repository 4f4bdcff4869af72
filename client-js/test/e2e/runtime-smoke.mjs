// Run under another runtime with its standard WebSocket (Deno, Bun, Node with
// --experimental-websocket): connect to URL, subscribe to a channel, publish to it from
// a second client, and print what arrived as one JSON line.
import { Client } from "../../dist/index.js";

const url = (globalThis.Deno?.args ?? process.argv.slice(2))[0];
const opts = { url, pingIntervalMs: 0, reconnect: false, requestTimeoutMs: 5000 };
const sub = new Client({ ...opts, token: "key_user" });
const pub = new Client(opts);
const chat = sub.channel("runtime:smoke").subscribe();
const got = new Promise((resolve) => chat.on("message", (m) => resolve(m.data)));
const info = await sub.connect();
await chat.ready();
await pub.connect();
const published = await pub.publish("runtime:smoke", { hello: "from " + (globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node") });
const data = await got;
console.log(JSON.stringify({ user: info.user.id, delivered: published.delivered, data }));
sub.close();
pub.close();
