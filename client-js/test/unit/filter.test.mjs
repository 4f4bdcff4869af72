// The client-side filter matcher agrees with the engine's (PROTOCOL.md §8).
import { test } from "node:test";
import assert from "node:assert/strict";
import { matchesFilter, valuesEqual } from "../../dist/index.js";

const rec = { id: "m1", channel: "general", n: 5, s: "b", meta: { owner: "ann", tags: ["x"] }, nil: null };

test("equality across fields is an AND; empty filters match everything", () => {
  assert.ok(matchesFilter({ channel: "general", n: 5 }, rec));
  assert.ok(!matchesFilter({ channel: "general", n: 6 }, rec));
  assert.ok(matchesFilter({}, rec) && matchesFilter(null, rec) && matchesFilter(undefined, rec));
  assert.ok(!matchesFilter({ missing: null }, rec), "a missing field never equals null");
  assert.ok(matchesFilter({ nil: null }, rec));
});

test("dotted paths and object literals compare as values", () => {
  assert.ok(matchesFilter({ "meta.owner": "ann" }, rec));
  assert.ok(!matchesFilter({ "meta.owner.x": "ann" }, rec));
  assert.ok(matchesFilter({ meta: { tags: ["x"], owner: "ann" } }, rec), "key order is ignored");
  assert.ok(!matchesFilter({ meta: { owner: "ann" } }, rec));
  assert.ok(valuesEqual(1, 1.0) && !valuesEqual([1, 2], [2, 1]) && !valuesEqual({ a: 1 }, { a: 1, b: 2 }));
});

test("every operator", () => {
  assert.ok(matchesFilter({ n: { $eq: 5 } }, rec));
  assert.ok(matchesFilter({ n: { $ne: 4 } }, rec) && matchesFilter({ missing: { $ne: 4 } }, rec));
  assert.ok(!matchesFilter({ n: { $ne: 5 } }, rec));
  assert.ok(matchesFilter({ channel: { $in: ["a", "general"] } }, rec) && !matchesFilter({ channel: { $in: [] } }, rec));
  assert.ok(matchesFilter({ n: { $gt: 4, $lt: 6 } }, rec) && matchesFilter({ n: { $gte: 5, $lte: 5 } }, rec));
  assert.ok(!matchesFilter({ n: { $gt: 5 } }, rec));
  assert.ok(matchesFilter({ s: { $gt: "a", $lt: "c" } }, rec));
  assert.ok(!matchesFilter({ s: { $gt: 1 } }, rec), "different kinds never match");
  assert.ok(!matchesFilter({ n: { $lt: "z" } }, rec));
  assert.ok(matchesFilter({ "meta.owner": { $exists: true }, zzz: { $exists: false } }, rec));
  assert.ok(!matchesFilter({ zzz: { $exists: true } }, rec));
});

test("strings compare by code point, not UTF-16 unit", () => {
  // U+FF61 (one unit, 0xFF61) sorts below U+1F600 (surrogates 0xD83D...) by code point.
  assert.ok(matchesFilter({ s: { $lt: "\u{1F600}" } }, { s: "\uFF61" }));
  assert.ok(!matchesFilter({ s: { $gt: "\u{1F600}" } }, { s: "\uFF61" }));
});

test("$and combines filters", () => {
  assert.ok(matchesFilter({ $and: [{ channel: "general" }, { n: { $gte: 5 } }] }, rec));
  assert.ok(!matchesFilter({ $and: [{ channel: "general" }, { n: { $gte: 6 } }] }, rec));
});
