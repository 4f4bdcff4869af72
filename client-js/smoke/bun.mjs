// Bun's WebSocket client.
import { serveBun } from "@switchboard/host-js/bun";
import { smoke } from "./common.mjs";

await smoke(`bun ${Bun.version}`, serveBun, WebSocket);
