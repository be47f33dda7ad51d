// Durations as people type them on a command line: 90s, 30m, 12h, 2d.

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400 };

/** "30m" → 1800 (seconds); null when it is not a whole number and one unit. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,6})\s*(s|m|min|h|d)$/.exec(text.trim());
  if (!m) return null;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return seconds > 0 ? seconds : null;
}

/** 1800 → "30 min", 43200 → "12 h", 90 → "90 s". */
export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0 && seconds >= 2 * 86400) return `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
