// @ts-self-types="./cloudflare.d.ts"
// Cloudflare Workers host with the full module (every feature; about 1.65 MiB gzipped).
// Everything but the module is in js/cloudflare-host.js.
import wasmModule from "../pkg/switchboard_wasm_bg.wasm";
import { initWasm } from "./core.js";

// Instantiating a precompiled module is allowed at global scope (randomness is not:
// seeds and client ids are drawn inside handlers). Imports are evaluated first, and
// cloudflare-host.js touches the module only inside handlers.
initWasm(wasmModule);

export * from "./cloudflare-host.js";
