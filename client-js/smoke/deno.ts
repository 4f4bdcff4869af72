// Deno, type-checked (`deno run --check`) against the package's published .d.ts.
import { Client } from "@switchboard/client";
import { serveDeno } from "@switchboard/host-js/deno";
import { smoke } from "./common.mjs";

// The types come from the package: a wrong use must not type-check (never called).
export function typesAreThePackages(): Client {
  // @ts-expect-error `url` must be a string
  return new Client({ url: 42 });
}

await smoke(`deno ${Deno.version.deno}`, serveDeno, WebSocket);
