// @ts-self-types="./index.d.ts"
// Runtime-neutral entry: the Host (engine + action execution) and helpers. Runtime
// adapters: "@switchboard/host-js/node", "/deno", "/bun", "/cloudflare".
export * from "./core.js";
