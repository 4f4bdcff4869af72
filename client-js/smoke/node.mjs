// Node 20: the `ws` package's WebSocket (installed with @switchboard/host-js).
import { serveNode } from "@switchboard/host-js/node";
import WebSocket from "ws";
import { smoke } from "./common.mjs";

await smoke(`node ${process.version}`, serveNode, WebSocket);
