#!/usr/bin/env node
// Generates src/protocol.gen.ts from the protocol's JSON Schemas (protocol-spec/schemas).
//
//   node scripts/gen-types.mjs           write src/protocol.gen.ts
//   node scripts/gen-types.mjs --check   exit 1 (and say what to run) when the committed
//                                        file differs from what the schemas generate
//
// The schemas use a small, regular subset of JSON Schema: `$defs` with `$ref`, `const`,
// `enum`, `type` (possibly a list), `properties` / `required` / `additionalProperties`,
// `items`, a root `oneOf` of `$ref`s (the message union) and `oneOf` branches that only
// narrow properties (the upgrade rejection's `reason`, the `data` answer's `data`).
// Constraints a TypeScript type cannot express (`if`/`then`, `not`, `pattern`, lengths)
// are left to the server. General converters (json-schema-to-typescript) turn those
// narrowing branches into intersections with index signatures, which loses the
// discriminated unions the SDK relies on; hence this generator for our subset.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const SCHEMAS = join(HERE, "..", "..", "protocol-spec", "schemas");
const OUT = join(HERE, "..", "src", "protocol.gen.ts");

/** Upper-camel-case a `$defs` key: `roomMessage_s3db` -> `RoomMessageS3db`. */
function pascal(key) {
  return key
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join("");
}

function doc(text, indent = "") {
  if (!text) return "";
  const lines = String(text).replaceAll("*/", "*\\/").split("\n");
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

class Gen {
  constructor(prefix, schema) {
    this.prefix = prefix;
    this.schema = schema;
  }

  refName(ref) {
    const m = /^#\/\$defs\/(.+)$/.exec(ref);
    if (!m) throw new Error(`unsupported $ref ${ref}`);
    if (!this.schema.$defs?.[m[1]]) throw new Error(`dangling $ref ${ref}`);
    return this.prefix + pascal(m[1]);
  }

  /** The TypeScript type of a schema. */
  type(s, indent = "") {
    if (s === true || s === undefined) return "unknown";
    if (s === false) return "never";
    if (s.$ref) return this.refName(s.$ref);
    if ("const" in s) return JSON.stringify(s.const);
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (s.oneOf && !s.type && !s.properties && s.oneOf.every((b) => b.type || b.$ref || b.const !== undefined)) {
      return s.oneOf.map((b) => this.type(b, indent)).join(" | ");
    }
    const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    if (types.length === 0) return "unknown";
    return types.map((t) => this.single(t, s, indent)).join(" | ");
  }

  single(t, s, indent) {
    switch (t) {
      case "string":
        return "string";
      case "integer":
      case "number":
        return "number";
      case "boolean":
        return "boolean";
      case "null":
        return "null";
      case "array":
        return s.items ? `${wrap(this.type(s.items, indent))}[]` : "unknown[]";
      case "object":
        return this.object(s, indent);
      default:
        throw new Error(`unsupported type ${t}`);
    }
  }

  /** Property types narrowed by `oneOf` branches that all define the property. */
  narrowed(s) {
    const out = {};
    if (!Array.isArray(s.oneOf) || !s.properties) return out;
    for (const name of Object.keys(s.properties)) {
      const branches = s.oneOf.map((b) => b.properties?.[name]);
      if (branches.every((b) => b !== undefined)) {
        const parts = [...new Set(branches.map((b) => this.type(b)).flatMap((t) => t.split(" | ")))];
        out[name] = parts.join(" | ");
      }
    }
    return out;
  }

  object(s, indent) {
    const props = s.properties ?? {};
    const names = Object.keys(props);
    const extra = s.additionalProperties;
    if (names.length === 0) {
      if (extra === false) return "Record<string, never>";
      return `{ [key: string]: ${extra && extra !== true ? "unknown" : "unknown"} }`;
    }
    const narrowed = this.narrowed(s);
    const required = new Set(s.required ?? []);
    const inner = indent + "  ";
    const lines = names.map((n) => {
      const p = props[n];
      const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(n) ? n : JSON.stringify(n);
      const opt = required.has(n) ? "" : "?";
      const d = p && typeof p === "object" && !p.$ref ? doc(p.description, inner) : "";
      return `${d}${inner}${key}${opt}: ${narrowed[n] ?? this.type(p, inner)};`;
    });
    if (extra !== undefined && extra !== false) {
      lines.push(`${inner}[key: string]: unknown;`);
    }
    return `{\n${lines.join("\n")}\n${indent}}`;
  }

  /** `export type` for every `$defs` entry, plus the root union. */
  defs() {
    let out = "";
    for (const [key, def] of Object.entries(this.schema.$defs ?? {})) {
      const d = doc([def.title && `\`${def.title}\``, def.description].filter(Boolean).join(": "));
      out += `${d}export type ${this.prefix}${pascal(key)} = ${this.type(def)};\n\n`;
    }
    return out;
  }

  /** [type const, TS name] of each message in the root `oneOf`. */
  messages() {
    return (this.schema.oneOf ?? []).map((b) => {
      const name = this.refName(b.$ref);
      const def = this.schema.$defs[b.$ref.slice("#/$defs/".length)];
      return [def.properties.type.const, name];
    });
  }
}

function wrap(t) {
  return t.includes(" | ") || t.includes("{") ? `(${t})` : t;
}

/** The TypeScript module the schemas in `dir` generate. */
export function generate(dir = SCHEMAS) {
  const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
  const client = new Gen("Client", load("client-message.schema.json"));
  const server = new Gen("Server", load("server-message.schema.json"));
  const rejection = new Gen("Upgrade", load("upgrade-rejection.schema.json"));
  const cm = client.messages();
  // Branches with a constant `type` are the built-in messages; the application branch
  // (any other type) is in the union only.
  const builtIn = cm.filter(([t]) => typeof t === "string");
  const sm = server.messages();
  const errorCodes = server.schema.$defs.errorCode.enum;
  const rejectionType = rejection.type(rejection.schema);
  const reasons = rejection.narrowed(rejection.schema).reason.split(" | ").map((r) => JSON.parse(r));

  let out = `// GENERATED by scripts/gen-types.mjs from protocol-spec/schemas/*.schema.json.
// Do not edit: change the schemas, then run \`npm run gen\` in client-js.
// test/unit/types.test.mjs fails when this file and the schemas disagree.
/* eslint-disable */

// ---------------------------------------------------------------- client -> server
${client.defs()}${doc(client.schema.description)}export type ClientFrame =
${cm.map(([, n]) => `  | ${n}`).join("\n")};

/** Each client message type by its \`type\`. */
export interface ClientFrameByType {
${builtIn.map(([t, n]) => `  ${JSON.stringify(t)}: ${n};`).join("\n")}
}

/** The built-in client message types of the protocol, in schema order (any other type is
 * an application message, \`ClientApplication\`). */
export const CLIENT_MESSAGE_TYPES = ${JSON.stringify(builtIn.map(([t]) => t))} as const;

// ---------------------------------------------------------------- server -> client
${server.defs()}${doc(server.schema.description)}export type ServerFrame =
${sm.map(([, n]) => `  | ${n}`).join("\n")};

/** Each server message type by its \`type\`. */
export interface ServerFrameByType {
${sm.map(([t, n]) => `  ${JSON.stringify(t)}: ${n};`).join("\n")}
}

/** The server message types of the protocol, in schema order. */
export const SERVER_MESSAGE_TYPES = ${JSON.stringify(sm.map(([t]) => t))} as const;

/** Every error \`code\` of the protocol. */
export const ERROR_CODES = ${JSON.stringify(errorCodes)} as const;

// ---------------------------------------------------------------- upgrade rejection
${doc(rejection.schema.description)}export type UpgradeRejection = ${rejectionType};

/** Every \`reason\` an upgrade rejection may carry. */
export const UPGRADE_REJECTION_REASONS = ${JSON.stringify(reasons)} as const;
`;
  return out;
}

/** Where the generated module is committed. */
export const GENERATED = OUT;

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const text = generate();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(OUT, "utf8");
    } catch {}
    if (current !== text) {
      console.error("src/protocol.gen.ts is out of date with protocol-spec/schemas: run `npm run gen` in client-js");
      process.exit(1);
    }
    console.log("src/protocol.gen.ts matches the schemas");
  } else {
    writeFileSync(OUT, text);
    console.log(`wrote ${OUT}`);
  }
}
