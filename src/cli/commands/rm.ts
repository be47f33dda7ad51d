// `chasqui rm JOB... [--remote]`: forget jobs that are not on the cluster right now. Their folder
// on the cluster stays unless --remote, which the next sync carries out.
import { findJobs } from "../../core/findJobs.ts";
import { checkRemovable } from "../../core/jobRules.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, storeOptions, write } from "../context.ts";

export async function rmCommand(
  ctx: CliContext,
  ids: string[],
  opts: { remote?: boolean; json?: boolean },
): Promise<void> {
  const removed = await openStore(ctx.home, storeOptions(ctx, "chasqui rm")).update((data) => {
    const picked = findJobs(data, ids);
    checkRemovable(picked);
    const gone = new Set(picked.map((j) => j.id));
    data.jobs = data.jobs.filter((j) => !gone.has(j.id));
    // Only jobs that ever reached the cluster have anything there to remove.
    const remote = picked.filter((j) => j.history.some((h) => h.to === "UPLOADED")).map((j) => j.id);
    if (opts.remote) data.remote_removals = [...new Set([...data.remote_removals, ...remote])];
    return picked.map((j) => ({
      id: j.id,
      state: j.state,
      local_path: j.local_path,
      remote:
        opts.remote === true && remote.includes(j.id)
          ? "removed at the next sync"
          : remote.includes(j.id)
            ? "kept"
            : "none",
    }));
  });
  if (opts.json) {
    write(ctx.out, JSON.stringify(removed, null, 2));
    return;
  }
  for (const r of removed) {
    const where =
      r.remote === "removed at the next sync"
        ? "; its folder on the cluster goes at the next sync"
        : r.remote === "kept"
          ? "; its folder on the cluster stays (rm --remote removes it)"
          : "";
    write(ctx.out, `forgot ${r.id} (${r.state}, ${r.local_path})${where}`);
  }
}
