// GuruTunnel beside OpenSSH, in one run on one machine: what a technician
// would otherwise use. `sshd` runs here on a loopback port with throwaway keys
// (bench/ssh-peer.ts); GuruTunnel is `guru server` (embedded PGlite) plus a
// `guru agent`, once over plain HTTP/ws and once over TLS (https/wss). Every
// client is a spawned process timed from spawn to exit, as a person would see
// it, except the warm Connect client (this process).
//
//   npm run bench -- ssh        GURU_BENCH_FILE_MIB=256 for a smaller file,
//                               GURU_BENCH_TRANSFER_ROUNDS=1 for one round
//
// Rows: upload and download of the file (`guru cp` plain and TLS vs `scp` at
// its default cipher, the median of three interleaved rounds) with CPU
// seconds per GiB of each process; cold `guru run
// AGENT -- true` vs `ssh host true` with a full handshake; `guru --version`;
// `true` over an open tunnel from a warm Connect client vs `ssh` over a
// ControlMaster, and from `curl` vs curl's floor plus the spawn floor; command
// p99 on the same agent while the file moves. Without `sshd` the OpenSSH
// columns are skipped with the install hint; the bench fails only when a run
// fails.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { f0, f1, guruBin, guruCp, makeFile, MiB, pct, print, ratio, sleep, startGuru, type Guru } from "./guru-peer.ts";
import { childrenGone, cpuSecondsOf, findSshd, sshdInstallHint, startSshd } from "./ssh-peer.ts";
import { makeSelfSignedCert } from "../test/support/self-signed-cert.ts";

/** CPU seconds of the children this process has waited for (a spawned client and everything it waited for). */
const reapedCpu = () => cpuSecondsOf(process.pid, true) - cpuSecondsOf(process.pid, false);

/** Spawns a command, resolves with its wall time in ms; rejects on a non-zero exit. */
function timeSpawn(cmd: string, args: string[], env?: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], env: env ? { ...process.env, ...env } : process.env });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`${cmd} ${args.slice(-3).join(" ")} exited with ${code}: ${err}`)),
    );
  });
}

async function samples(n: number, once: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await once());
  return out;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

interface Transfer {
  mibPerS: number;
  cpuPerGiB: Record<string, number>;
}

/** The median of each figure over the rounds, and the rounds' MiB/s in the order they ran. */
function medianTransfer(runs: Transfer[]): Transfer & { rounds: string } {
  const cpuPerGiB: Record<string, number> = {};
  for (const k of Object.keys(runs[0].cpuPerGiB))
    cpuPerGiB[k] = pct(
      runs.map((r) => r.cpuPerGiB[k]),
      50,
    );
  return {
    mibPerS: pct(
      runs.map((r) => r.mibPerS),
      50,
    ),
    cpuPerGiB,
    rounds: runs.map((r) => f0(r.mibPerS)).join("/"),
  };
}

/** One transfer by a spawned client, with the CPU of each process involved, per GiB. */
async function measure(bytes: number, pids: Record<string, { pid: number; children: boolean }>, run: () => Promise<number>): Promise<Transfer> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSecondsOf(p.pid, p.children)]));
  const client0 = reapedCpu();
  const ms = await run();
  for (const p of Object.values(pids)) if (p.children) await childrenGone(p.pid);
  const gib = bytes / (1024 * MiB);
  const cpuPerGiB: Record<string, number> = { client: (reapedCpu() - client0) / gib };
  for (const [k, p] of Object.entries(pids)) cpuPerGiB[k] = (cpuSecondsOf(p.pid, p.children) - before[k]) / gib;
  return { mibPerS: bytes / MiB / (ms / 1000), cpuPerGiB };
}

const guruPids = (g: Guru) => ({ server: { pid: g.server.child.pid!, children: false }, agent: { pid: g.agent.child.pid!, children: false } });

/** Latency of `probe` every 10 ms until `until` settles. */
async function probeDuring(probe: () => Promise<unknown>, until: Promise<unknown>): Promise<number[]> {
  let stop = false;
  void until.finally(() => (stop = true)).catch(() => {});
  const out: number[] = [];
  while (!stop) {
    const t0 = performance.now();
    await probe();
    out.push(performance.now() - t0);
    await sleep(10);
  }
  return out;
}

export async function run(totalMiB = Number(process.env.GURU_BENCH_FILE_MIB ?? 1024)): Promise<void> {
  const sshdPath = findSshd();
  if (sshdPath === undefined) {
    print(`ssh: skipped. ${sshdInstallHint}.`);
    return;
  }
  const bytes = totalMiB * MiB;
  const dir = await mkdtemp(join(tmpdir(), "guru-bench-ssh-"));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    makeSelfSignedCert(dir);
    const ssh = await startSshd(sshdPath, dir);
    stops.push(() => ssh.close());
    const plain = await startGuru(dir, "plain");
    stops.push(
      () => plain.agent.stop(),
      () => plain.server.stop(),
    );
    const tls = await startGuru(dir, "tls", { tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } });
    stops.push(
      () => tls.agent.stop(),
      () => tls.server.stop(),
    );

    const src = join(dir, "source.bin");
    const sha256 = await makeFile(src, bytes);
    const sshDir = join(dir, "ssh-files");
    await mkdir(sshDir);
    const sshdPids = { sshd: { pid: ssh.sshd.pid!, children: true } };
    const scp = (from: string, to: string) => timeSpawn("scp", [...ssh.args.map((a) => (a === "-p" ? "-P" : a)), "-q", from, to]);
    const rows: string[] = [];
    const cpuRows: string[] = [];
    const cpuText = (t: Transfer) =>
      Object.entries(t.cpuPerGiB)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(", ");

    // Transfers, interleaved so each side sees the same load, over several
    // rounds: one GiB takes a few seconds, and a run alone moves with what the
    // host does meanwhile (writeback of the previous file, other processes).
    const rounds = Number(process.env.GURU_BENCH_TRANSFER_ROUNDS ?? 3);
    const runs: Record<"scpUp" | "guruUp" | "tlsUp" | "scpDown" | "guruDown" | "tlsDown", Transfer[]> = {
      scpUp: [],
      guruUp: [],
      tlsUp: [],
      scpDown: [],
      guruDown: [],
      tlsDown: [],
    };
    for (let round = 0; round < rounds; round++) {
      runs.scpUp.push(await measure(bytes, sshdPids, () => scp(src, `${ssh.target}:${join(sshDir, "up.bin")}`)));
      runs.guruUp.push(await measure(bytes, guruPids(plain), () => guruCp(plain, src, `plain:${join(plain.agentRoot, "up.bin")}`, sha256)));
      runs.tlsUp.push(await measure(bytes, guruPids(tls), () => guruCp(tls, src, `tls:${join(tls.agentRoot, "up.bin")}`, sha256)));
      if ((await sha256Of(join(sshDir, "up.bin"))) !== sha256) throw new Error("scp upload differs");
      runs.scpDown.push(await measure(bytes, sshdPids, () => scp(`${ssh.target}:${join(sshDir, "up.bin")}`, join(dir, "scp-down.bin"))));
      runs.guruDown.push(
        await measure(bytes, guruPids(plain), () => guruCp(plain, `plain:${join(plain.agentRoot, "up.bin")}`, join(dir, "guru-down.bin"), sha256)),
      );
      runs.tlsDown.push(await measure(bytes, guruPids(tls), () => guruCp(tls, `tls:${join(tls.agentRoot, "up.bin")}`, join(dir, "tls-down.bin"), sha256)));
      for (const f of ["scp-down.bin", "guru-down.bin", "tls-down.bin"]) await rm(join(dir, f));
    }
    const [scpUp, guruUp, tlsUp, scpDown, guruDown, tlsDown] = [runs.scpUp, runs.guruUp, runs.tlsUp, runs.scpDown, runs.guruDown, runs.tlsDown].map(
      medianTransfer,
    );
    const tRow = (work: string, ours: Transfer & { rounds: string }, theirs: Transfer & { rounds: string }, target: number) =>
      rows.push(
        `${work.padEnd(36)} ${f0(ours.mibPerS).padStart(6)} MiB/s  ${f0(theirs.mibPerS).padStart(6)} MiB/s  ×${ratio(ours.mibPerS, theirs.mibPerS)}  (target ≥ ${target}; rounds ${ours.rounds} vs ${theirs.rounds})`,
      );
    tRow(`upload ${totalMiB} MiB, guru cp (http+ws)`, guruUp, scpUp, 1.25);
    tRow(`upload ${totalMiB} MiB, guru cp (https+wss)`, tlsUp, scpUp, 1);
    tRow(`download ${totalMiB} MiB, guru cp (http+ws)`, guruDown, scpDown, 1.25);
    tRow(`download ${totalMiB} MiB, guru cp (https+wss)`, tlsDown, scpDown, 1);
    cpuRows.push(`upload   scp: ${cpuText(scpUp)} | guru: ${cpuText(guruUp)} | guru tls: ${cpuText(tlsUp)}`);
    cpuRows.push(`download scp: ${cpuText(scpDown)} | guru: ${cpuText(guruDown)} | guru tls: ${cpuText(tlsDown)}`);

    // Cold CLI calls: no tunnel open yet, so `guru run` opens and closes one.
    const coldRuns = Number(process.env.GURU_BENCH_COLD_RUNS ?? 10);
    const guruRun = () => timeSpawn(process.execPath, [guruBin, "run", "plain", "--", "true"], plain.env);
    const sshTrue = () => timeSpawn("ssh", [...ssh.args, ssh.target, "true"]);
    await guruRun();
    await sshTrue();
    const coldGuru: number[] = [];
    const coldSsh: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      coldGuru.push(await guruRun());
      coldSsh.push(await sshTrue());
    }
    const version = await samples(coldRuns, () => timeSpawn(process.execPath, [guruBin, "--version"]));
    const nodeFloor = await samples(coldRuns, () => timeSpawn(process.execPath, ["-e", "0"]));
    const sshVersion = await samples(coldRuns, () => timeSpawn("ssh", ["-V"]));
    rows.push(
      `${"cold `guru run AGENT -- true` p50".padEnd(36)} ${f0(pct(coldGuru, 50)).padStart(6)} ms     ${f0(pct(coldSsh, 50)).padStart(6)} ms     ×${ratio(pct(coldGuru, 50), pct(coldSsh, 50))}  (\`ssh host true\`, full handshake; target ≤ 1)`,
    );
    // With the technician's tunnel already open (`guru tunnel open`), as `ssh` over a ControlMaster would be.
    const { sessionId } = await plain.api.sessions.openTunnel({ agentId: plain.agentId });
    const coldGuruTunnel = await samples(coldRuns, guruRun);
    rows.push(
      `${"  … with a tunnel already open".padEnd(36)} ${f0(pct(coldGuruTunnel, 50)).padStart(6)} ms     ${f0(pct(coldSsh, 50)).padStart(6)} ms     ×${ratio(pct(coldGuruTunnel, 50), pct(coldSsh, 50))}`,
    );
    rows.push(
      `${"`guru --version` p50".padEnd(36)} ${f0(pct(version, 50)).padStart(6)} ms     ${f0(pct(sshVersion, 50)).padStart(6)} ms     (\`ssh -V\`; node -e 0: ${f0(pct(nodeFloor, 50))} ms; target < 60 ms)`,
    );

    // `true` over an open channel.
    await ssh.openMaster();
    const warmRuns = Number(process.env.GURU_BENCH_WARM_RUNS ?? 100);
    const runTrue = () => plain.api.exec.runCommand({ sessionId, command: "true" });
    for (let i = 0; i < 20; i++) await runTrue();
    const sshMux = () => timeSpawn("ssh", [...ssh.muxArgs, ssh.target, "true"]);
    const curlHeaders = join(dir, "curl-headers");
    await writeFile(curlHeaders, `authorization: Bearer ${plain.token}\ncontent-type: application/json\n`, { mode: 0o600 });
    const curlRun = () =>
      timeSpawn("curl", [
        "-sf",
        "-o",
        "/dev/null",
        "-H",
        `@${curlHeaders}`,
        "--data",
        JSON.stringify({ sessionId, command: "true" }),
        `${plain.url}/guru.api.v1.ExecService/RunCommand`,
      ]);
    const curlFloor = () => timeSpawn("curl", ["-sf", "-o", "/dev/null", `${plain.url}/healthz`]);
    const spawnFloor = () => timeSpawn("/bin/sh", ["-c", "true"]);
    const warm: number[] = [];
    const mux: number[] = [];
    const curl: number[] = [];
    const floor: number[] = [];
    const spawned: number[] = [];
    for (let i = 0; i < warmRuns; i++) {
      const t0 = performance.now();
      await runTrue();
      warm.push(performance.now() - t0);
      if (i % 2 === 0) {
        mux.push(await sshMux());
        curl.push(await curlRun());
        floor.push(await curlFloor());
        spawned.push(await spawnFloor());
      }
    }
    rows.push(
      `${"`true`, warm Connect client p50".padEnd(36)} ${f1(pct(warm, 50)).padStart(6)} ms     ${f1(pct(mux, 50)).padStart(6)} ms     ×${ratio(pct(warm, 50), pct(mux, 50))}  (\`ssh\` over a ControlMaster; target ≤ 0.5)`,
    );
    const curlBudget = pct(floor, 50) + pct(spawned, 50);
    rows.push(
      `${"`true`, curl RunCommand p50".padEnd(36)} ${f1(pct(curl, 50)).padStart(6)} ms     ${f1(curlBudget).padStart(6)} ms     +${f1(pct(curl, 50) - curlBudget)} ms  (curl /healthz ${f1(pct(floor, 50))} + spawn ${f1(pct(spawned, 50))}; target ≤ +2 ms)`,
    );

    // Command latency while the file moves: RunCommand from this client during
    // a `guru cp` upload; `ssh` over the ControlMaster during an `scp` upload.
    const cpUp = guruCp(plain, src, `plain:${join(plain.agentRoot, "up-2.bin")}`, sha256);
    const during = await probeDuring(runTrue, cpUp);
    await cpUp;
    const scpAgain = scp(src, `${ssh.target}:${join(sshDir, "up-2.bin")}`);
    const sshDuring = await probeDuring(sshMux, scpAgain);
    await scpAgain;
    rows.push(
      `${"command p99 while the file uploads".padEnd(36)} ${f1(pct(during, 99)).padStart(6)} ms     ${f1(pct(sshDuring, 99)).padStart(6)} ms     (p50 ${f1(pct(during, 50))} vs ${f1(pct(sshDuring, 50))}; ${during.length}/${sshDuring.length} samples; target < 50 ms)`,
    );

    print(`${totalMiB} MiB of random bytes; loopback; ${spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim()}; GuruTunnel on embedded PGlite`);
    print(`${"work".padEnd(36)} ${"GuruTunnel".padStart(12)}  ${"OpenSSH".padStart(12)}  ratio`);
    for (const r of rows) print(r);
    print("CPU seconds per GiB, medians of the rounds (client = the spawned client and what it waited for; sshd includes its per-connection processes):");
    for (const r of cpuRows) print(`  ${r}`);
    print("(one run on a shared machine: absolute figures move with its load; the ratios are measured side by side in the same run)");
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await run(Number(process.argv[2] ?? process.env.GURU_BENCH_FILE_MIB ?? 1024));
