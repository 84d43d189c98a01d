import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { consumeBody } from "./body-chunks.ts";

describe("consumeBody", () => {
  it("hands over every chunk as written, never a concatenation, and waits while the handler asks", async () => {
    const body = new PassThrough();
    const written = [Buffer.from("alpha"), Buffer.from("beta"), Buffer.from("gamma")];
    const seen: Buffer[] = [];
    let busy = false;
    const reading = consumeBody(body, (chunk) => {
      expect(busy).toBe(false);
      seen.push(chunk);
      // A slow handler: the writer has already queued the rest.
      busy = true;
      return new Promise((resolve) =>
        setTimeout(() => {
          busy = false;
          resolve();
        }, 20),
      );
    });
    for (const chunk of written) body.write(chunk);
    body.end();
    await reading;
    expect(seen.map((c) => c.toString())).toEqual(["alpha", "beta", "gamma"]);
    expect(seen.every((c, i) => c.buffer === written[i].buffer)).toBe(true);
  });

  it("resolves only after the wait for the last chunk, even though the body ended during it", async () => {
    const body = new PassThrough();
    body.end(Buffer.from("last"));
    let waited = false;
    await consumeBody(
      body,
      () =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            waited = true;
            resolve();
          }, 30),
        ),
    );
    expect(waited).toBe(true);
  });

  it("hands over the chunks that arrived before a failure, then rejects with it", async () => {
    const body = new PassThrough();
    body.write(Buffer.from("kept"));
    const seen: string[] = [];
    const reading = consumeBody(body, (chunk) => {
      seen.push(chunk.toString());
      body.destroy(new Error("connection reset"));
      return undefined;
    });
    await expect(reading).rejects.toThrow("connection reset");
    expect(seen).toEqual(["kept"]);
  });

  it("rejects when the body closes before its end", async () => {
    const cut = new PassThrough();
    cut.write(Buffer.from("part"));
    await expect(
      consumeBody(cut, () => {
        cut.destroy();
        return undefined;
      }),
    ).rejects.toThrow(/closed before its end/);
  });

  it("destroys the body and rejects when the handler throws or its wait fails, taking no more chunks", async () => {
    const thrown = new PassThrough();
    thrown.write(Buffer.from("first"));
    thrown.write(Buffer.from("second"));
    const seen: string[] = [];
    await expect(
      consumeBody(thrown, (chunk) => {
        seen.push(chunk.toString());
        throw new Error("past the declared end");
      }),
    ).rejects.toThrow("past the declared end");
    expect(seen).toEqual(["first"]);
    expect(thrown.destroyed).toBe(true);

    const refused = new PassThrough();
    refused.write(Buffer.from("one"));
    await expect(consumeBody(refused, () => Promise.reject(new Error("disk full")))).rejects.toThrow("disk full");
    expect(refused.destroyed).toBe(true);
  });
});
