// Loading the wasm module from disk: Node, Deno (--allow-read) and Bun all provide node:fs.
import { readFileSync } from "node:fs";
import { initWasm, wasmReady, loadDeployment } from "./core.js";

/** The full module (every feature). */
export const WASM_URL = new URL("../pkg/switchboard_wasm_bg.wasm", import.meta.url);
/** The lean module: no JSON Schema validation (a config with `schema` is refused). */
export const LEAN_WASM_URL = new URL("../pkg-lean/switchboard_wasm_bg.wasm", import.meta.url);

/**
 * Read and instantiate the engine's .wasm (once; the first call picks the module).
 * The adapters call it with the default; call it first with LEAN_WASM_URL to use the
 * lean module instead.
 */
export function initFromFile(url = WASM_URL) {
  if (!wasmReady()) initWasm(readFileSync(url));
}

/** Read a deployment document (JSON) and split it; see loadDeployment(). */
export function readDeployment(path, env = {}) {
  initFromFile();
  return loadDeployment(readFileSync(path, "utf8"), env);
}
