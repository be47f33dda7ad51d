// `chasqui show JOB`: one job's fields and its whole history.
import { findJobs } from "../../core/findJobs.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, write } from "../context.ts";
import { schedulerNote, summaryLines } from "../jobView.ts";
import { renderTable } from "../table.ts";

export async function showCommand(ctx: CliContext, id: string, opts: { json?: boolean }): Promise<void> {
  const [job] = findJobs(await openStore(ctx.home).read(), [id]);
  if (!job) return;
  if (opts.json) {
    write(ctx.out, JSON.stringify(job, null, 2));
    return;
  }
  const vars = Object.entries(job.vars).map(([k, v]) => `${k}=${v}`);
  const fields: [string, string][] = [
    ["id", job.id],
    ["name", job.name],
    ["state", job.state],
    ["scheduler id", job.scheduler_id ?? "-"],
    ["exit code", job.exit_code === null ? "-" : String(job.exit_code)],
    ["folder", job.local_path],
    ["template", job.template],
    ["variables", vars.length ? vars.join(" ") : "(config defaults)"],
    ["attempt", String(job.attempt)],
    ...summaryLines(job),
  ];
  const note = schedulerNote(job);
  if (note) fields.push(["scheduler", note]);
  if (job.cancel_requested) fields.push(["cancel", "requested: the next sync cancels it on the cluster"]);
  write(ctx.out, fields.map(([k, v]) => `${k.padEnd(13)} ${v}`).join("\n"));
  write(ctx.out, "\nhistory:");
  write(
    ctx.out,
    renderTable(
      [{ header: "AT (UTC)" }, { header: "FROM" }, { header: "TO" }, { header: "WHY" }],
      job.history.map((h) => [h.at.replace("T", " ").slice(0, 19), h.from ?? "-", h.to, h.reason]),
    ),
  );
}
