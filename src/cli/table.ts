// Plain-text tables for people: columns padded to the widest cell, long cells cut with an ellipsis.

export interface Column {
  header: string;
  max?: number;
  align?: "left" | "right";
}

function cut(s: string, max: number | undefined): string {
  if (max === undefined || s.length <= max) return s;
  return `${s.slice(0, Math.max(1, max - 1))}…`;
}

export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((r) => columns.map((c, i) => cut(r[i] ?? "", c.max)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((s, i) => (columns[i]!.align === "right" ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}
