// A one-line progress bar on stderr for transfers worth watching (a few MB and up): bytes, rate,
// time left. Only on a terminal and when asked for: cron logs, pipes and --json get nothing.
// Redraws at most ten times a second; the rate is measured over the whole transfer so far.

const MIN_BYTES = 4 * 1024 * 1024;
const WIDTH = 24;

function mb(n: number): string {
  return (n / 1024 / 1024).toFixed(n >= 100 * 1024 * 1024 ? 0 : 1);
}

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** One frame of the bar, e.g. `download [#####     ] 12.0/48.0 MB 25% 3.1 MB/s ETA 00:12`. */
export function progressLine(label: string, bytes: number, total: number, elapsedMs: number): string {
  const frac = total > 0 ? Math.min(1, bytes / total) : 0;
  const fill = Math.round(frac * WIDTH);
  const rate = elapsedMs > 0 ? bytes / (elapsedMs / 1000) : 0;
  const eta = rate > 0 ? (total - bytes) / rate : Number.NaN;
  return `${label} [${"#".repeat(fill)}${" ".repeat(WIDTH - fill)}] ${mb(bytes)}/${mb(total)} MB ${Math.floor(frac * 100)}% ${mb(rate)} MB/s ETA ${formatEta(eta)}`;
}

export interface ProgressBar {
  update(bytes: number, total: number | null): void;
  done(): void;
}

export function progressBar(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  label: string,
  opts: { enabled?: boolean; now?: () => number } = {},
): ProgressBar {
  const now = opts.now ?? Date.now;
  const on = opts.enabled !== false && stream.isTTY === true;
  let start: number | null = null;
  let last = 0;
  let shown = false;
  return {
    update(bytes, total) {
      if (!on || total === null || total < MIN_BYTES) return;
      const t = now();
      start ??= t;
      if (t - last < 100 && bytes < total) return;
      last = t;
      stream.write(`\r${progressLine(label, bytes, total, t - start)}\x1b[K`);
      shown = true;
    },
    done() {
      if (shown) stream.write("\n");
      shown = false;
    },
  };
}
