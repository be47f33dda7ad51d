// `chasqui sync`: one SSH session; a summary for people, or --json for scripts.
import { runSync } from "../../sync/runSync.ts";
import { type CliContext, write } from "../context.ts";
import { createTerminalPrompter } from "../prompt.ts";

export async function syncCommand(
  ctx: CliContext,
  opts: { dryRun?: boolean; acceptNewHostKey?: boolean; json?: boolean },
): Promise<void> {
  const summary = await runSync(ctx.home, {
    dryRun: opts.dryRun === true,
    acceptNewHostKey: opts.acceptNewHostKey === true,
    prompter: createTerminalPrompter(),
    now: ctx.now,
  });
  if (opts.json) {
    write(ctx.out, JSON.stringify(summary, null, 2));
    return;
  }
  if (summary.dry_run) {
    write(ctx.out, `dry run: nothing was sent; ${summary.plan.length} job(s) would be uploaded`);
    for (const p of summary.plan) {
      write(ctx.out, `\n== ${p.id}: ${p.files.join(", ")}\n${p.script}`);
    }
    return;
  }
  const line = (label: string, ids: string[]) => {
    if (ids.length) write(ctx.out, `${label.padEnd(10)} ${ids.length}: ${ids.join(", ")}`);
  };
  line("uploaded", summary.uploaded);
  line("submitted", summary.submitted);
  line("done", summary.completed);
  line("failed", summary.failed);
  for (const c of summary.changes.filter((c) => c.to === "RUNNING")) write(ctx.out, `running    ${c.id}`);
  if (summary.agent_deployed) write(ctx.out, `agent      deployed version ${summary.agent_deployed}`);
  const counts = Object.entries(summary.counts).map(([s, n]) => `${s} ${n}`);
  write(ctx.out, `now: ${counts.join(", ") || "no jobs"} (${summary.ssh_requests} SSH requests)`);
}
