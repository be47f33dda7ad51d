// `chasqui retry JOB...`: FAILED, TIMEOUT, LOST or CANCELLED jobs (DONE with --force) go back to QUEUED_LOCAL; the next
// sync keeps the previous run under run.N/ on the cluster (and with --restart continues from CONTCAR).

import { findJobs } from "../../core/findJobs.ts";
import { checkRetryable, requeued } from "../../core/jobRules.ts";
import { checkRestartable } from "../../core/restart.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, storeOptions, write } from "../context.ts";

export async function retryCommand(
  ctx: CliContext,
  ids: string[],
  opts: { restart?: boolean; force?: boolean; json?: boolean },
): Promise<void> {
  const now = ctx.now();
  const jobs = await openStore(ctx.home, storeOptions(ctx, "chasqui retry")).update((data) => {
    const picked = findJobs(data, ids);
    checkRetryable(picked, opts.force === true);
    if (opts.restart) checkRestartable(picked);
    const out = picked.map((j) => requeued(j, opts.restart === true, now));
    const byId = new Map(out.map((j) => [j.id, j]));
    data.jobs = data.jobs.map((j) => byId.get(j.id) ?? j);
    return out;
  });
  if (opts.json) {
    write(ctx.out, JSON.stringify(jobs, null, 2));
    return;
  }
  for (const j of jobs)
    write(
      ctx.out,
      `${j.id}: queued again (attempt ${j.attempt}${j.restart ? ", restart from CONTCAR" : ""})`,
    );
}
