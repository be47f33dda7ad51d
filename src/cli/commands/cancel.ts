// `chasqui cancel JOB...`: local jobs at once; jobs on the cluster through one session, or by the
// next sync with --next-sync (no login now).
import { RemoteError } from "../../errors.ts";
import { runCancel } from "../../sync/runCancel.ts";
import { type CliContext, storeOptions, write } from "../context.ts";
import { createTerminalPrompter } from "../prompt.ts";

const SAY = {
  local: "cancelled",
  removed: "cancelled (taken out of waiting/ on the cluster)",
  deleted: "cancelled (deleted in the scheduler)",
  unknown: "cancelled (it was neither waiting nor submitted on the cluster)",
  gone: "not cancelled: it already finished on the cluster; `chasqui sync` collects its result",
  error: "not cancelled",
  requested: "to be cancelled by the next `chasqui sync`",
} as const;

export async function cancelCommand(
  ctx: CliContext,
  ids: string[],
  opts: { json?: boolean; acceptNewHostKey?: boolean; nextSync?: boolean },
): Promise<void> {
  const results = await runCancel(ctx.home, ids, {
    home: ctx.home,
    nextSync: opts.nextSync === true,
    prompter: createTerminalPrompter(),
    acceptNewHostKey: opts.acceptNewHostKey === true,
    now: ctx.now,
    onLockWait: storeOptions(ctx, "chasqui cancel").onWait,
  });
  if (opts.json) write(ctx.out, JSON.stringify(results, null, 2));
  else
    for (const r of results) write(ctx.out, `${r.id}: ${SAY[r.outcome]}${r.detail ? ` (${r.detail})` : ""}`);
  const failed = results.filter((r) => r.outcome === "error");
  if (failed.length > 0) {
    throw new RemoteError(
      `${failed.length} job(s) could not be cancelled: ${failed.map((r) => r.id).join(", ")}`,
      {
        hint: "Their state is unchanged; run `chasqui sync`, then cancel them again.",
      },
    );
  }
}
