import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { bodyChunks } from "./body-chunks.ts";

describe("bodyChunks", () => {
  it("yields every chunk as written, never a concatenation, even when the consumer falls behind", async () => {
    const body = new PassThrough();
    const written = [Buffer.from("alpha"), Buffer.from("beta"), Buffer.from("gamma")];
    const seen: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of bodyChunks(body)) {
        seen.push(chunk);
        // A slow consumer: the writer has already queued the rest.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    for (const chunk of written) body.write(chunk);
    body.end();
    await reading;
    expect(seen.map((c) => c.toString())).toEqual(["alpha", "beta", "gamma"]);
    expect(seen.every((c, i) => c.buffer === written[i].buffer)).toBe(true);
  });

  it("hands over the chunks that arrived before a failure, then throws it", async () => {
    const body = new PassThrough();
    body.write(Buffer.from("kept"));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of bodyChunks(body)) {
        seen.push(chunk.toString());
        body.destroy(new Error("connection reset"));
      }
    })();
    await expect(reading).rejects.toThrow("connection reset");
    expect(seen).toEqual(["kept"]);
  });

  it("throws when the body closes before its end, and destroys a body the consumer left early", async () => {
    const cut = new PassThrough();
    cut.write(Buffer.from("part"));
    const reading = (async () => {
      for await (const _ of bodyChunks(cut)) cut.destroy();
    })();
    await expect(reading).rejects.toThrow(/closed before its end/);

    const left = new PassThrough();
    left.write(Buffer.from("first"));
    left.write(Buffer.from("second"));
    for await (const _ of bodyChunks(left)) break;
    expect(left.destroyed).toBe(true);
  });
});
