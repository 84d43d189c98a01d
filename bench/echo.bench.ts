// Keystroke echo: a byte typed, its echo seen, as a person at a terminal
// feels it. Three paths to the same kind of remote program, each one
// long-lived interactive session measured the whole run:
//
//   guru shell   `guru shell AGENT` spawned under a real pseudo-terminal here
//                (the CLI process, its terminal WebSocket, server, agent link,
//                the agent's pty);
//   viewer       the web viewer's WebSocket path: a `ws` client speaking the
//                viewer page's protocol (the technician token in the first
//                message, keystrokes as binary messages);
//   ssh          `ssh -tt` over an already open ControlMaster connection to
//                `sshd` on loopback (bench/ssh-peer.ts), under a pseudo-terminal.
//
// On each, the login shell gets the same line typed into it, `stty raw -echo;
// exec cat` (with a marker printed in between), so every echo comes from the
// remote side: one read and one write by a remote process, as a shell's line
// editor does. Bytes go one at a time, each after the previous one came back,
// round-robin over the paths with a pause between probes.
//
// States: idle; while `guru cp` uploads the file to the same agent (its link
// carries the bulk data); while `scp` uploads it to the same `sshd` over the
// same ControlMaster connection. Every path is probed in every state, so each
// is seen under its own transfer and under the other's (which then only loads
// the machine).
//
//   npm run bench -- echo       GURU_BENCH_FILE_MIB=256 for a smaller file,
//                               GURU_BENCH_ECHO_SAMPLES (idle samples per path)
//
// Target: p50 no worse than ssh's (idle beside idle, each under its own
// transfer); p99 < 50 ms during the guru transfer. Without `sshd` the ssh
// path is skipped with the install hint.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { f1, guruCp, makeFile, MiB, pct, print, ratio, runOut, sleep, startGuru, type Guru } from "./guru-peer.ts";
import { openCliEcho, openSshEcho, openViewerEcho, type EchoSession } from "./echo-sessions.ts";
import { findSshd, processTree, schedSecondsOf, sshdInstallHint, startSshd, type SshPeer } from "./ssh-peer.ts";

/** Pause between two probes (on any path): keystrokes typed at a brisk pace, not a flood. */
const probeGapMs = 10;
const minSamplesUnderLoad = 200;
const maxTransfersPerState = 4;

type Samples = Map<string, number[]>;

/** Run and run-queue wait of processes' main threads since `schedSnapshot`; the processes are listed again at the end, so new ones count from zero. */
function schedSnapshot(pids: () => number[]): () => { ran: number; waited: number } {
  const before = new Map(pids().map((pid) => [pid, schedSecondsOf(pid)]));
  return () => {
    let ran = 0;
    let waited = 0;
    for (const pid of new Set([...before.keys(), ...pids()])) {
      const now = schedSecondsOf(pid);
      // A process that exited reads as zero: it adds nothing.
      if (now.ran === 0 && now.waited === 0) continue;
      const then = before.get(pid) ?? { ran: 0, waited: 0 };
      ran += now.ran - then.ran;
      waited += now.waited - then.waited;
    }
    return { ran, waited };
  };
}

/** Probes each session in turn, `probeGapMs` apart, until `done()`; returns the round trips in ms per session. */
async function probeRoundRobin(sessions: EchoSession[], done: (samples: Samples) => boolean): Promise<Samples> {
  const samples: Samples = new Map(sessions.map((s) => [s.name, []]));
  let key = 0;
  while (!done(samples)) {
    for (const s of sessions) {
      const byte = String.fromCharCode(97 + (key++ % 26));
      samples.get(s.name)!.push(await s.probe(byte));
      await sleep(probeGapMs);
    }
  }
  return samples;
}

/** Probes while transfers run back to back, until every session has `minSamplesUnderLoad` samples (at most `maxTransfersPerState` transfers). */
async function probeDuring(sessions: EchoSession[], transfer: (n: number) => Promise<unknown>): Promise<{ samples: Samples; transfers: number }> {
  let transfers = 0;
  let running = true;
  let failure: unknown;
  let samplesSoFar: Samples = new Map();
  const loop = (async () => {
    try {
      while (true) {
        await transfer(transfers++);
        const enough = [...samplesSoFar.values()].every((s) => s.length >= minSamplesUnderLoad);
        if (enough || transfers >= maxTransfersPerState) break;
      }
    } catch (err) {
      failure = err;
    } finally {
      running = false;
    }
  })();
  const samples = await probeRoundRobin(sessions, (s) => {
    samplesSoFar = s;
    return !running;
  });
  await loop;
  if (failure !== undefined) throw failure;
  return { samples, transfers };
}

export async function run(totalMiB = Number(process.env.GURU_BENCH_FILE_MIB ?? 1024)): Promise<void> {
  const idleSamples = Number(process.env.GURU_BENCH_ECHO_SAMPLES ?? 300);
  const sshdPath = findSshd();
  const bytes = totalMiB * MiB;
  const dir = await mkdtemp(join(tmpdir(), "guru-bench-echo-"));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const guru: Guru = await startGuru(dir, "echo", { agentPolicy: { capabilities: { terminal: true } } });
    stops.push(
      () => guru.agent.stop(),
      () => guru.server.stop(),
    );
    let ssh: SshPeer | undefined;
    if (sshdPath !== undefined) {
      ssh = await startSshd(sshdPath, dir);
      stops.push(() => ssh!.close());
      await ssh.openMaster();
    }
    // The technician's tunnel: `guru shell`, the viewer and `guru cp` all use it.
    const { sessionId } = await guru.api.sessions.openTunnel({ agentId: guru.agentId });
    const src = join(dir, "source.bin");
    const sha256 = await makeFile(src, bytes);

    const sessions: EchoSession[] = [];
    stops.push(async () => {
      for (const s of sessions) await s.close();
    });
    sessions.push(await openCliEcho(guru, "echo"));
    sessions.push(await openViewerEcho(guru, sessionId));
    if (ssh !== undefined) sessions.push(await openSshEcho(ssh));

    // Warm-up: every layer has seen keystrokes before the first sample counts.
    await probeRoundRobin(sessions, (s) => [...s.values()].every((v) => v.length >= 30));
    const loads: string[] = [];
    const loadNow = () => loads.push(readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "));
    loadNow();
    const idle = await probeRoundRobin(sessions, (s) => [...s.values()].every((v) => v.length >= idleSamples));
    loadNow();
    const guruStarted = performance.now();
    const serverCpu = schedSnapshot(() => [guru.server.child.pid!]);
    const agentCpu = schedSnapshot(() => [guru.agent.child.pid!]);
    // Each copy is removed once it landed: the disk holds one at a time.
    const duringGuru = await probeDuring(sessions, async (n) => {
      const to = join(guru.agentRoot, `up-${n}.bin`);
      await guruCp(guru, src, `echo:${to}`, sha256);
      await rm(to);
    });
    const cpuServer = serverCpu();
    const cpuAgent = agentCpu();
    const guruSeconds = (performance.now() - guruStarted) / 1000;
    loadNow();
    let duringScp: { samples: Samples; transfers: number } | undefined;
    let scpSeconds = 0;
    let cpuSshd = { ran: 0, waited: 0 };
    if (ssh !== undefined) {
      const peer = ssh;
      const scpStarted = performance.now();
      const scpArgs = peer.muxArgs.map((a) => (a === "-p" ? "-P" : a));
      const sshdCpu = schedSnapshot(() => processTree(peer.sshd.pid!));
      duringScp = await probeDuring(sessions, async (n) => {
        const to = join(dir, `scp-${n}.bin`);
        await runOut("scp", [...scpArgs, "-q", src, `${peer.target}:${to}`]);
        await rm(to);
      });
      cpuSshd = sshdCpu();
      scpSeconds = (performance.now() - scpStarted) / 1000;
      loadNow();
    }

    const cell = (s: number[] | undefined) => (s === undefined || s.length === 0 ? "—" : `${f1(pct(s, 50))} / ${f1(pct(s, 99))}`);
    const states: [string, Samples | undefined][] = [
      ["idle", idle],
      [`during guru cp (${duringGuru.transfers}× ${totalMiB} MiB, ${f1(guruSeconds)} s)`, duringGuru.samples],
      [duringScp ? `during scp (${duringScp.transfers}× ${totalMiB} MiB, ${f1(scpSeconds)} s)` : "during scp", duringScp?.samples],
    ];
    const names = sessions.map((s) => s.name);
    print(
      `Keystroke echo round trip, p50 / p99 ms (one byte typed, its echo seen; \`stty raw -echo; exec cat\` on the remote side; ${probeGapMs} ms between probes, round-robin)`,
    );
    if (ssh !== undefined) print(`${spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim()} over a ControlMaster; scp over the same connection`);
    else print(`ssh: skipped. ${sshdInstallHint}.`);
    print(`${"state".padEnd(34)} ${names.map((n) => n.padStart(16)).join(" ")}   samples`);
    for (const [state, samples] of states) {
      if (samples === undefined) continue;
      print(
        `${state.padEnd(34)} ${names.map((n) => cell(samples.get(n)).padStart(16)).join(" ")}   ${names.map((n) => samples.get(n)?.length ?? 0).join("/")}`,
      );
    }
    if (ssh !== undefined && duringScp !== undefined) {
      const sshIdle = idle.get("ssh")!;
      const sshLoaded = duringScp.samples.get("ssh")!;
      for (const name of names.filter((n) => n !== "ssh")) {
        const ours = idle.get(name)!;
        const loaded = duringGuru.samples.get(name)!;
        print(
          `${name.padEnd(12)} vs ssh: idle p50 ×${ratio(pct(ours, 50), pct(sshIdle, 50))}, p99 ×${ratio(pct(ours, 99), pct(sshIdle, 99))}; ` +
            `under own transfer p50 ×${ratio(pct(loaded, 50), pct(sshLoaded, 50))}, p99 ×${ratio(pct(loaded, 99), pct(sshLoaded, 99))}`,
        );
      }
    }
    for (const name of names.filter((n) => n !== "ssh")) {
      const verdicts: string[] = [];
      if (ssh !== undefined && duringScp !== undefined) {
        const idleMet = pct(idle.get(name)!, 50) <= pct(idle.get("ssh")!, 50);
        const loadedMet = pct(duringGuru.samples.get(name)!, 50) <= pct(duringScp.samples.get("ssh")!, 50);
        verdicts.push(`p50 ≤ ssh's idle ${idleMet ? "met" : "missed"}, under own transfer ${loadedMet ? "met" : "missed"}`);
      }
      const p99 = pct(duringGuru.samples.get(name)!, 99);
      verdicts.push(`p99 during guru cp ${f1(p99)} ms < 50 ms ${p99 < 50 ? "met" : "missed"}`);
      print(`target ${name}: ${verdicts.join("; ")}`);
    }
    const cpu = (c: { ran: number; waited: number }) => `ran ${f1(c.ran)} s, waited for a CPU ${f1(c.waited)} s`;
    print(
      `main threads during guru cp: server ${cpu(cpuServer)}; agent ${cpu(cpuAgent)}` +
        (ssh !== undefined ? `; during scp: sshd and its per-connection processes ${cpu(cpuSshd)}` : ""),
    );
    print(`load average (1/5/15 min) before idle, after idle, after guru cp${ssh ? ", after scp" : ""}: ${loads.join(" | ")}`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await run(Number(process.argv[2] ?? process.env.GURU_BENCH_FILE_MIB ?? 1024));
