// Node: the package's Node adapter, and `ws` (the package's own dependency) as client.
import { serveNode } from "@switchboard/host-js/node";
import WebSocket from "ws";
import { smoke } from "./common.mjs";

await smoke(`node ${process.version}`, serveNode, WebSocket);
