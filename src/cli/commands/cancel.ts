// `chasqui cancel JOB...`: jobs still on the workstation are cancelled here and now.
import { transition } from "../../core/job.ts";
import { InputError } from "../../errors.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, write } from "../context.ts";
import { findJobs } from "./show.ts";

export async function cancelCommand(ctx: CliContext, ids: string[], opts: { json?: boolean }): Promise<void> {
  const now = ctx.now();
  const jobs = await openStore(ctx.home, { command: "chasqui cancel" }).update((data) => {
    const picked = findJobs(data, ids);
    const remote = picked.filter((j) => j.state !== "QUEUED_LOCAL");
    if (remote.length > 0) {
      throw new InputError(
        `cannot cancel ${remote.map((j) => `${j.id} (${j.state})`).join(", ")}: only jobs not yet sent (QUEUED_LOCAL) can be cancelled by this version`,
        "Cancel jobs already on the cluster there with qdel; nothing was changed.",
      );
    }
    const out = picked.map((j) => transition(j, "CANCELLED", "cancelled by user", now));
    const byId = new Map(out.map((j) => [j.id, j]));
    data.jobs = data.jobs.map((j) => byId.get(j.id) ?? j);
    return out;
  });
  if (opts.json) write(ctx.out, JSON.stringify(jobs, null, 2));
  else for (const j of jobs) write(ctx.out, `${j.id}: cancelled`);
}
