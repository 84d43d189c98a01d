import { describe, expect, it } from "vitest";
import { createMetrics } from "../server/metrics.ts";
import { capturingLogger } from "../test/support/link-test-kit.ts";
import { createUnhandledRejectionHandler, handleUnhandledRejections } from "./unhandled-rejections.ts";

describe("unhandled rejections", () => {
  it("are logged with their cause and counted on guru_unhandled_rejections_total, without throwing", async () => {
    const { logger, lines } = capturingLogger();
    const metrics = createMetrics();
    const handler = createUnhandledRejectionHandler({ logger, onRejection: () => metrics.unhandledRejections.inc() });
    expect(await metrics.registry.metrics()).toMatch(/^guru_unhandled_rejections_total 0$/m);
    const lost = Promise.reject(new Error("a bug in one link"));
    lost.catch(() => undefined);
    expect(() => handler(new Error("a bug in one link"), lost)).not.toThrow();
    expect(() => handler("a plain string", lost)).not.toThrow();
    expect(await metrics.registry.metrics()).toMatch(/^guru_unhandled_rejections_total 2$/m);
    const logged = lines.filter((l) => l.msg.startsWith("unhandled promise rejection"));
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ level: 50, err: { message: "a bug in one link", stack: expect.stringContaining("unhandled-rejections.test.ts") } });
  });

  it("never throws, even when the counter does (a throw here would exit the process)", () => {
    const { logger, lines } = capturingLogger();
    const handler = createUnhandledRejectionHandler({
      logger,
      onRejection: () => {
        throw new Error("metrics broken");
      },
    });
    expect(() => handler(new Error("x"), Promise.resolve())).not.toThrow();
    expect(lines.some((l) => l.msg.startsWith("unhandled promise rejection"))).toBe(true);
    expect(lines.some((l) => l.msg === "could not count an unhandled promise rejection")).toBe(true);
  });

  it("installs one process listener and removes it again", () => {
    const { logger } = capturingLogger();
    const before = process.listenerCount("unhandledRejection");
    const uninstall = handleUnhandledRejections({ logger });
    expect(process.listenerCount("unhandledRejection")).toBe(before + 1);
    uninstall();
    expect(process.listenerCount("unhandledRejection")).toBe(before);
  });
});
