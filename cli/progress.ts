// Transfer progress on stderr: a redrawn bar on a terminal (bytes, rate, ETA),
// plain lines at each tenth otherwise, so logs and CI stay readable.
const KiB = 1024;

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= KiB;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function createProgress(options: { label: string; tty: boolean; quiet?: boolean; write?: (s: string) => void; now?: () => number }) {
  const write = options.write ?? ((s: string) => void process.stderr.write(s));
  const now = options.now ?? (() => performance.now());
  const startedAt = now();
  // The rate counts bytes moved in this run, not those a resume skipped.
  let firstDone: number | undefined;
  let last = { done: 0, total: 0 };
  let drawnAt = 0;
  let lastTenth = -1;
  let barShown = false;

  function line(done: number, total: number): string {
    const seconds = Math.max((now() - startedAt) / 1000, 1e-3);
    const rate = (done - (firstDone ?? 0)) / seconds;
    const pct = total === 0 ? 100 : (done / total) * 100;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    return `${pct.toFixed(0).padStart(3)}%  ${formatBytes(done)} of ${formatBytes(total)}  ${formatBytes(rate)}/s  ETA ${formatEta(eta)}`;
  }

  function draw(force: boolean): void {
    const { done, total } = last;
    if (options.quiet) return;
    if (options.tty) {
      if (!force && now() - drawnAt < 100) return;
      drawnAt = now();
      const width = 30;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      write(`\r${options.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${line(done, total)}\x1b[K`);
      barShown = true;
      return;
    }
    const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
    if (tenth > lastTenth || force) {
      lastTenth = tenth;
      write(`${options.label} ${line(done, total)}\n`);
    }
  }

  return {
    update(done: number, total: number) {
      firstDone ??= done;
      last = { done: Math.max(done, last.done), total };
      draw(false);
    },
    /** A message between progress updates (a retry), on its own line. */
    note(message: string) {
      if (barShown) write("\n");
      barShown = false;
      write(`${options.label}: ${message}\n`);
    },
    done() {
      if (last.done < last.total || last.total === 0) last = { done: last.total, total: last.total };
      if (!options.tty && lastTenth >= 10) {
        // the 100 % line is already out
      } else draw(true);
      if (barShown) write("\n");
      barShown = false;
    },
    fail() {
      if (barShown) write("\n");
      barShown = false;
    },
  };
}
