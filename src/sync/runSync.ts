// One sync: under the store lock, render and upload new jobs, then one state request (agent run,
// log since the cursor, flags, scheduler snapshot), then the pure reconcile and one store write.
// The number of SSH requests is 1, or 3 when there is something to upload, whatever the jobs.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { readConfig } from "../config/configFile.ts";
import { parseAgentLog } from "../core/agentLog.ts";
import type { Config } from "../core/config.ts";
import { type Job, transition } from "../core/job.ts";
import { type Change, parseFlags, parseSnapshotLines, reconcile } from "../core/reconcile.ts";
import { remotePaths } from "../core/render.ts";
import { RemoteError } from "../errors.ts";
import { isOutputName } from "../files/scanJobFolder.ts";
import { parseMeta, splitSections, stateInput } from "../remote/stateRequest.ts";
import { type UploadJob, uploadJobs } from "../remote/upload.ts";
import type { Prompter } from "../ssh/prompter.ts";
import { defaultResolveDeps, resolveTarget } from "../ssh/resolve.ts";
import { openSession, type SessionEvent } from "../ssh/session.ts";
import { openStore } from "../store/jobStore.ts";
import { createJobRenderer } from "../templates/renderJob.ts";

export interface SyncOptions {
  dryRun: boolean;
  acceptNewHostKey: boolean;
  prompter: Prompter;
  now: () => Date;
  events?: (e: SessionEvent) => void;
}

export interface PlannedUpload {
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
  failed: string[];
  changes: Change[];
  /** Only in a dry run: what would be uploaded, with each script. */
  plan: PlannedUpload[];
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
): Pick<SyncSummary, "uploaded" | "submitted" | "completed" | "failed"> {
  const to = (states: string[]) => changes.filter((c) => states.includes(c.to)).map((c) => c.id);
  return {
    uploaded,
    submitted: to(["SUBMITTED"]),
    completed: to(["DONE"]),
    failed: to(["FAILED", "TIMEOUT", "LOST"]),
  };
}

export async function runSync(home: string, opts: SyncOptions): Promise<SyncSummary> {
  const { config } = await readConfig(home);
  const store = openStore(home, { command: "chasqui sync" });
  return store.withLock(async (locked) => {
    const data = await locked.read();
    const render = createJobRenderer(home, config);
    // Render everything first: a template error stops the sync before any connection.
    const plan: PlannedUpload[] = [];
    for (const job of data.jobs.filter((j) => j.state === "QUEUED_LOCAL")) {
      plan.push({ id: job.id, files: await inputFiles(job), script: await render(job) });
    }
    const timestamp = opts.now().toISOString();
    if (opts.dryRun) {
      return {
        dry_run: true,
        timestamp,
        uploaded: [],
        submitted: [],
        completed: [],
        failed: [],
        changes: [],
        plan,
        ssh_requests: 0,
        agent_deployed: null,
        counts: countStates(data.jobs),
      };
    }
    const target = await resolveTarget(config, defaultResolveDeps());
    const session = await openSession({
      target,
      otpCommand: config.otp_command,
      prompter: opts.prompter,
      acceptNewHostKey: opts.acceptNewHostKey,
      ...(opts.events ? { events: opts.events } : {}),
    });
    try {
      const paths = remotePaths(config, "-");
      const dirs = { remoteDirSh: paths.remote_dir_sh, workRootSh: paths.work_root_sh };
      const uploaded: string[] = [];
      if (plan.length > 0) {
        const byId = new Map(data.jobs.map((j) => [j.id, j]));
        const jobs: UploadJob[] = plan.map((p) => ({
          id: p.id,
          script: p.script,
          files: p.files.map((name) => ({ name, path: path.join(byId.get(p.id)!.local_path, name) })),
        }));
        await uploadJobs(session, dirs, jobs);
        await locked.update((d) => {
          const now = opts.now();
          d.jobs = d.jobs.map((j) =>
            plan.some((p) => p.id === j.id) && j.state === "QUEUED_LOCAL"
              ? transition(j, "UPLOADED", "inputs uploaded, script in waiting/", now)
              : j,
          );
        });
        uploaded.push(...plan.map((p) => p.id));
      }
      const fresh = await locked.read();
      const cursor = fresh.log_cursor ?? { offset: 0, head: null };
      const reply = await session.exec("bash -s", {
        stdin: stateInput({ ...dirs, offset: cursor.offset, head: cursor.head, config: pickLimits(config) }),
        timeoutMs: 300_000,
      });
      if (reply.code !== 0) {
        throw new RemoteError(
          `the cluster could not report its state: ${reply.stderr.toString().trim() || `exit ${reply.code}`}`,
        );
      }
      const sections = splitSections(reply.stdout);
      const meta = parseMeta(sections.get("meta")?.toString("utf8") ?? "");
      const how = meta.get("log_read");
      const prev = parseAgentLog(sections.get("log_prev") ?? Buffer.alloc(0), cursor.offset);
      const current = parseAgentLog(
        sections.get("log") ?? Buffer.alloc(0),
        how === "continue" ? cursor.offset : 0,
      );
      const result = reconcile(
        fresh.jobs,
        {
          events: [...prev.events, ...current.events],
          flags: parseFlags(sections.get("flags")?.toString("utf8") ?? ""),
          snapshot: parseSnapshotLines(sections.get("snapshot")?.toString("utf8") ?? ""),
        },
        opts.now(),
        config.lost_grace_seconds,
      );
      const head = sections.get("log_head")?.toString("utf8") ?? "";
      await locked.update((d) => {
        // Only jobs the reconcile saw are replaced: nothing else may change under our lock anyway.
        const next = new Map(result.jobs.map((j) => [j.id, j]));
        d.jobs = d.jobs.map((j) => next.get(j.id) ?? j);
        d.log_cursor = head === "" ? null : { offset: current.nextOffset, head };
        d.last_sync = timestamp;
      });
      const after = await locked.read();
      return {
        dry_run: false,
        timestamp,
        ...summarize(result.changes, uploaded),
        changes: result.changes,
        plan: [],
        ssh_requests: session.stats().execRequests,
        agent_deployed: meta.get("deployed") ?? null,
        counts: countStates(after.jobs),
      };
    } finally {
      await session.close();
    }
  });
}

function pickLimits(config: Config) {
  return { scheduler: config.scheduler, max_queued: config.max_queued, max_running: config.max_running };
}
