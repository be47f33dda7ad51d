// One sync, a straight line under the store lock: plan (render; --dry-run stops here) → upload →
// commit UPLOADED → one state request (cancels asked for, the agent's run, its log since the
// cursor, flags, cancel marks, the scheduler snapshot) → the pure reconcile → commit → (when
// asked) results home. SSH requests: 1, +2 when there is something to upload, +1 when results
// come home, whatever the number of jobs. The cluster is a port (cluster/port.ts).
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { agentLimits, type ConnectOptions } from "../cluster/connect.ts";
import type { DownloadProgress, JobDownload } from "../cluster/download.ts";
import type { Cluster, StateReport } from "../cluster/port.ts";
import { openCluster } from "../cluster/sshCluster.ts";
import { readConfig } from "../config/configFile.ts";
import { applyCancelAnswer, cancelArgs } from "../core/cancel.ts";
import type { Config } from "../core/config.ts";
import { type Job, transition } from "../core/job.ts";
import { type Change, reconcile } from "../core/reconcile.ts";
import { refuseRestart } from "../core/restart.ts";
import type { RunSummary } from "../core/runSummary.ts";
import { saysNeverRuns } from "../core/schedulerView.ts";
import { FINAL_STATES } from "../core/states.ts";
import { ChasquiError, ExitCode, InputError } from "../errors.ts";
import { isOutputName } from "../files/scanJobFolder.ts";
import type { Prompter } from "../ssh/prompter.ts";
import type { SessionEvent } from "../ssh/session.ts";
import { type LockedStore, openStore, type StoreOptions, type SyncReport } from "../store/jobStore.ts";
import { createJobRenderer } from "../templates/renderJob.ts";
import { fetchInto, needsDownload } from "./runDownload.ts";

export interface SyncOptions {
  dryRun: boolean;
  /** Fetch the results of finished jobs in the same session; default: config's download_results. */
  download?: boolean;
  onDownloadProgress?: (p: DownloadProgress) => void;
  acceptNewHostKey: boolean;
  prompter: Prompter;
  now: () => Date;
  events?: (e: SessionEvent) => void;
  /** Told once when another chasqui holds the store and this sync waits for it. */
  onLockWait?: StoreOptions["onWait"];
  /** How long to wait for another chasqui's lock (default 10 s; cron: 0). */
  lockWaitMs?: number;
  /** How to reach the cluster (default: log in over ssh); tests give an in-memory one. */
  openCluster?: (config: Config, opts: ConnectOptions) => Promise<Cluster>;
}

interface PlannedUpload {
  id: string;
  files: string[];
  script: string;
}

export interface SyncSummary {
  dry_run: boolean;
  timestamp: string;
  uploaded: string[];
  submitted: string[];
  completed: string[];
  /** Jobs that failed (FAILED); walltime kills and lost jobs have lists of their own. */
  failed: string[];
  timeout: string[];
  lost: string[];
  changes: Change[];
  /** Only in a dry run: what would be uploaded, with each script. */
  plan: PlannedUpload[];
  /** Jobs left in the local queue because their script cannot be rendered (the template's error). */
  not_sent: { id: string; why: string }[];
  /** Results fetched (--download); in a dry run, the jobs already finished whose results would be. */
  downloaded: JobDownload[];
  download_plan: string[];
  /** Jobs whose retry --restart the cluster refused (no usable CONTCAR): back to their final state. */
  restart_refused: { id: string; why: string }[];
  /** Jobs cancelled on the cluster by this sync (`cancel --next-sync`) or found cancelled. */
  cancelled: string[];
  /** Folders of jobs forgotten with `rm --remote` that this sync removed on the cluster. */
  removed_remote: string[];
  /** The run summary of every job that finished in this sync (energy, steps, convergence). */
  summaries: Record<string, RunSummary | null>;
  /** Things the user should know. */
  warnings: string[];
  /** The scheduler did not answer: no job changed state on missing information, and the sync
   * exits 1. null when it answered. */
  scheduler_error: string | null;
  ssh_requests: number;
  agent_deployed: string | null;
  counts: Record<string, number>;
}

/** Inputs of a job folder: its top-level regular files, without the outputs a run leaves. */
async function inputFiles(job: Job): Promise<string[]> {
  const entries = await fs.readdir(job.local_path, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (isOutputName(e.name) || e.name.startsWith(".")) continue;
    const st = await fs.stat(path.join(job.local_path, e.name)).catch(() => null);
    if (st?.isFile()) out.push(e.name);
  }
  return out.sort();
}

function countStates(jobs: readonly Job[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const j of jobs) counts[j.state] = (counts[j.state] ?? 0) + 1;
  return counts;
}

function summarize(
  changes: Change[],
  uploaded: string[],
): Pick<SyncSummary, "uploaded" | "submitted" | "completed" | "failed" | "timeout" | "lost" | "cancelled"> {
  const to = (states: string[]) => changes.filter((c) => states.includes(c.to)).map((c) => c.id);
  return {
    uploaded,
    submitted: to(["SUBMITTED"]),
    completed: to(["DONE"]),
    failed: to(["FAILED"]),
    timeout: to(["TIMEOUT"]),
    lost: to(["LOST"]),
    cancelled: to(["CANCELLED"]),
  };
}

/**
 * The jobs whose fate the scheduler is asked about: `ID=SCHEDULER_ID` for those it should know,
 * `ID` for those whose id is not known yet or that are LOST (asked only when a TIMEOUT flag of
 * theirs turns up). Bounded by chasqui's open jobs, whatever the scheduler's history.
 */
function openJobArgs(jobs: readonly Job[]): string[] {
  return jobs.flatMap((j) => {
    if ((j.state === "SUBMITTED" || j.state === "RUNNING") && j.scheduler_id)
      return [`${j.id}=${j.scheduler_id}`];
    if (j.state === "UPLOADED" || j.state === "LOST") return [j.id];
    return [];
  });
}

/** Every job waiting to be sent, rendered; a job whose template broke after `add` is set aside. */
async function planUploads(
  home: string,
  config: Config,
  jobs: readonly Job[],
): Promise<{ plan: PlannedUpload[]; notSent: { id: string; why: string }[] }> {
  const render = createJobRenderer(home, config);
  const plan: PlannedUpload[] = [];
  const notSent: { id: string; why: string }[] = [];
  for (const job of jobs.filter((j) => j.state === "QUEUED_LOCAL")) {
    try {
      plan.push({ id: job.id, files: await inputFiles(job), script: await render(job) });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      notSent.push({ id: job.id, why: e.message });
    }
  }
  return { plan, notSent };
}

export async function runSync(home: string, opts: SyncOptions): Promise<SyncSummary> {
  const { config } = await readConfig(home);
  const store = openStore(home, {
    command: "chasqui sync",
    ...(opts.onLockWait ? { onWait: opts.onLockWait } : {}),
    ...(opts.lockWaitMs === undefined ? {} : { lockWaitMs: opts.lockWaitMs }),
  });
  const download = opts.download ?? config.download_results;
  if (opts.dryRun) {
    // It changes nothing: a consistent read is enough, and it never waits for a running sync.
    const data = await store.read();
    const { plan, notSent } = await planUploads(home, config, data.jobs);
    return {
      dry_run: true,
      timestamp: opts.now().toISOString(),
      uploaded: [],
      submitted: [],
      completed: [],
      failed: [],
      timeout: [],
      lost: [],
      cancelled: [],
      changes: [],
      plan,
      not_sent: notSent,
      downloaded: [],
      download_plan: download ? data.jobs.filter(needsDownload).map((j) => j.id) : [],
      restart_refused: [],
      summaries: {},
      removed_remote: [],
      warnings: [],
      scheduler_error: null,
      ssh_requests: 0,
      agent_deployed: null,
      counts: countStates(data.jobs),
    };
  }
  return store.withLock(async (locked) => {
    const data = await locked.read();
    // Render everything first; a job that cannot be rendered stays behind with the reason in its
    // history, and the others go.
    const { plan, notSent } = await planUploads(home, config, data.jobs);
    if (notSent.length > 0) await noteNotSent(locked, notSent, opts.now());
    const timestamp = opts.now().toISOString();
    let cluster: Cluster | undefined;
    try {
      cluster = await (opts.openCluster ?? openCluster)(config, {
        home,
        prompter: opts.prompter,
        acceptNewHostKey: opts.acceptNewHostKey,
        ...(opts.events ? { events: opts.events } : {}),
      });
      // 1. Upload what waits, and record it as UPLOADED at once: a cut after this is recoverable.
      const { uploaded, restartRefused } = await uploadPlan(cluster, locked, plan, data.jobs, opts.now);
      // 2. One state request: cancels asked for, the agent's run, its log, flags, the scheduler.
      const fresh = await locked.read();
      const toCancel = fresh.jobs.filter(wantsCancel);
      const report = await cluster.state({
        cursor: fresh.log_cursor ?? { offset: 0, head: null },
        limits: agentLimits(config),
        cancel: cancelArgs(toCancel),
        open: openJobArgs(fresh.jobs),
        remove: fresh.remote_removals,
      });
      // 3. The pure reconcile of the answer, then one store write.
      const warnings: string[] = report.removeRefused.map(
        (id) => `${id}: not removed on the cluster, its script still waits there to be submitted`,
      );
      const { jobs: afterCancel, changes: cancelChanges } = applyCancels(
        fresh.jobs,
        report,
        opts.now(),
        warnings,
      );
      if (report.logRead === "restart" && report.deployed !== null) {
        // The log chasqui had read and the agent are both gone: the folder was made anew.
        warnings.push(
          `the remote folder ${config.remote_dir} was set up anew (its agent and agent.log were gone: deleted by hand?); jobs whose completion flags went with it are judged by the scheduler after lost_grace_seconds, and what they wrote there is lost`,
        );
      }
      if (report.snapshot.error !== null) {
        warnings.push(
          `the scheduler did not answer (${report.snapshot.error}); jobs whose fate depends on it keep their state until a sync reaches it`,
        );
      }
      const result = reconcile(
        afterCancel,
        {
          events: report.events,
          flags: report.flags,
          snapshot: report.snapshot.jobs,
          cancelMarks: report.cancelMarks,
        },
        opts.now(),
        config.lost_grace_seconds,
      );
      result.changes.unshift(...cancelChanges);
      const handled = new Set([...report.removed, ...report.removeRefused]);
      await locked.update((d) => {
        // Only jobs the reconcile saw are replaced: nothing else may change under our lock anyway.
        const next = new Map(result.jobs.map((j) => [j.id, j]));
        d.jobs = d.jobs.map((j) => next.get(j.id) ?? j);
        d.log_cursor = report.nextCursor;
        d.last_sync = timestamp;
        d.remote_removals = d.remote_removals.filter((id) => !handled.has(id));
        d.last_report = clusterNumbers(timestamp, report);
      });
      // 4. Results home, in the same session, when asked.
      const downloaded = download
        ? await fetchInto(cluster, locked, config, (await locked.read()).jobs.filter(needsDownload), {
            now: opts.now,
            ...(opts.onDownloadProgress ? { onProgress: opts.onDownloadProgress } : {}),
          })
        : [];
      const after = await locked.read();
      warnings.push(...neverRunWarnings(after.jobs));
      return {
        dry_run: false,
        timestamp,
        ...summarize(result.changes, uploaded),
        changes: result.changes,
        plan: [],
        not_sent: notSent,
        downloaded,
        download_plan: [],
        restart_refused: restartRefused,
        summaries: Object.fromEntries(
          after.jobs.filter((j) => result.changes.some((c) => c.id === j.id)).map((j) => [j.id, j.summary]),
        ),
        removed_remote: report.removed,
        warnings,
        scheduler_error: report.snapshot.error,
        ssh_requests: cluster.requests(),
        agent_deployed: report.deployed,
        counts: countStates(after.jobs),
      };
    } catch (e) {
      // `chasqui status` tells how the last sync ended, a failed login or a cut connection too.
      const error = e instanceof Error ? e.message : String(e);
      await locked
        .update((d) => {
          // What this sync saw before it failed (a download cut after the state request) stays.
          const seen = d.last_report?.at === timestamp ? d.last_report : null;
          d.last_report = {
            at: timestamp,
            error,
            exit_code: e instanceof ChasquiError ? e.exitCode : ExitCode.failure,
            queued: seen?.queued ?? null,
            running: seen?.running ?? null,
            waiting: seen?.waiting ?? null,
          };
        })
        .catch(() => {});
      throw e;
    } finally {
      await cluster?.close();
    }
  });
}

/** A job that cannot be rendered keeps its state; its history says why, once per reason. */
async function noteNotSent(
  locked: { update(fn: (d: { jobs: Job[] }) => void): Promise<unknown> },
  notSent: readonly { id: string; why: string }[],
  now: Date,
): Promise<void> {
  const why = new Map(notSent.map((n) => [n.id, `not sent: ${n.why}`]));
  await locked.update((d) => {
    d.jobs = d.jobs.map((j) => {
      const reason = why.get(j.id);
      if (reason === undefined || j.history.at(-1)?.reason === reason) return j;
      const at = now.toISOString();
      return { ...j, updated_at: at, history: [...j.history, { at, from: j.state, to: j.state, reason }] };
    });
  });
}

/** What the sync saw of the user's jobs in the scheduler (by hand too) and in waiting/. */
function clusterNumbers(at: string, report: StateReport): SyncReport {
  const seen = report.snapshot.jobs ? [...report.snapshot.jobs.values()] : null;
  return {
    at,
    error: report.snapshot.error === null ? null : `the scheduler did not answer: ${report.snapshot.error}`,
    exit_code: report.snapshot.error === null ? null : ExitCode.failure,
    queued: seen ? seen.filter((j) => j.active).length : null,
    running: seen ? seen.filter((j) => j.running).length : null,
    waiting: report.waiting,
  };
}

/** A job that ended meanwhile has nothing left to cancel; its request simply lapses. */
function wantsCancel(j: Job): boolean {
  return j.cancel_requested && j.state !== "QUEUED_LOCAL" && !FINAL_STATES.has(j.state);
}

/** Uploads the planned jobs and records them UPLOADED (or back, when their restart was refused). */
async function uploadPlan(
  cluster: Cluster,
  locked: LockedStore,
  plan: readonly PlannedUpload[],
  jobs: readonly Job[],
  now: () => Date,
): Promise<{ uploaded: string[]; restartRefused: { id: string; why: string }[] }> {
  if (plan.length === 0) return { uploaded: [], restartRefused: [] };
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const up = await cluster.upload(
    plan.map((p) => ({
      id: p.id,
      script: p.script,
      restart: byId.get(p.id)!.restart,
      files: p.files.map((name) => ({ name, path: path.join(byId.get(p.id)!.local_path, name) })),
    })),
  );
  const refused = new Map(up.restartRefused.map((r) => [r.id, r.why]));
  await locked.update((d) => {
    const at = now();
    d.jobs = d.jobs.map((j) => {
      if (!plan.some((p) => p.id === j.id) || j.state !== "QUEUED_LOCAL") return j;
      const why = refused.get(j.id);
      if (why !== undefined) return refuseRestart(j, why, at);
      return {
        ...transition(j, "UPLOADED", uploadReason(up.restartedFrom.get(j.id)), at),
        restart: false,
        summary: null,
      };
    });
  });
  return {
    uploaded: plan.map((p) => p.id).filter((id) => !refused.has(id)),
    restartRefused: up.restartRefused,
  };
}

/** cancel --next-sync: the agent answered before it ran; a job it could not reach keeps its request. */
function applyCancels(
  jobs: readonly Job[],
  report: StateReport,
  now: Date,
  warnings: string[],
): { jobs: Job[]; changes: Change[] } {
  const changes: Change[] = [];
  const out = jobs.map((j) => {
    if (!wantsCancel(j))
      return j.cancel_requested && FINAL_STATES.has(j.state) ? { ...j, cancel_requested: false } : j;
    const a = report.cancelAnswers.get(j.id);
    if (!a) {
      warnings.push(`${j.id}: the cluster gave no answer to its cancel; the next sync tries again`);
      return j;
    }
    const next = applyCancelAnswer(j, a, now);
    if (next.state !== j.state)
      changes.push({ id: j.id, from: j.state, to: next.state, reason: next.history.at(-1)!.reason });
    else if (a.outcome === "error")
      warnings.push(`${j.id}: not cancelled: ${a.detail}; the next sync tries again`);
    return next;
  });
  return { jobs: out, changes };
}

/** Jobs the scheduler says can never run, with what to do. */
function neverRunWarnings(jobs: readonly Job[]): string[] {
  return jobs
    .filter((j) => saysNeverRuns(j.scheduler_note) && !FINAL_STATES.has(j.state))
    .map(
      (j) =>
        `${j.id}: the scheduler says it can never run: ${j.scheduler_note}; \`chasqui cancel ${j.id}\`, then add it again with a smaller request`,
    );
}

function uploadReason(restartedFrom: string | undefined): string {
  if (restartedFrom) return `inputs uploaded, POSCAR from ${restartedFrom}/CONTCAR, script in waiting/`;
  return "inputs uploaded, script in waiting/";
}
