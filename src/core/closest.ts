// "Did you mean": the known name closest to a misspelt one, for error messages. Pure.

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** The closest of `known` to `name`, when it is close enough to be a slip; else undefined. */
function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const k of known) {
    const kl = k.toLowerCase();
    // A prefix, or a shared stem of four letters ("wallclock" → walltime), counts as close too.
    let score = kl.startsWith(lower) || lower.startsWith(kl) ? 1 : distance(lower, kl);
    if (commonPrefix(lower, kl) >= 4) score = Math.min(score, 2);
    if (score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  const allowed = Math.max(2, Math.floor(name.length / 2));
  return bestScore <= allowed ? best : undefined;
}

/** " (did you mean X?)" or "". */
export function didYouMean(name: string, known: Iterable<string>): string {
  const c = closest(name, known);
  return c ? ` (did you mean ${c}?)` : "";
}
