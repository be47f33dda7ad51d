// `chasqui sync`: one SSH session; a summary for people, or --json for scripts.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { JobDownload } from "../../cluster/download.ts";
import { readConfig } from "../../config/configFile.ts";
import type { Config } from "../../core/config.ts";
import { failureEvent, finishedEvents, type PreviousAttempt, wanted } from "../../core/notifyEvents.ts";
import { ChasquiError, ExitCode } from "../../errors.ts";
import { noPrompter } from "../../ssh/prompter.ts";
import { openStore } from "../../store/jobStore.ts";
import { runSync, type SyncSummary } from "../../sync/runSync.ts";
import { runNotifyCommand } from "../../unattended/notify.ts";
import { type CliContext, storeOptions, write } from "../context.ts";
import { bytes, energyCell } from "../jobView.ts";
import { progressBar } from "../progress.ts";
import { createTerminalPrompter } from "../prompt.ts";

/** One line per job: what came down and where, and what was left alone. */
export function describeDownloads(results: readonly JobDownload[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.missing) {
      lines.push(`${r.id}: no work folder on the cluster (removed by hand?); nothing downloaded`);
      continue;
    }
    const got = r.written.map((f) => `${f.name} ${bytes(f.size)}`);
    const same = r.same.length > 0 ? `; ${r.same.length} already home and identical` : "";
    lines.push(
      `${r.id}: ${r.written.length} file(s) into ${r.dest}${got.length ? ` (${got.join(", ")})` : ""}${same}`,
    );
    for (const s of r.skipped) lines.push(`${r.id}: kept the local ${s.name}: ${s.why}`);
  }
  return lines;
}

interface SyncCommandOptions {
  dryRun?: boolean;
  scripts?: boolean;
  download?: boolean;
  acceptNewHostKey?: boolean;
  json?: boolean;
  cron?: boolean;
}

export async function syncCommand(ctx: CliContext, opts: SyncCommandOptions): Promise<void> {
  const cron = opts.cron === true;
  // In sync.log, each run under a dated line: written once the run has something to say, so that
  // a run that found another at work leaves nothing at all.
  const started = ctx.now();
  const header = () => {
    if (cron) write(ctx.out, `== ${started.toISOString().replace("T", " ").slice(0, 19)} UTC chasqui sync`);
  };
  if (opts.dryRun) {
    const summary = await sync(ctx, opts);
    header();
    return report(ctx, opts, summary);
  }
  // Read before this sync records its own outcome: notifications compare with the attempt before.
  const { config } = await readConfig(ctx.home);
  const previous = (await openStore(ctx.home).read()).last_report;
  let summary: SyncSummary | null = null;
  try {
    summary = await sync(ctx, opts);
    header();
    report(ctx, opts, summary);
  } catch (e) {
    // From cron, another sync at work is the normal case: exit 4 without a word in the log.
    if (cron && e instanceof ChasquiError && e.exitCode === ExitCode.locked) e.silent = true;
    else if (summary === null) header();
    await notifyAfterSync(ctx, config, previous, summary, e);
    throw e;
  } finally {
    if (cron) await rotateSyncLog(ctx.home);
  }
  await notifyAfterSync(ctx, config, previous, summary, null);
}

function sync(ctx: CliContext, opts: SyncCommandOptions): Promise<SyncSummary> {
  const bar = progressBar(ctx.err, "download", { enabled: !opts.json && !opts.cron });
  const cron = opts.cron === true;
  return runSync(ctx.home, {
    dryRun: opts.dryRun === true,
    ...(opts.download !== undefined ? { download: opts.download } : {}),
    acceptNewHostKey: opts.acceptNewHostKey === true,
    // cron: nobody to ask, and nobody to wait for.
    prompter: cron ? noPrompter : createTerminalPrompter(),
    ...(cron ? { lockWaitMs: 0 } : {}),
    now: ctx.now,
    onDownloadProgress: (p) => bar.update(p.bytes, p.total),
    onLockWait: storeOptions(ctx, "chasqui sync").onWait,
  }).finally(() => bar.done());
}

/** The events of this sync for notify_command; a failing one is a warning, never the sync's end. */
async function notifyAfterSync(
  ctx: CliContext,
  config: Config,
  previous: PreviousAttempt | null,
  summary: SyncSummary | null,
  failure: unknown,
): Promise<void> {
  if (config.notify_command === null) return;
  const at = ctx.now().toISOString();
  const events = summary ? finishedEvents(at, config.host, summary.changes, summary.summaries) : [];
  if (failure !== null) {
    const f =
      failure instanceof ChasquiError
        ? failure
        : { message: failure instanceof Error ? failure.message : String(failure), exitCode: 1 };
    const e = failureEvent(at, config.host, f, previous);
    if (e) events.push(e);
  }
  const send = wanted(events, config.notify_on);
  if (send.length === 0) return;
  const problem = await runNotifyCommand(config.notify_command, send, config.notify_timeout_seconds);
  if (problem)
    write(ctx.err, `warning: notify_command failed (${send.length} event(s) not told): ${problem}`);
}

// sync.log grows by a few lines every half hour; past this it starts again, the old one kept as .1.
const SYNC_LOG_LIMIT = 1 << 20;

/** The crontab line appends to sync.log: it is rotated after the run that made it too big. */
async function rotateSyncLog(home: string): Promise<void> {
  const log = path.join(home, "sync.log");
  const size = await fs.stat(log).then(
    (s) => s.size,
    () => 0,
  );
  if (size > SYNC_LOG_LIMIT) await fs.rename(log, `${log}.1`).catch(() => {});
}

function report(ctx: CliContext, opts: SyncCommandOptions, summary: SyncSummary): void {
  if (opts.json) {
    write(ctx.out, JSON.stringify(summary, null, 2));
    failIfIncomplete(summary, true);
    return;
  }
  for (const n of summary.not_sent) write(ctx.err, `not sent ${n.id}: ${n.why}`);
  if (summary.dry_run) {
    const files = summary.plan.reduce((n, p) => n + p.files.length, 0);
    write(
      ctx.out,
      `dry run: nothing was sent; ${summary.plan.length} job(s) would be uploaded (${files} files)${summary.plan.length > 0 && !opts.scripts ? "; --scripts prints each batch script" : ""}`,
    );
    if (summary.download_plan.length > 0) {
      write(
        ctx.out,
        `results of ${summary.download_plan.length} finished job(s) would be downloaded: ${summary.download_plan.join(", ")}`,
      );
    }
    for (const p of summary.plan) {
      if (opts.scripts) write(ctx.out, `\n== ${p.id}: ${p.files.join(", ")}\n${p.script}`);
      else write(ctx.out, `  ${p.id}: ${p.files.join(", ")}`);
    }
    failIfIncomplete(summary);
    return;
  }
  const line = (label: string, ids: string[]) => {
    if (ids.length) write(ctx.out, `${label.padEnd(10)} ${ids.length}: ${ids.join(", ")}`);
  };
  line("uploaded", summary.uploaded);
  line("submitted", summary.submitted);
  for (const c of summary.changes.filter((c) => c.to === "RUNNING")) write(ctx.out, `running    ${c.id}`);
  // One line per job that ended, under its own state: a walltime kill reads TIMEOUT, not "failed".
  const ended = ["DONE", "FAILED", "TIMEOUT", "LOST", "CANCELLED"];
  for (const c of summary.changes.filter((c) => ended.includes(c.to))) {
    const energy = energyCell(summary.summaries[c.id] ?? null);
    write(
      ctx.out,
      `${c.to.toLowerCase().padEnd(10)} ${c.id}: ${c.reason}${energy ? `; energy ${energy} eV` : ""}`,
    );
  }
  for (const r of summary.restart_refused)
    write(
      ctx.out,
      `restart    ${r.id}: refused, ${r.why}; \`chasqui retry ${r.id}\` runs it again from POSCAR`,
    );
  // The scheduler's silence ends the command with its own error line below.
  const silence = summary.scheduler_error;
  for (const w of summary.warnings)
    if (silence === null || !w.includes(silence)) write(ctx.err, `warning: ${w}`);
  for (const l of describeDownloads(summary.downloaded)) write(ctx.out, `download   ${l}`);
  for (const id of summary.removed_remote)
    write(ctx.out, `removed    ${id}: its folder and files on the cluster`);
  if (summary.agent_deployed) write(ctx.out, `agent      deployed version ${summary.agent_deployed}`);
  const counts = Object.entries(summary.counts).map(([s, n]) => `${s} ${n}`);
  write(ctx.out, `now: ${counts.join(", ") || "no jobs"} (${summary.ssh_requests} SSH requests)`);
  failIfIncomplete(summary);
}

/** Everything that could be done was done and written; the exit status still says it was partial. */
function failIfIncomplete(summary: SyncSummary, jsonWritten = false): void {
  let failed: ChasquiError | null = null;
  if (summary.scheduler_error !== null) {
    failed = new ChasquiError(`the scheduler did not answer: ${summary.scheduler_error}`, {
      exitCode: ExitCode.failure,
      hint: "No job changed state on missing information. `chasqui doctor` asks the scheduler; sync again once it answers.",
    });
  } else if (summary.not_sent.length > 0) {
    const ids = summary.not_sent.map((n) => n.id);
    failed = new ChasquiError(
      `${ids.length} job(s) not sent, their batch script cannot be rendered: ${ids.join(", ")}`,
      {
        exitCode: ExitCode.badInput,
        hint: `Fix the template (\`chasqui template render ${ids[0]}\` shows the error); the next sync sends them.`,
      },
    );
  }
  if (!failed) return;
  failed.outputWritten = jsonWritten;
  throw failed;
}
