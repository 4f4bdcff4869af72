// Deno, type-checked (`deno run --check`): the package's Deno adapter through its
// published .d.ts, and Deno's WebSocket client.
import { serveDeno, type Served } from "@switchboard/host-js/deno";
import { smoke } from "./common.mjs";

// The types come from the package: a wrong use must not type-check (never called).
export function typesAreThePackages(s: Served): string {
  // @ts-expect-error Served.port is a number
  const wrong: string = s.port;
  return wrong;
}

await smoke(`deno ${Deno.version.deno}`, serveDeno, WebSocket);
