// RemoteTerminals (the domain's port) over the AgentRouter: one interactive
// channel per terminal carrying a PtyRequest. Terminal channels are never
// bulk: their frames go ahead of file data, and each channel has its own
// credit, so a flood in one terminal holds back only that terminal.
import { create } from "@bufbuild/protobuf";
import { Shell } from "../../gen/guru/wire/v1/exec_pb.js";
import { PtyRequestSchema, PtyResizeSchema, type PtyResult } from "../../gen/guru/wire/v1/pty_pb.js";
import { ChannelOpenSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { RemoteTerminalEvent, RemoteTerminalOutcome, RemoteTerminals } from "../domain/remote-terminals.ts";
import type { AgentRouter } from "./agent-router.ts";
import { wireExitReasons, wireShells } from "../../lib/wire/exec-enums.ts";

export function createRemoteTerminals(router: AgentRouter): RemoteTerminals {
  return {
    open(agentId, spec) {
      const channel = router.openChannel(
        agentId,
        create(ChannelOpenSchema, {
          request: {
            case: "pty",
            value: create(PtyRequestSchema, {
              command: spec.command,
              shell: spec.shell === undefined ? Shell.UNSPECIFIED : wireShells.toEnum[spec.shell],
              workingDir: spec.workingDir,
              columns: spec.columns,
              rows: spec.rows,
              env: spec.env,
              term: spec.term,
              sessionId: spec.sessionId,
              technicianId: spec.technicianId,
              terminalId: spec.terminalId,
            }),
          },
        }),
        { bulk: false },
      );
      async function* events(): AsyncIterable<RemoteTerminalEvent> {
        for await (const message of channel.messages()) {
          if (message.type === "data") {
            yield { type: "output", data: message.data };
          } else if (message.type === "event") {
            if (message.event.case === "ptyStarted") yield { type: "started", pid: message.event.value.pid };
          } else if (message.type === "result") {
            if (message.result.case !== "pty") throw new GuruError("internal", `the agent answered a terminal with a ${String(message.result.case)} result`);
            yield { type: "exit", outcome: toOutcome(message.result.value) };
            return;
          } else if (message.type === "error") {
            throw message.error;
          }
        }
        throw new GuruError("internal", `channel ${channel.id} ended without a result`);
      }
      return {
        channelId: channel.id,
        events,
        write: (data) => channel.sendData(data),
        resize(columns, rows) {
          channel.sendEvent({ case: "ptyResize", value: create(PtyResizeSchema, { columns, rows }) });
        },
        close(reason) {
          channel.cancel(reason);
        },
      };
    },
  };
}

function toOutcome(result: PtyResult): RemoteTerminalOutcome {
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    durationMs: result.durationMs,
    reason: wireExitReasons.fromEnum(result.reason) ?? "exited",
    inputBytes: Number(result.inputBytes),
    outputBytes: Number(result.outputBytes),
  };
}
