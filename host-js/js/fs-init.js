// Loading the wasm module from disk: Node, Deno (--allow-read) and Bun all provide node:fs.
import { readFileSync } from "node:fs";
import { initWasm, wasmReady, loadDeployment } from "./core.js";

export const WASM_URL = new URL("../pkg/switchboard_wasm_bg.wasm", import.meta.url);

/** Read and instantiate the engine's .wasm (once). */
export function initFromFile(url = WASM_URL) {
  if (!wasmReady()) initWasm(readFileSync(url));
}

/** Read a deployment document (JSON) and split it; see loadDeployment(). */
export function readDeployment(path, env = {}) {
  initFromFile();
  return loadDeployment(readFileSync(path, "utf8"), env);
}
