import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSendingHash } from "./sending-hash.ts";

describe("the SHA-256 of a file taken while it is sent", () => {
  let dir: string;
  let path: string;
  const content = randomBytes(3 * 1024 * 1024 + 17);
  const whole = createHash("sha256").update(content).digest("hex");
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "guru-sending-hash-"));
    path = join(dir, "f.bin");
    await writeFile(path, content);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("equals the whole file's hash whatever the resends and resume points", async () => {
    const file = await open(path, "r");
    try {
      await fc.assert(
        fc.asyncProperty(
          // A resume point, then sends that may step back (a retry from the committed offset) before going on.
          fc.nat({ max: content.length }),
          fc.array(fc.record({ back: fc.nat({ max: 300_000 }), length: fc.integer({ min: 1, max: 700_000 }) }), { maxLength: 40 }),
          async (resumeAt, steps) => {
            const hash = createSendingHash(file);
            await hash.catchUp(resumeAt);
            let position = resumeAt;
            for (const { back, length } of [...steps, { back: 0, length: content.length }]) {
              position = Math.max(0, position - back);
              while (position < content.length) {
                const end = Math.min(content.length, position + length);
                hash.sent(position, content.subarray(position, end));
                position = end;
                if (length < content.length) break;
              }
            }
            expect(hash.digest(content.length)).toBe(whole);
            expect(hash.digest(content.length)).toBe(whole);
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await file.close();
    }
  });

  it("refuses bytes past a gap and a digest before the end", async () => {
    const file = await open(path, "r");
    try {
      const hash = createSendingHash(file);
      expect(() => hash.sent(10, content.subarray(10, 20))).toThrow(/before the file was hashed up to there/);
      hash.sent(0, content.subarray(0, 100));
      expect(() => hash.digest(content.length)).toThrow(/only 100 of/);
      await expect(hash.catchUp(content.length + 1)).rejects.toThrow(/the file ended/);
    } finally {
      await file.close();
    }
  });
});
