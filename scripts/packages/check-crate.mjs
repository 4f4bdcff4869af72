// Check a `.crate` (from `cargo package --no-verify`) carries every file its code includes
// at compile time: `include_str!`, `include_bytes!` and `#[path = ...]` with a literal path,
// resolved from the including file, outside `#[cfg(test)]` code (the unit tests at the end
// of a file; test-only includes may read the repository). What --no-verify would miss: a
// crate that builds in the workspace but not from its package.
//
//   node scripts/packages/check-crate.mjs NAME-VERSION.crate
import { execFileSync } from "node:child_process";
import { posix } from "node:path";

const crate = process.argv[2];
if (!crate) {
  console.error("usage: node check-crate.mjs NAME-VERSION.crate");
  process.exit(2);
}
const entries = execFileSync("tar", ["-tzf", crate], { encoding: "utf8" }).split("\n").filter(Boolean);
const root = entries[0].split("/")[0];
const files = new Set(entries.map((e) => e.slice(root.length + 1)));
const problems = [];
let checked = 0;
for (const file of files) {
  if (!file.endsWith(".rs") || file.startsWith("tests/") || file.startsWith("benches/")) continue;
  const text = execFileSync("tar", ["-xzOf", crate, `${root}/${file}`], { encoding: "utf8" });
  const cut = text.search(/^\s*#\[cfg\(test\)\]/m);
  const code = cut < 0 ? text : text.slice(0, cut);
  for (const m of code.matchAll(/include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)|#\[path\s*=\s*"([^"]+)"\]/g)) {
    const target = posix.normalize(posix.join(posix.dirname(file), m[1] ?? m[2]));
    checked++;
    if (!files.has(target)) problems.push(`${file} includes ${m[1] ?? m[2]} (${target}), which is not in the package`);
  }
}
if (problems.length) {
  console.error(`${crate}:\n  ${problems.join("\n  ")}\n(add them to the crate's \`include\` in Cargo.toml, or a link next to the crate)`);
  process.exit(1);
}
console.log(`packages: ${root}.crate: ${files.size} files, ${checked} compile-time include(s) all inside`);
