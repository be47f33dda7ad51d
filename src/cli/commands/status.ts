// `chasqui status`: at a glance, without connecting: how the last sync ended and when, the jobs by
// state, and what that sync saw on the cluster against the limits.
import { masterState } from "../../cluster/master.ts";
import { readConfig } from "../../config/configFile.ts";
import { findCronLine } from "../../core/crontab.ts";
import { JOB_STATES } from "../../core/states.ts";
import { openStore } from "../../store/jobStore.ts";
import { userCrontab } from "../../unattended/crontabFile.ts";
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
  // Both are local: `ssh -O check` asks the socket, the crontab is read here.
  const master = config.transport === "ssh2" ? null : await masterState(config, ctx.home, ctx.now());
  const cron = await cronStatus(ctx);
  const status = {
    host: config.host,
    last_sync: data.last_sync,
    last_attempt: report,
    jobs: counts,
    limits: { max_queued: config.max_queued, max_running: config.max_running },
    transport: config.transport,
    master: master && {
      live: master.live,
      until: master.until,
      control_path: master.path,
      source: master.source,
    },
    cron,
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
  if (master === null) write(ctx.out, 'connection   transport "ssh2": every command logs in');
  else if (master.live)
    write(
      ctx.out,
      `connection   master live${master.until ? ` until ${master.until.replace("T", " ").slice(0, 16)} UTC` : " (opened outside chasqui)"}: commands ride it without a login`,
    );
  else write(ctx.out, "connection   no master (`chasqui connect` opens one; without it each sync logs in)");
  if (cron.error) write(ctx.out, `cron         unknown: ${cron.error}`);
  else
    write(
      ctx.out,
      `cron         ${cron.installed ? `installed in ${cron.where}` : "not installed (`chasqui cron install`)"}`,
    );
}

async function cronStatus(
  ctx: CliContext,
): Promise<{ installed: boolean; where: string; line: string | null; error: string | null }> {
  const crontab = userCrontab(ctx.env);
  try {
    const line = findCronLine(await crontab.read(), ctx.home);
    return { installed: line !== null, where: crontab.where, line, error: null };
  } catch (e) {
    return {
      installed: false,
      where: crontab.where,
      line: null,
      error: e instanceof Error ? e.message : String(e),
    };
  }
}
