// `chasqui sync`: one SSH session; a summary for people, or --json for scripts.

import type { JobDownload } from "../../cluster/download.ts";
import { ChasquiError, ExitCode } from "../../errors.ts";
import { runSync, type SyncSummary } from "../../sync/runSync.ts";
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

export async function syncCommand(
  ctx: CliContext,
  opts: {
    dryRun?: boolean;
    scripts?: boolean;
    download?: boolean;
    acceptNewHostKey?: boolean;
    json?: boolean;
  },
): Promise<void> {
  const bar = progressBar(ctx.err, "download", { enabled: !opts.json });
  const summary = await runSync(ctx.home, {
    dryRun: opts.dryRun === true,
    ...(opts.download !== undefined ? { download: opts.download } : {}),
    acceptNewHostKey: opts.acceptNewHostKey === true,
    prompter: createTerminalPrompter(),
    now: ctx.now,
    onDownloadProgress: (p) => bar.update(p.bytes, p.total),
    onLockWait: storeOptions(ctx, "chasqui sync").onWait,
  }).finally(() => bar.done());
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
