// The upload service's side of the short-upload rule, against a real store:
// an agent answering FinishUpload with failed_precondition (what it says when
// it has fewer bytes than declared; the wire carries kind and message) leaves
// the upload active and resumable; data_loss (a SHA-256 mismatch, partial
// discarded by the agent) ends it. The end-to-end path is in
// test/e2e/upload-safety.test.ts; here the agent's answer is set by the test.
import { expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/logging.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent, seedTechnician } from "../../test/support/store-fixtures.ts";
import type { AgentFiles, AgentUploadStream, UploadOutcome } from "./agent-files.ts";
import type { SessionService } from "./sessions.ts";
import { createUploadService } from "./uploads.ts";

/** One agent partial: `committed` bytes kept across channels, as the agent keeps its temp file. */
function fakeAgent(size: number, finishAnswer: () => GuruError | undefined) {
  let committed = 0;
  const agents = {
    async openUpload() {
      const stream: AgentUploadStream = {
        get committedOffset() {
          return committed;
        },
        failure: undefined,
        async write(offset, data) {
          committed = offset + data.byteLength;
        },
        async finish(): Promise<UploadOutcome> {
          const refusal =
            committed < size
              ? new GuruError(
                  "failed_precondition",
                  `upload incomplete: ${committed} of ${size} bytes committed; send the rest from offset ${committed}; nothing was replaced`,
                )
              : finishAnswer();
          if (refusal) {
            (stream as { failure: Error | undefined }).failure = refusal;
            throw refusal;
          }
          return { size, sha256: "f".repeat(64), backupPath: "", path: "/srv/file" };
        },
        abort: async () => {},
        detach: () => {},
      };
      return stream;
    },
  } as unknown as AgentFiles;
  return { agents, lose: (bytes: number) => (committed -= bytes) };
}

describeDatabases("upload service: short and failed uploads", (kind) => {
  const ctx = useTestStore(kind);

  async function setup(finishAnswer: () => GuruError | undefined = () => undefined) {
    const tech = await seedTechnician(ctx.store);
    const agent = await seedAgent(ctx.store);
    await ctx.store.sessions.open({ agentId: agent.id, technicianId: tech.id });
    const principal = { technicianId: tech.id, name: tech.name, role: "tech" as const, tokenId: "t" };
    const row = await ctx.store.uploads.create({ agentId: agent.id, technicianId: tech.id, path: "/srv/file", size: 100, sha256: "f".repeat(64) });
    const fake = fakeAgent(100, finishAnswer);
    const service = createUploadService({
      store: ctx.store,
      sessions: {} as SessionService,
      agents: fake.agents,
      logger: silentLogger(),
      abandonedAfterMs: 60_000,
    });
    return { principal, uploadId: row.id, service, fake };
  }

  it("keeps an upload the agent calls short active, at the agent's offset, and finishes it after the rest", async () => {
    const { principal, uploadId, service, fake } = await setup();
    await service.chunk(principal, uploadId, 0n, new Uint8Array(100));
    // The agent lost 40 bytes (a crash before they reached its disk) while the server counted them sent.
    fake.lose(40);
    const err = await service.finish(principal, uploadId).then(
      () => undefined,
      (e: unknown) => e as GuruError,
    );
    expect(err?.kind).toBe("failed_precondition");
    expect(err?.message).toContain("send the rest from offset 60");
    expect((await ctx.store.uploads.get(uploadId))?.status).toBe("active");
    const view = await service.get(principal, uploadId);
    expect(view).toMatchObject({ status: "active", committedOffset: 60 });
    await service.chunk(principal, uploadId, 60n, new Uint8Array(40));
    expect(await service.finish(principal, uploadId)).toMatchObject({ size: 100 });
    expect((await ctx.store.uploads.get(uploadId))?.status).toBe("finished");
  });

  it("ends an upload whose bytes the agent found wrong (data_loss)", async () => {
    const { principal, uploadId, service } = await setup(() => new GuruError("data_loss", "SHA-256 mismatch"));
    await service.chunk(principal, uploadId, 0n, new Uint8Array(100));
    const err = await service.finish(principal, uploadId).then(
      () => undefined,
      (e: unknown) => e as GuruError,
    );
    expect(err?.kind).toBe("data_loss");
    expect(await ctx.store.uploads.get(uploadId)).toMatchObject({ status: "failed", error: "SHA-256 mismatch" });
    const again = await service.chunk(principal, uploadId, 0n, new Uint8Array(1)).then(
      () => undefined,
      (e: unknown) => e as GuruError,
    );
    expect(again?.kind).toBe("failed_precondition");
    expect(again?.message).toContain("start a new upload");
  });
});
