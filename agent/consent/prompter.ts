// Asks the person at the endpoint. In a terminal: a prompt on it. Otherwise
// the program named in the local policy's consent.command (a desktop dialog:
// zenity or kdialog, a PowerShell MessageBox, osascript), which answers by its
// exit code: 0 approves, anything else declines. Otherwise nobody can answer,
// and that is a denial. The request's details reach the program as
// environment variables, never spliced into its command line.
import { spawn } from "node:child_process";
import { userInfo } from "node:os";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "../../lib/logging.ts";

export interface ConsentQuestion {
  sessionId: string;
  technician: string;
  partner: string;
  capabilities: string[];
}

export interface ConsentAnswer {
  approved: boolean;
  responder: string;
  reason: string;
  timedOut: boolean;
}

export interface ConsentPrompter {
  /** Resolves with the answer; when `signal` aborts (time is up, the session ended), with a timed-out denial. */
  ask(question: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer>;
}

export interface PrompterOptions {
  command?: string[];
  /** The agent's terminal, when it runs in one. */
  terminal?: { input: Readable; output: Writable };
  logger: Logger;
}

const outputCapBytes = 4096;

function describeQuestion(q: ConsentQuestion): string {
  // A technician of this server asks without a partner; a partner's technician is named with it.
  const who = q.partner ? `${q.technician} (${q.partner})` : q.technician;
  return `${who} asks for remote access to this computer: ${q.capabilities.join(", ")}`;
}

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return "local user";
  }
}

const timedOut = (): ConsentAnswer => ({ approved: false, responder: "", reason: "nobody answered in time", timedOut: true });

export function createConsentPrompter(options: PrompterOptions): ConsentPrompter {
  if (options.terminal !== undefined) return terminalPrompter(options.terminal);
  if (options.command !== undefined) return commandPrompter(options.command, options.logger);
  return {
    async ask() {
      return {
        approved: false,
        responder: "",
        reason: "nobody can answer: the agent has no terminal and its local policy names no consent.command",
        timedOut: false,
      };
    },
  };
}

function terminalPrompter(terminal: { input: Readable; output: Writable }): ConsentPrompter {
  return {
    ask(question, signal) {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve(timedOut());
        const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: false });
        const finish = (answer: ConsentAnswer) => {
          signal.removeEventListener("abort", onAbort);
          rl.close();
          resolve(answer);
        };
        const onAbort = () => {
          terminal.output.write("\n(no answer in time: refused)\n");
          finish(timedOut());
        };
        signal.addEventListener("abort", onAbort);
        rl.question(`${describeQuestion(question)}. Allow? [y/N] `, (line) => {
          const yes = /^\s*y(es)?\s*$/i.test(line);
          finish({ approved: yes, responder: `${localUser()} (terminal)`, reason: yes ? "" : "declined at the terminal", timedOut: false });
        });
      });
    },
  };
}

function commandPrompter(command: string[], logger: Logger): ConsentPrompter {
  return {
    ask(question, signal) {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve(timedOut());
        const [program, ...args] = command;
        const child = spawn(program, args, {
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            GURU_CONSENT_SESSION: question.sessionId,
            GURU_CONSENT_TECHNICIAN: question.technician,
            GURU_CONSENT_PARTNER: question.partner,
            GURU_CONSENT_CAPABILITIES: question.capabilities.join(","),
            GURU_CONSENT_MESSAGE: describeQuestion(question),
          },
        });
        let stdout = "";
        child.stdout?.on("data", (d: Buffer) => {
          if (stdout.length < outputCapBytes) stdout += d.toString("utf8");
        });
        child.stderr?.resume();
        let settled = false;
        const finish = (answer: ConsentAnswer) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          resolve(answer);
        };
        const onAbort = () => {
          child.kill("SIGTERM");
          finish(timedOut());
        };
        signal.addEventListener("abort", onAbort);
        child.on("error", (err) => {
          logger.warn({ err, program }, "the consent command could not start");
          finish({
            approved: false,
            responder: "",
            reason: `the consent command could not start (${(err as NodeJS.ErrnoException).code ?? err.message})`,
            timedOut: false,
          });
        });
        child.on("close", (code, sig) => {
          const said = stdout.split(/\r?\n/)[0]?.trim().slice(0, 200) ?? "";
          if (code === 0) return finish({ approved: true, responder: localUser(), reason: said, timedOut: false });
          finish({
            approved: false,
            responder: sig === null ? localUser() : "",
            reason: said || `declined (the consent command exited with ${code ?? sig})`,
            timedOut: false,
          });
        });
      });
    },
  };
}
