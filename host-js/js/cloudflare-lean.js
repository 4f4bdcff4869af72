// @ts-self-types="./cloudflare.d.ts"
// Cloudflare Workers host with the lean module: no JSON Schema validation (a config that
// sets a resource `schema` is refused with a config error), under 1 MiB gzipped for
// Workers' script size limits.
// Everything but the module is in js/cloudflare-host.js.
import wasmModule from "../pkg-lean/switchboard_wasm_bg.wasm";
import { initWasm } from "./core.js";

// Instantiating a precompiled module is allowed at global scope (randomness is not:
// seeds and client ids are drawn inside handlers). Imports are evaluated first, and
// cloudflare-host.js touches the module only inside handlers.
initWasm(wasmModule);

export * from "./cloudflare-host.js";
