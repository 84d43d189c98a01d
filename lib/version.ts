import { readFileSync } from "node:fs";

/** The package version, shared by server and agent in Hello/HelloAck. */
export const version: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;
