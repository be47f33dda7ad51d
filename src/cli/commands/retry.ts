// `chasqui retry JOB...`: FAILED, TIMEOUT, LOST or CANCELLED jobs go back to QUEUED_LOCAL; the next
// sync keeps the previous run under run.N/ on the cluster (and with --restart continues from CONTCAR).

import { findJobs } from "../../core/findJobs.ts";
import { transition } from "../../core/job.ts";
import { checkRestartable } from "../../core/restart.ts";
import { RETRYABLE_STATES } from "../../core/states.ts";
import { InputError } from "../../errors.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, write } from "../context.ts";

export async function retryCommand(
  ctx: CliContext,
  ids: string[],
  opts: { restart?: boolean; json?: boolean },
): Promise<void> {
  const now = ctx.now();
  const jobs = await openStore(ctx.home, { command: "chasqui retry" }).update((data) => {
    const picked = findJobs(data, ids);
    const bad = picked.filter((j) => !RETRYABLE_STATES.has(j.state));
    if (bad.length > 0) {
      throw new InputError(
        `cannot retry ${bad.map((j) => `${j.id} (${j.state})`).join(", ")}: only FAILED, TIMEOUT, LOST or CANCELLED jobs can be retried`,
      );
    }
    if (opts.restart) checkRestartable(picked);
    const out = picked.map((j) => {
      const reason = opts.restart ? "retry --restart" : "retry";
      const next = transition(j, "QUEUED_LOCAL", reason, now);
      // Jobs cancelled before they ever reached the cluster have no previous run to keep.
      const wasRemote = j.history.some((h) => h.to === "UPLOADED");
      return {
        ...next,
        attempt: wasRemote ? j.attempt + 1 : j.attempt,
        restart: Boolean(opts.restart) && wasRemote,
        scheduler_id: null,
        exit_code: null,
        missing_since: null,
      };
    });
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
