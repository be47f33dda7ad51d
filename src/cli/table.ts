// Plain-text tables for people: columns padded to the widest cell, fitted to the terminal by
// shrinking the columns that may shrink (paths keep their last part), colour added after padding.

export interface Column {
  header: string;
  /** Never wider than this (cut with an ellipsis). */
  max?: number;
  align?: "left" | "right";
  /** May be shrunk to fit the terminal, down to this width. Columns without it are never cut. */
  shrinkTo?: number;
  /** How to shorten: "end" cuts the tail; "middle" keeps both ends (paths keep the job folder). */
  cut?: "end" | "middle";
  /** ANSI colour for a cell, by its plain text (applied after padding). */
  color?: (cell: string) => string | undefined;
}

export interface TableOptions {
  /** The terminal's width; undefined = no limit. */
  width?: number;
  /** Use colours (a terminal, and NO_COLOR not set). */
  color?: boolean;
}

function shorten(s: string, max: number | undefined, how: "end" | "middle" = "end"): string {
  if (max === undefined || s.length <= max) return s;
  if (max <= 1) return "…";
  if (how === "middle") {
    const tail = Math.ceil((max - 1) * 0.6);
    return `${s.slice(0, max - 1 - tail)}…${s.slice(s.length - tail)}`;
  }
  return `${s.slice(0, max - 1)}…`;
}

const GAP = 2;

export function renderTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  opts: TableOptions = {},
): string {
  let cells = rows.map((r) => columns.map((c, i) => shorten(r[i] ?? "", c.max, c.cut)));
  const widthsOf = (cs: string[][]) =>
    columns.map((c, i) => Math.max(c.header.length, ...cs.map((r) => r[i]!.length)));
  let widths = widthsOf(cells);
  if (opts.width !== undefined) {
    // Take the overflow from the shrinkable columns, widest first, down to their minimum.
    let over = widths.reduce((a, b) => a + b, 0) + GAP * (columns.length - 1) - opts.width;
    const limits = [...widths];
    while (over > 0) {
      let pick = -1;
      for (let i = 0; i < columns.length; i++) {
        const floor = columns[i]!.shrinkTo;
        if (floor === undefined || limits[i]! <= Math.max(floor, columns[i]!.header.length)) continue;
        if (pick < 0 || limits[i]! > limits[pick]!) pick = i;
      }
      if (pick < 0) break;
      limits[pick]!--;
      over--;
    }
    cells = cells.map((r) => r.map((s, i) => shorten(s, limits[i], columns[i]!.cut)));
    widths = widthsOf(cells);
  }
  const line = (r: readonly string[], paint: boolean) =>
    r
      .map((s, i) => {
        const col = columns[i]!;
        const padded = col.align === "right" ? s.padStart(widths[i]!) : s.padEnd(widths[i]!);
        const code = paint ? col.color?.(s) : undefined;
        return code ? `\u001b[${code}m${padded}\u001b[0m` : padded;
      })
      .join(" ".repeat(GAP))
      .trimEnd();
  return [
    line(
      columns.map((c) => c.header),
      false,
    ),
    ...cells.map((r) => line(r, opts.color === true)),
  ].join("\n");
}
