// `chasqui status`: at a glance, without connecting: how the last sync ended and when, the jobs by
// state, and what that sync saw on the cluster against the limits.
import { readConfig } from "../../config/configFile.ts";
import { JOB_STATES } from "../../core/states.ts";
import { openStore } from "../../store/jobStore.ts";
import { type CliContext, write } from "../context.ts";

/** "3 min ago", "2 h ago", "4 days ago". */
function ago(at: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export async function statusCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const { config } = await readConfig(ctx.home);
  const data = await openStore(ctx.home).read();
  const counts = Object.fromEntries(
    JOB_STATES.map((s) => [s, data.jobs.filter((j) => j.state === s).length]).filter(([, n]) => n !== 0),
  );
  const report = data.last_report;
  const status = {
    host: config.host,
    last_sync: data.last_sync,
    last_attempt: report,
    jobs: counts,
    limits: { max_queued: config.max_queued, max_running: config.max_running },
  };
  if (opts.json) {
    write(ctx.out, JSON.stringify(status, null, 2));
    return;
  }
  const now = ctx.now();
  write(ctx.out, `cluster      ${config.host}`);
  if (!report) {
    write(ctx.out, "last sync    never (`chasqui sync` sends the queued jobs)");
  } else {
    const when = `${report.at.replace("T", " ").slice(0, 19)} UTC, ${ago(report.at, now)}`;
    write(ctx.out, `last sync    ${when}: ${report.error === null ? "complete" : `failed: ${report.error}`}`);
    if (report.error !== null && data.last_sync)
      write(
        ctx.out,
        `last good    ${data.last_sync.replace("T", " ").slice(0, 19)} UTC, ${ago(data.last_sync, now)}`,
      );
  }
  const byState = Object.entries(counts).map(([s, n]) => `${s} ${n}`);
  write(ctx.out, `jobs         ${byState.join(", ") || "none yet (`chasqui add <job folders>`)"}`);
  if (report && report.queued !== null) {
    write(
      ctx.out,
      `in scheduler ${report.queued} queued or running (max_queued ${config.max_queued}), ${report.running} running (max_running ${config.max_running}), yours by hand included, at that sync`,
    );
  }
  if (report && report.waiting !== null)
    write(ctx.out, `waiting      ${report.waiting} script(s) on the cluster for room under the limits`);
}
