// `chasqui download [JOB...]`: results of finished jobs, in one session.
import { runDownload } from "../../sync/runDownload.ts";
import { type CliContext, storeOptions, write } from "../context.ts";
import { progressBar } from "../progress.ts";
import { createTerminalPrompter } from "../prompt.ts";
import { describeDownloads } from "./sync.ts";

export async function downloadCommand(
  ctx: CliContext,
  ids: string[],
  opts: { json?: boolean; all?: boolean; force?: boolean; acceptNewHostKey?: boolean },
): Promise<void> {
  const bar = progressBar(ctx.err, "download", { enabled: !opts.json });
  const results = await runDownload(ctx.home, ids, {
    home: ctx.home,
    prompter: createTerminalPrompter(),
    acceptNewHostKey: opts.acceptNewHostKey === true,
    all: opts.all === true,
    force: opts.force === true,
    now: ctx.now,
    onProgress: (p) => bar.update(p.bytes, p.total),
    onLockWait: storeOptions(ctx, "chasqui download").onWait,
  }).finally(() => bar.done());
  if (opts.json) write(ctx.out, JSON.stringify(results, null, 2));
  else if (results.length === 0)
    write(ctx.out, "nothing to download: no finished job has results still on the cluster (--all, --force)");
  else for (const line of describeDownloads(results)) write(ctx.out, line);
}
