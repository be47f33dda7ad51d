// `chasqui list`: a table on a terminal (with state counts), tab-separated lines when piped, or JSON.
import { isJobState, JOB_STATES, type JobState } from "../../core/states.ts";
import { InputError } from "../../errors.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, write } from "../context.ts";
import { energyCell, neverRuns, resultsCell, schedulerNote } from "../jobView.ts";
import { renderTable } from "../table.ts";

export interface ListOptions {
  state?: string;
  wide?: boolean;
  json?: boolean;
}

// ANSI colours of the states on a terminal.
const STATE_COLORS: Record<string, string> = {
  DONE: "32",
  RUNNING: "36",
  SUBMITTED: "34",
  UPLOADED: "34",
  TIMEOUT: "33",
  FAILED: "31",
  LOST: "31",
  CANCELLED: "2",
};

export async function listCommand(ctx: CliContext, opts: ListOptions): Promise<void> {
  let state: JobState | undefined;
  if (opts.state !== undefined) {
    const s = opts.state.toUpperCase();
    if (!isJobState(s))
      throw new InputError(`unknown state "${opts.state}"; states are ${JOB_STATES.join(", ")}`);
    state = s;
  }
  const data = await openStore(ctx.home).read();
  const jobs = state ? data.jobs.filter((j) => j.state === state) : data.jobs;
  if (opts.json) {
    write(ctx.out, JSON.stringify(jobs, null, 2));
    return;
  }
  if (!ctx.outIsTTY) {
    const lines = jobs.map(
      (j) =>
        `${j.id}\t${j.state}\t${j.scheduler_id ?? "-"}\t${j.summary?.energy ?? "-"}\t${resultsCell(j) || "-"}\t${j.local_path}`,
    );
    if (lines.length > 0) ctx.out.write(`${lines.join("\n")}\n`);
    return;
  }
  if (jobs.length === 0) {
    write(ctx.out, state ? `no jobs in state ${state}` : "no jobs yet: `chasqui add <job folders>`");
    return;
  }
  const rows = jobs.map((j) => [
    j.id,
    neverRuns(j) && schedulerNote(j) ? `${j.state} (never runs)` : j.state,
    j.scheduler_id ?? "-",
    j.exit_code === null ? "" : String(j.exit_code),
    energyCell(j.summary),
    resultsCell(j),
    j.updated_at.replace("T", " ").slice(0, 19),
    j.local_path,
  ]);
  // Ids are never cut (they are typed back); folders keep their last part; --wide cuts nothing.
  const wide = opts.wide === true;
  write(
    ctx.out,
    renderTable(
      [
        { header: "ID" },
        { header: "STATE", color: (s) => STATE_COLORS[s.split(" ")[0]!] },
        { header: "SCHED ID", ...(wide ? {} : { max: 20, shrinkTo: 8 }) },
        { header: "EXIT", align: "right" },
        { header: "ENERGY (eV)", align: "right" },
        { header: "RESULTS", ...(wide ? {} : { shrinkTo: 7 }) },
        { header: "UPDATED (UTC)", ...(wide ? {} : { shrinkTo: 16 }) },
        { header: "FOLDER", ...(wide ? {} : { shrinkTo: 12, cut: "middle" as const }) },
      ],
      rows,
      {
        ...(ctx.columns !== undefined && !wide ? { width: ctx.columns } : {}),
        color: ctx.color === true,
      },
    ),
  );
  const counts = new Map<JobState, number>();
  for (const j of data.jobs) counts.set(j.state, (counts.get(j.state) ?? 0) + 1);
  const summary = JOB_STATES.filter((s) => counts.has(s)).map((s) => `${s} ${counts.get(s)}`);
  write(ctx.out, `\n${data.jobs.length} jobs: ${summary.join(", ")}`);
  for (const j of jobs) {
    const note = schedulerNote(j);
    if (note) write(ctx.out, `${j.id}: the scheduler says: ${note}`);
  }
  if (jobs.some((j) => energyCell(j.summary).endsWith("!")))
    write(
      ctx.out,
      "! not converged: electronic steps hit NELM or the relaxation stopped short (`chasqui show JOB`)",
    );
}
