// Reading the engine's batches (format: host-js/src/batch.rs): the ops line of a batch
// string, and the batch a client frame leaves in wasm memory (engine.frameView), whose
// numbers are read from a Float64Array view and whose texts are decoded from the bytes.

/** The module's memory, where frames' batches are read (Host.readView); core.js's initWasm sets it. */
let memory = null;

/** Read views from this `WebAssembly.Memory` from now on (initWasm). */
export function bindMemory(m) {
  memory = m;
  f64View = null;
  u8View = null;
  bufView = null;
}

// Views of the module's memory, made again when it grew: a grown memory detaches the
// old buffer, whose views then have length 0 (the check wasm-bindgen's glue makes too;
// reading `memory.buffer` each time costs more).
let f64View = null;
let u8View = null;
export function memoryF64() {
  if (f64View === null || f64View.length === 0) f64View = new Float64Array(memory.buffer);
  return f64View;
}
function memoryU8() {
  if (u8View === null || u8View.length === 0) u8View = new Uint8Array(memory.buffer);
  return u8View;
}
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
// Where the runtime has node:buffer's Buffer as a global (Bun, Node, Deno; workerd only
// with nodejs_compat), texts are read with Buffer#toString over one Buffer view of the
// memory: no subarray object per read, and 20-50 % faster than TextDecoder.decode for
// a frame (BENCHMARKS.md, "Issue 22: texts read without TextDecoder"). The batch's texts
// are valid UTF-8 (Rust strings), so both ways give the same string.
const NodeBuffer = typeof globalThis.Buffer === "function" && typeof globalThis.Buffer.from === "function" ? globalThis.Buffer : null;
let bufView = null;
/** The UTF-8 text at [start, start + len) of the module's memory. */
export function memoryText(start, len) {
  if (NodeBuffer !== null) {
    if (bufView === null || bufView.length === 0) bufView = NodeBuffer.from(memory.buffer);
    return bufView.toString("utf8", start, start + len);
  }
  return utf8.decode(memoryU8().subarray(start, start + len));
}
/** Bytes of the module's memory now (tests: whether it grew). */
export function memoryBytes() {
  return memory.buffer.byteLength;
}
/** Numbers before the ops in a batch view (src/batch.rs VIEW_HEADER). */
export const VIEW_HEADER = 6;

// Op codes of a batch's first line (host-js/src/batch.rs).
export const OP_SEND = 1; // conn, start, end
export const OP_SEND_MANY = 2; // n, start, end (the next n of engine.recipients())
export const OP_PING = 3; // conn
export const OP_OTHER = 4; // the next of extra.actions

/**
 * Split a batch string: {ops (numbers; ops[0] = deadline or -1), extra (object or null),
 * base (where frame offsets start)}.
 */
export function decodeOps(batch) {
  const nl = batch.indexOf("\n");
  const nl2 = batch.indexOf("\n", nl + 1);
  return {
    ops: JSON.parse(batch.slice(0, nl)),
    extra: nl2 > nl + 1 ? JSON.parse(batch.slice(nl + 1, nl2)) : null,
    base: nl2 + 1,
  };
}

/**
 * Decode a batch string into {actions, timeout, error, logs, frame(i)} with one object
 * per action (sends as {action: "send", conn, frame} / {action: "sendMany", conns, frame};
 * `conns` from `recipients`, the engine's recipients() read right after the batch).
 * Tools and tests only: the Host reads the ops directly.
 */
export function decodeBatch(batch, recipients = []) {
  const { ops, extra, base } = decodeOps(batch);
  const bounds = [];
  const actions = [];
  let other = 0;
  let next = 0;
  for (let i = 1; i < ops.length; ) {
    switch (ops[i]) {
      case OP_SEND:
        actions.push({ action: "send", conn: ops[i + 1], frame: bounds.length / 2 });
        bounds.push(ops[i + 2], ops[i + 3]);
        i += 4;
        break;
      case OP_SEND_MANY: {
        const n = ops[i + 1];
        actions.push({ action: "sendMany", conns: Array.from(recipients.slice(next, next + n)), frame: bounds.length / 2 });
        next += n;
        bounds.push(ops[i + 2], ops[i + 3]);
        i += 4;
        break;
      }
      case OP_PING:
        actions.push({ action: "ping", conn: ops[i + 1] });
        i += 2;
        break;
      default:
        actions.push(extra.actions[other++]);
        i += 1;
    }
  }
  const head = { actions, frames: bounds, timeout: ops[0] < 0 ? null : ops[0] };
  if (extra?.error !== undefined) head.error = extra.error;
  if (extra?.logs !== undefined) head.logs = extra.logs;
  head.frame = (i) => batch.slice(base + bounds[2 * i], base + bounds[2 * i + 1]);
  return head;
}
