/**
 * Client-side evaluation of the protocol's record filters (PROTOCOL.md §8), used to
 * route a resource `event` to the subscriptions it belongs to: the server sends each
 * change once per connection, without saying which subscription matched.
 *
 * It mirrors the engine's matcher: AND of fields, dotted paths, `$and`, literal
 * equality (numbers by value, objects regardless of key order), `$eq`, `$ne`, `$in`,
 * `$gt`/`$gte`/`$lt`/`$lte` (numbers with numbers, strings by code point, different
 * kinds never match) and `$exists`. JavaScript numbers are doubles, so integers beyond
 * 2^53 compare as their nearest double here; the client falls back to delivering to
 * every subscription of the resource when none matches, so no event is dropped.
 */
export type Filter = { [field: string]: unknown };

const MISSING = Symbol("missing");
type Found = unknown | typeof MISSING;

function lookup(record: unknown, path: string): Found {
  let cur: unknown = record;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return MISSING;
    if (!Object.prototype.hasOwnProperty.call(cur, part)) return MISSING;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** JSON equality: numbers by value, arrays element by element, objects ignoring key order. */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => valuesEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every(
      (k) =>
        Object.prototype.hasOwnProperty.call(b, k) &&
        valuesEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return a === b;
}

/** Compare strings by Unicode code point (UTF-16 order differs above U+FFFF). */
function codePointCompare(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
}

function compare(v: Found, x: unknown): number | null {
  if (typeof v === "number" && typeof x === "number") return v < x ? -1 : v > x ? 1 : 0;
  if (typeof v === "string" && typeof x === "string") return codePointCompare(v, x);
  return null;
}

function isOperatorObject(cond: unknown): cond is Record<string, unknown> {
  return cond !== null && typeof cond === "object" && !Array.isArray(cond) && Object.keys(cond).some((k) => k.startsWith("$"));
}

function holds(op: string, arg: unknown, v: Found): boolean {
  switch (op) {
    case "$eq":
      return v !== MISSING && valuesEqual(v, arg);
    case "$ne":
      return !(v !== MISSING && valuesEqual(v, arg));
    case "$in":
      return v !== MISSING && Array.isArray(arg) && arg.some((x) => valuesEqual(v, x));
    case "$gt":
      return compare(v, arg) === 1;
    case "$gte": {
      const c = compare(v, arg);
      return c === 1 || c === 0;
    }
    case "$lt":
      return compare(v, arg) === -1;
    case "$lte": {
      const c = compare(v, arg);
      return c === -1 || c === 0;
    }
    case "$exists":
      return (v !== MISSING) === arg;
    default:
      return false; // the server refuses unknown operators; such a subscription never exists
  }
}

/** Whether `record` matches `filter` (`null`, `undefined` and `{}` match everything). */
export function matchesFilter(filter: Filter | null | undefined, record: unknown): boolean {
  if (!filter) return true;
  for (const [field, cond] of Object.entries(filter)) {
    if (field === "$and") {
      if (!Array.isArray(cond) || !cond.every((f) => matchesFilter(f as Filter, record))) return false;
      continue;
    }
    const v = lookup(record, field);
    if (isOperatorObject(cond)) {
      for (const [op, arg] of Object.entries(cond)) if (!holds(op, arg, v)) return false;
    } else if (!(v !== MISSING && valuesEqual(v, cond))) {
      return false;
    }
  }
  return true;
}
