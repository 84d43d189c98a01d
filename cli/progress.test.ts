import { describe, expect, it } from "vitest";
import { parseRemote } from "./file-commands.ts";
import { createProgress, formatBytes } from "./progress.ts";

describe("cp helpers", () => {
  it("tells AGENT:PATH from local paths", () => {
    expect(parseRemote("web-1:/var/log/syslog")).toEqual({ agent: "web-1", path: "/var/log/syslog" });
    expect(parseRemote("web-1:")).toEqual({ agent: "web-1", path: "." });
    expect(parseRemote("./a:b")).toBeUndefined();
    expect(parseRemote("/tmp/x")).toBeUndefined();
  });

  it("prints plain lines at each tenth without a terminal", () => {
    const lines: string[] = [];
    let now = 0;
    const p = createProgress({ label: "upload", tty: false, write: (s) => lines.push(s), now: () => now });
    for (let done = 0; done <= 100 * 1024 * 1024; done += 5 * 1024 * 1024) {
      now += 50;
      p.update(done, 100 * 1024 * 1024);
    }
    p.done();
    expect(lines).toHaveLength(11);
    expect(lines[5]).toMatch(/^upload {2}50% {2}50\.0 MiB of 100\.0 MiB {2}\d+\.\d MiB\/s {2}ETA 00:01\n$/);
    expect(formatBytes(1536)).toBe("1.5 KiB");
  });
});
