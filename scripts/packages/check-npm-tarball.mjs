// Check an `npm pack` tarball is a real package: not private, named and versioned, with a
// license, a `files` list, a README, types, and every `exports` target (and the types of
// each conditional export) inside.
// Test sources, benches, Rust sources and node_modules must not be.
//
//   node scripts/packages/check-npm-tarball.mjs PACKAGE.tgz
import { execFileSync } from "node:child_process";

const tarball = process.argv[2];
if (!tarball) {
  console.error("usage: node check-npm-tarball.mjs PACKAGE.tgz");
  process.exit(2);
}
const files = new Set(
  execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, "")),
);
const pkg = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));
const problems = [];
const need = (ok, what) => ok || problems.push(what);

need(pkg.private !== true, '"private": true (npm refuses to publish it)');
need(/^@?[a-z0-9-~][a-z0-9-._~]*(\/[a-z0-9-~][a-z0-9-._~]*)?$/.test(pkg.name ?? ""), `name ${JSON.stringify(pkg.name)}`);
need(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(pkg.version ?? ""), `version ${JSON.stringify(pkg.version)} is not semver`);
need(typeof pkg.license === "string" && pkg.license.length > 0, "no license");
need(typeof pkg.description === "string" && pkg.description.length > 0, "no description");
need(Array.isArray(pkg.files) && pkg.files.length > 0, "no `files` list");
need(files.has("README.md"), "no README.md in the tarball");
need(pkg.exports && typeof pkg.exports === "object", "no `exports` map");

const rel = (p) => p.replace(/^\.\//, "");
const main = pkg.exports?.["."];
need(typeof pkg.types === "string" || typeof main?.types === "string", "no types for the main entry");
if (typeof pkg.types === "string") need(files.has(rel(pkg.types)), `types ${pkg.types} is not in the tarball`);
for (const [entry, target] of Object.entries(pkg.exports ?? {})) {
  // A conditions object must name its types; a plain path (e.g. a browser bundle) may not.
  const t = typeof target === "string" ? { default: target } : target;
  if (typeof target !== "string") need(typeof t.types === "string", `export ${entry} has no types`);
  for (const [cond, path] of Object.entries(t)) {
    need(files.has(rel(path)), `export ${entry} (${cond}) -> ${path} is not in the tarball`);
  }
}
for (const f of files) {
  need(!/^(test|bench|src|node_modules|target)\//.test(f) && !/\.rs$/.test(f), `${f} should not be published`);
}
const repo = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
if (!repo || /example\.invalid/.test(repo)) {
  console.log(`${pkg.name}: note: "repository" is ${repo ? `the placeholder ${repo}` : "missing"}; set it before publishing`);
}

if (problems.length) {
  console.error(`${tarball}: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`${pkg.name}@${pkg.version}: ${files.size} files, every export and its types inside, README.md, not private`);
