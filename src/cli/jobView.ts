// How a job's results and run summary read for people: shared by list, show and sync.
import type { Job } from "../core/job.ts";
import { type RunSummary, summaryWarnings } from "../core/runSummary.ts";
import { saysNeverRuns } from "../core/schedulerView.ts";
import { FINAL_STATES } from "../core/states.ts";

/** Final energy in eV with a "!" when the run is flagged (electronic steps hit NELM, relaxation short). */
export function energyCell(s: RunSummary | null): string {
  if (!s || s.energy === null) return "";
  return `${s.energy.toFixed(4)}${summaryWarnings(s).length > 0 ? " !" : ""}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** "home" when the results of the job's last run are on the workstation. */
export function resultsCell(job: Job): string {
  if (!job.results) return "";
  return job.results.at >= job.updated_at ? "home" : "old";
}

/** Lines for `show`: the run summary, then what came home. */
export function summaryLines(job: Job): [string, string][] {
  const s = job.summary;
  const out: [string, string][] = [];
  if (s) {
    if (s.energy !== null)
      out.push(["energy", `${s.energy} eV${s.energy_e0 !== null ? ` (E0 ${s.energy_e0} eV)` : ""}`]);
    if (s.ionic_steps !== null) out.push(["ionic steps", String(s.ionic_steps)]);
    if (s.electronic_steps !== null)
      out.push([
        "electronic",
        `${s.electronic_steps} steps in the last ionic step (NELM ${s.nelm ?? "?"})${s.electronic_converged === false ? ": NOT converged" : ""}`,
      ]);
    if (s.relaxation !== null)
      out.push([
        "relaxation",
        s.relaxation === "reached" ? "reached the required accuracy" : "NOT converged",
      ]);
    if (s.elapsed_seconds !== null) out.push(["wall time", `${s.elapsed_seconds} s`]);
    if (s.contcar !== null) out.push(["CONTCAR", s.contcar]);
  }
  if (job.results) {
    out.push(["results", `${job.results.files.length} file(s) in ${job.results.dest} at ${job.results.at}`]);
    for (const f of job.results.files) out.push(["", `${f.name} (${bytes(f.size)})`]);
  } else out.push(["results", "not downloaded"]);
  return out;
}

/** PBS Professional's verdict on a request larger than anything the cluster has. */
export function neverRuns(job: Job): boolean {
  return saysNeverRuns(job.scheduler_note);
}

/** What the scheduler says about a waiting job, for people; "" when it says nothing. */
export function schedulerNote(job: Job): string {
  if (job.scheduler_note === null || FINAL_STATES.has(job.state)) return "";
  if (neverRuns(job))
    return `${job.scheduler_note} -- it will never start: \`chasqui cancel ${job.id}\`, then add it again with a smaller request`;
  return job.scheduler_note;
}
