// The README's "Tour", run as written: every command of that section against a fresh demo
// server, every documented answer checked. The commands and answers are read from
// README.md itself, so the README cannot drift from what the server does.
//
//   bash scripts/tour/test.sh          (npm ci for the pinned wscat, builds the server, runs this)
//
// The section is plain Markdown with invisible markers, each followed by a fenced block:
//
//   <!-- tour: setup -->                        install commands (not run; the wscat
//                                               version must be the one locked here)
//   <!-- tour: server -->                       `cargo run --release -p switchboard -- serve ARGS`:
//                                               runs the debug build with ARGS on a random port
//   <!-- tour: run NAME -->                     a shell command; waits for it to exit
//   <!-- tour: run NAME background ready=N -->  starts it, waits for N lines of output
//   <!-- tour: expect NAME -->                  what NAME printed (stdout and stderr); for
//                                               `server`, the first lines it printed
//
// Each `### ` heading is one test, in order. Adding a section to the tour is writing
// README text with these markers; nothing here changes.
//
// Compared as written, line by line, except: `127.0.0.1:3001` is the test server's port,
// `./target/release/switchboard` is the binary under test, and in JSON lines the values
// of `clientId`, `timestamp`, `createdAt`, `updatedAt`, `iat`, `exp` and generated record
// ids (`id` of 20 URL-safe characters) are not compared.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const ROOT = resolve(HERE, "../..");
const BIN = process.env.SWITCHBOARD_BIN ?? resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug/switchboard");
const DOC_ADDR = "127.0.0.1:3001";
const DOC_BIN = "./target/release/switchboard";
const SERVE = "cargo run --release -p switchboard -- serve";
const VOLATILE = new Set(["clientId", "timestamp", "createdAt", "updatedAt", "iat", "exp"]);
const GENERATED_ID = /^[A-Za-z0-9_-]{20}$/;
const RUN_TIMEOUT_MS = 30_000;
const WAIT_MS = 10_000;
const QUIET_MS = 300;

/** Parse the `## Tour` section of a Markdown document into sections of marked blocks. */
export function parseTour(markdown) {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => /^## Tour\s*$/.test(l));
  if (start < 0) throw new Error("README.md has no `## Tour` section");
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  const sections = [{ title: "(before the first ### heading)", items: [] }];
  for (let i = start + 1; i < end; i++) {
    const heading = lines[i].match(/^### (.+)$/);
    if (heading) {
      sections.push({ title: heading[1].trim(), items: [] });
      continue;
    }
    const marker = lines[i].match(/^<!-- tour: (\w+)(.*?) -->\s*$/);
    if (!marker) {
      if (lines[i].includes("<!-- tour")) throw new Error(`README.md:${i + 1}: malformed tour marker: ${lines[i]}`);
      continue;
    }
    const [, kind, rest] = marker;
    const words = rest.trim().split(/\s+/).filter(Boolean);
    let j = i + 1;
    while (j < end && lines[j].trim() === "") j++;
    if (j >= end || !lines[j].startsWith("```")) throw new Error(`README.md:${i + 1}: \`<!-- tour: ${kind} -->\` must be followed by a fenced block`);
    const close = lines.findIndex((l, k) => k > j && l.startsWith("```"));
    if (close < 0 || close >= end) throw new Error(`README.md:${j + 1}: unclosed fenced block`);
    const item = { kind, line: i + 1, code: lines.slice(j + 1, close).join("\n") };
    if (kind === "run" || kind === "expect") {
      item.name = words.shift();
      if (!item.name) throw new Error(`README.md:${i + 1}: \`tour: ${kind}\` needs a name`);
    }
    for (const w of words) {
      if (kind === "run" && w === "background") item.background = true;
      else if (kind === "run" && /^ready=\d+$/.test(w)) item.ready = Number(w.slice(6));
      else throw new Error(`README.md:${i + 1}: unknown marker word \`${w}\``);
    }
    if (!["setup", "server", "run", "expect"].includes(kind)) throw new Error(`README.md:${i + 1}: unknown marker \`${kind}\``);
    sections.at(-1).items.push(item);
    i = close;
  }
  // Every run has exactly one expect, after it; every expect names something run before.
  const seen = new Map();
  for (const s of sections) {
    for (const it of s.items) {
      if (it.kind === "server") seen.set("server", false);
      if (it.kind === "run") {
        if (seen.has(it.name)) throw new Error(`README.md:${it.line}: \`${it.name}\` is run twice`);
        seen.set(it.name, false);
      }
      if (it.kind === "expect") {
        if (!seen.has(it.name)) throw new Error(`README.md:${it.line}: expect \`${it.name}\` before it runs`);
        if (seen.get(it.name)) throw new Error(`README.md:${it.line}: \`${it.name}\` is expected twice`);
        seen.set(it.name, true);
      }
    }
  }
  for (const [name, expected] of seen) if (!expected) throw new Error(`the tour runs \`${name}\` but shows no answer (add <!-- tour: expect ${name} -->)`);
  return sections.filter((s) => s.items.length > 0);
}

/** A line in comparable form: JSON with volatile values blanked, anything else as is. */
export function comparable(line) {
  const t = line.trimEnd();
  if (!t.startsWith("{") && !t.startsWith("[")) return t;
  let v;
  try {
    v = JSON.parse(t);
  } catch {
    return t;
  }
  const blank = (x) => {
    if (Array.isArray(x)) return x.map(blank);
    if (x === null || typeof x !== "object") return x;
    const out = {};
    for (const [k, val] of Object.entries(x)) {
      if (VOLATILE.has(k)) out[k] = "<varies>";
      else if (k === "id" && typeof val === "string" && GENERATED_ID.test(val)) out[k] = "<generated id>";
      else out[k] = blank(val);
    }
    return out;
  };
  return JSON.stringify(blank(v));
}

const lineList = (text) => text.split("\n").filter((l, i, a) => !(i === a.length - 1 && l === ""));

function assertOutput(name, command, actualText, expectedText) {
  const actual = lineList(actualText).map(comparable);
  const expected = lineList(expectedText).map(comparable);
  assert.deepEqual(actual, expected, `\`${name}\` printed something else than README.md shows.\ncommand:\n${command}\nprinted:\n${actualText}`);
}

// ---------------------------------------------------------------- processes

const children = new Set();
const stopChild = async (p) => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  try {
    process.kill(-p.pid, "SIGTERM");
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {}
  }, 5000);
  await exited;
  clearTimeout(t);
};
process.once("exit", () => {
  for (const p of children) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {}
  }
});

/** Start a process in its own group; output (stdout + stderr) accumulates in `out`. */
function start(cmd, args, options) {
  const p = spawn(cmd, args, { ...options, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  children.add(p);
  const proc = { p, out: "", stdout: "", waiters: new Set() };
  const wake = () => proc.waiters.forEach((f) => f());
  p.stdout.on("data", (d) => {
    proc.out += d;
    proc.stdout += d;
    wake();
  });
  p.stderr.on("data", (d) => {
    proc.out += d;
    wake();
  });
  proc.exited = new Promise((r) =>
    p.once("exit", (code, signal) => {
      children.delete(p);
      proc.code = code ?? signal;
      wake();
      r();
    }),
  );
  p.once("error", (e) => {
    proc.out += `\n(cannot start ${cmd}: ${e.message})`;
    wake();
  });
  return proc;
}

/** Wait until `pred()` holds (re-checked on output and exit), at most `ms`. */
function until(proc, pred, ms, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pred()) {
        proc.waiters.delete(check);
        clearTimeout(t);
        resolve();
      }
    };
    const t = setTimeout(() => {
      proc.waiters.delete(check);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}; output so far:\n${proc.out}`));
    }, ms);
    proc.waiters.add(check);
    check();
  });
}

// ---------------------------------------------------------------- the tour

const sections = parseTour(readFileSync(join(ROOT, "README.md"), "utf8"));
const work = mkdtempSync(join(tmpdir(), "switchboard-tour-"));
const env = { ...process.env, NO_COLOR: "1", PATH: [join(HERE, "node_modules/.bin"), process.env.PATH].join(delimiter) };
delete env.SWITCHBOARD_JWT_SECRET;
delete env.SWITCHBOARD_ADMIN_KEY;
delete env.RUST_LOG;
const procs = new Map();
let addr = null;

after(async () => {
  await Promise.all([...procs.values()].map((p) => stopChild(p.p)));
  rmSync(work, { recursive: true, force: true });
});

const localize = (text) => text.replaceAll(DOC_ADDR, addr ?? DOC_ADDR);

test("the tour section is well formed and runs a server, commands and checks", () => {
  const kinds = sections.flatMap((s) => s.items.map((i) => i.kind));
  assert.equal(kinds.filter((k) => k === "server").length, 1, "exactly one `tour: server`");
  assert.ok(kinds.filter((k) => k === "run").length >= 5, "at least five commands");
  assert.ok(kinds.indexOf("server") < kinds.indexOf("run"), "the server starts first");
});

test("the tour installs the wscat version this test runs", () => {
  const setup = sections.flatMap((s) => s.items).filter((i) => i.kind === "setup");
  assert.ok(setup.length > 0, "the tour says how to install wscat");
  const locked = JSON.parse(readFileSync(join(HERE, "package-lock.json"), "utf8")).packages["node_modules/wscat"].version;
  const mentioned = setup.map((i) => i.code.match(/wscat@(\S+)/)?.[1]).filter(Boolean);
  assert.deepEqual(mentioned, [locked], `README installs wscat@${mentioned} but scripts/tour/package-lock.json has ${locked}`);
});

for (const section of sections) {
  if (section.items.every((i) => i.kind === "setup")) continue;
  test(`tour: ${section.title}`, { timeout: 120_000 }, async () => {
    for (const item of section.items) {
      if (item.kind === "server") {
        const line = item.code.trim();
        assert.ok(line.startsWith(SERVE) && !line.includes("\n"), `README.md:${item.line}: the server block must be one \`${SERVE} [ARGS]\` line`);
        const args = line.slice(SERVE.length).trim().split(/\s+/).filter(Boolean);
        const proc = start(BIN, ["serve", ...args, "--listen", "127.0.0.1:0"], { cwd: work, env });
        procs.set("server", proc);
        await until(proc, () => / listening on 127\.0\.0\.1:\d+\n/.test(proc.stdout) || proc.code !== undefined, WAIT_MS, "the server's banner");
        const m = proc.stdout.match(/ listening on (127\.0\.0\.1:\d+)\n/);
        assert.ok(m, `the server did not start:\n${proc.out}`);
        addr = m[1];
      } else if (item.kind === "run") {
        assert.ok(addr, `README.md:${item.line}: a command before the server started`);
        const command = localize(item.code).replaceAll(DOC_BIN, BIN);
        // stdin stays open: wscat exits when its input ends, as in a terminal.
        const proc = start("bash", ["-c", `exec 2>&1\nset -o pipefail\n${command}`], { cwd: work, env });
        proc.command = item.code;
        procs.set(item.name, proc);
        if (item.background) {
          await until(proc, () => lineList(proc.out).length >= (item.ready ?? 1), WAIT_MS, `${item.ready ?? 1} line(s) from \`${item.name}\``);
        } else {
          let timer;
          await Promise.race([proc.exited, new Promise((r) => (timer = setTimeout(r, RUN_TIMEOUT_MS)))]);
          clearTimeout(timer);
          if (proc.code === undefined) {
            await stopChild(proc.p);
            assert.fail(`\`${item.name}\` still running after ${RUN_TIMEOUT_MS} ms:\n${item.code}\nprinted:\n${proc.out}`);
          }
        }
      } else if (item.kind === "expect") {
        const proc = procs.get(item.name);
        const expected = localize(item.code);
        if (item.name === "server") {
          const n = lineList(expected).length;
          await until(proc, () => lineList(proc.stdout).length >= n, WAIT_MS, `${n} banner lines`);
          assertOutput("server", SERVE, lineList(proc.stdout).slice(0, n).join("\n"), expected);
        } else {
          if (proc.code === undefined) {
            // A background command: wait for what the README shows, then a quiet moment
            // for anything it does not show, then stop it.
            const n = lineList(expected).length;
            await until(proc, () => lineList(proc.out).length >= n || proc.code !== undefined, WAIT_MS, `${n} lines from \`${item.name}\``).catch(() => {});
            await new Promise((r) => setTimeout(r, QUIET_MS));
            await stopChild(proc.p);
          }
          assertOutput(item.name, proc.command, proc.out, expected);
        }
      }
    }
  });
}

test("the tour leaves the server running without errors", async () => {
  const server = procs.get("server");
  assert.ok(server, "the tour started a server");
  assert.equal(server.code, undefined, `the server exited:\n${server.out}`);
  assert.doesNotMatch(server.out, /\bERROR\b|panicked/, server.out);
});
