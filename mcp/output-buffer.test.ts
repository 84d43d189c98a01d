import { describe, expect, it } from "vitest";
import { createOutputBuffer, decodeText, utf8SafeLength } from "./output-buffer.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("output buffer", () => {
  it("pages by absolute offset across chunks", () => {
    const b = createOutputBuffer(1024);
    b.append(bytes("hello "));
    b.append(bytes("world"));
    expect(b.total).toBe(11);
    const first = b.read(0, 4);
    expect([decodeText(first.data), first.from, first.to]).toEqual(["hell", 0, 4]);
    const rest = b.read(first.to, 100);
    expect([decodeText(rest.data), rest.from, rest.to, rest.dropped]).toEqual(["o world", 4, 11, 0]);
    expect(b.read(11, 100).data.length).toBe(0);
  });

  it("drops the oldest bytes past its bound, keeps offsets, and says how much was dropped", () => {
    const b = createOutputBuffer(8);
    b.append(bytes("0123456789"));
    b.append(bytes("abcd"));
    expect([b.total, b.start]).toEqual([14, 6]);
    const page = b.read(0, 100);
    expect([decodeText(page.data), page.from, page.to, page.dropped]).toEqual(["6789abcd", 6, 14, 6]);
  });

  it("never cuts a UTF-8 character, unless the output is complete", () => {
    const b = createOutputBuffer(1024);
    b.append(bytes("aé€😀"));
    // a(1) é(2) €(3) 😀(4)
    expect(b.read(0, 2).to).toBe(1);
    expect(b.read(0, 5).to).toBe(3);
    expect(b.read(0, 9).to).toBe(6);
    expect(decodeText(b.read(0, 10).data)).toBe("aé€😀");
    const partial = createOutputBuffer(1024);
    partial.append(bytes("€").subarray(0, 2));
    expect(partial.read(0, 10).to).toBe(0);
    expect(partial.read(0, 10, true).to).toBe(2);
  });

  it("skips continuation bytes left at the head after dropping", () => {
    const b = createOutputBuffer(4);
    b.append(bytes("x€€"));
    // kept: the last 4 bytes = one continuation byte of the first € + the second €
    const page = b.read(0, 10);
    expect(decodeText(page.data)).toBe("€");
    expect(page.from).toBe(4);
  });

  it("utf8SafeLength leaves whole text alone", () => {
    expect(utf8SafeLength(bytes("plain"))).toBe(5);
    expect(utf8SafeLength(new Uint8Array())).toBe(0);
  });
});
