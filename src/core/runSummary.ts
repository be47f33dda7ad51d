// What a finished VASP run looked like, as the batch script's epilogue read it on the cluster and
// wrote it into the completion flag (lines 5 and on, KEY=VALUE; docs/REMOTE.md). Pure parsing.

export interface RunSummary {
  /** Final free energy in eV (F= of the last OSZICAR step, or OUTCAR's last TOTEN). */
  energy: number | null;
  /** energy(sigma→0) of the last OSZICAR step. */
  energy_e0: number | null;
  ionic_steps: number | null;
  /** Electronic steps of the last ionic step, and the INCAR's NELM (default 60). */
  electronic_steps: number | null;
  nelm: number | null;
  /** False when the last ionic step used all NELM electronic steps: VASP moved on unconverged. */
  electronic_converged: boolean | null;
  /** For relaxations (NSW > 0, IBRION 1–3): whether VASP reported "reached required accuracy". */
  relaxation: "reached" | "not_reached" | null;
  elapsed_seconds: number | null;
  /** Whether the run's CONTCAR can seed `retry --restart` (parses, same atom counts as POSCAR). */
  contcar: "valid" | "invalid" | "missing" | null;
}

function num(v: string | undefined): number | null {
  if (v === undefined || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function int(v: string | undefined): number | null {
  const n = num(v);
  return n !== null && Number.isInteger(n) && n >= 0 ? n : null;
}

/** The summary from a flag's extra lines; null when the flag carries none (older scripts). */
export function parseRunSummary(lines: readonly string[]): RunSummary | null {
  const kv = new Map<string, string>();
  for (const line of lines) {
    const eq = line.indexOf("=");
    if (eq > 0) kv.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  if (kv.size === 0) return null;
  const electronic = int(kv.get("electronic_steps"));
  const nelm = int(kv.get("nelm"));
  const relaxation = kv.get("relaxation");
  const contcar = kv.get("contcar");
  return {
    energy: num(kv.get("energy")),
    energy_e0: num(kv.get("energy_e0")),
    ionic_steps: int(kv.get("ionic_steps")),
    electronic_steps: electronic,
    nelm,
    electronic_converged: electronic !== null && nelm !== null ? electronic < nelm : null,
    relaxation: relaxation === "reached" || relaxation === "not_reached" ? relaxation : null,
    elapsed_seconds: int(kv.get("elapsed")),
    contcar: contcar === "valid" || contcar === "invalid" || contcar === "missing" ? contcar : null,
  };
}

/** What is worth a warning in a run that otherwise ended normally. */
export function summaryWarnings(s: RunSummary | null): string[] {
  if (!s) return [];
  const out: string[] = [];
  if (s.electronic_converged === false)
    out.push(`electronic steps hit NELM (${s.electronic_steps}/${s.nelm}): not converged`);
  if (s.relaxation === "not_reached") out.push("relaxation did not reach the required accuracy");
  return out;
}
