// The pure heart of a sync: the store's jobs plus what the cluster reported (agent events,
// completion flags, one scheduler snapshot) give the jobs' new states. No I/O here.
import type { AgentEvent } from "./agentLog.ts";
import { type Job, transition } from "./job.ts";
import { parseRunSummary, type RunSummary, summaryWarnings } from "./runSummary.ts";
import type { JobState } from "./states.ts";

export interface Flag {
  status: "DONE" | "FAIL" | "TIMEOUT";
  schedulerId: string;
  exitCode: number | null;
  at: string;
  /** The run as the epilogue saw it (lines 5 and on); null for flags of older scripts. */
  summary: RunSummary | null;
}

export interface SnapshotEntry {
  name: string;
  state: string;
}

export interface RemoteReport {
  events: AgentEvent[];
  flags: Map<string, Flag>;
  /** null when the scheduler could not be asked this time: then nobody is declared lost. */
  snapshot: Map<string, SnapshotEntry> | null;
  /** Scheduler ids that `chasqui cancel` deleted, by job id (the agent's cancel marks). */
  cancelMarks?: Map<string, string>;
}

export interface Change {
  id: string;
  from: JobState;
  to: JobState;
  reason: string;
}

/** `@<job id>` then the flag's four lines, for every flag (the state reply's `flags` section). */
export function parseFlags(text: string): Map<string, Flag> {
  const out = new Map<string, Flag>();
  const blocks = text.split(/^@/m).filter((b) => b.length > 0);
  for (const block of blocks) {
    const [id, status, schedulerId, exit, at, ...rest] = block.split("\n");
    // A flag is written to a temporary name and renamed, but a hand-made or damaged one may be short.
    if (!id || (status !== "DONE" && status !== "FAIL" && status !== "TIMEOUT") || !schedulerId || !at)
      continue;
    const code = exit !== undefined && /^-?\d+$/.test(exit.trim()) ? Number(exit.trim()) : null;
    out.set(id, {
      status,
      schedulerId: schedulerId.trim(),
      exitCode: code,
      at: at.trim(),
      summary: parseRunSummary(rest),
    });
  }
  return out;
}

/** The agent's cancel marks: `<job id>\t<scheduler id>` lines. */
export function parseCancelMarks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [id, sid] = line.split("\t");
    if (id && sid) out.set(id, sid.trim());
  }
  return out;
}

/** The agent's `snapshot` lines (`id\tname\tstate[\texit]`, then `#rc=N`); null when the query failed. */
export function parseSnapshotLines(text: string): Map<string, SnapshotEntry> | null {
  const lines = text.split("\n").filter((l) => l !== "");
  const rcLine = lines.find((l) => l.startsWith("#rc="));
  if (!rcLine || rcLine !== "#rc=0") return null;
  const out = new Map<string, SnapshotEntry>();
  for (const line of lines) {
    if (line.startsWith("#")) continue;
    const [id, name, state] = line.split("\t");
    if (id && state) out.set(id, { name: name ?? "", state });
  }
  return out;
}

const ACTIVE = new Set(["Q", "R", "H", "W", "T", "S", "E", "B"]);
const FLAG_STATE = { DONE: "DONE", FAIL: "FAILED", TIMEOUT: "TIMEOUT" } as const;

/** Applies a report to the jobs; returns the new jobs and the changes made (for the summary). */
export function reconcile(
  jobs: readonly Job[],
  report: RemoteReport,
  now: Date,
  lostGraceSeconds: number,
): { jobs: Job[]; changes: Change[] } {
  const changes: Change[] = [];
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const move = (job: Job, to: JobState, reason: string, patch: Partial<Job> = {}): Job => {
    const next = { ...transition(job, to, reason, now), ...patch };
    changes.push({ id: job.id, from: job.state, to, reason });
    byId.set(job.id, next);
    return next;
  };
  // Events are idempotent: a SUBMIT read twice (after a log rotation) finds the job past UPLOADED.
  for (const e of report.events) {
    const job = byId.get(e.jobId);
    if (job?.state !== "UPLOADED") continue;
    if (e.event === "SUBMIT" || e.event === "RECOVER") {
      move(job, "SUBMITTED", `submitted as ${e.detail}`, { scheduler_id: e.detail });
    } else if (e.event === "SUBMIT_ERROR") {
      move(job, "FAILED", `rejected by the scheduler: ${e.detail}`);
    }
  }
  for (const [id, flag] of report.flags) {
    const job = byId.get(id);
    if (!job) continue;
    if (!["UPLOADED", "SUBMITTED", "RUNNING", "LOST"].includes(job.state)) continue;
    // A flag left by an earlier attempt names another scheduler id.
    if (job.scheduler_id !== null && job.scheduler_id !== flag.schedulerId) continue;
    const patch = { exit_code: flag.exitCode, scheduler_id: flag.schedulerId, missing_since: null };
    // The SIGTERM of a qdel and of a walltime kill look the same to the script: the mark decides.
    // A run that reached DONE did all its work: the cancel came too late to matter.
    if (flag.status !== "DONE" && report.cancelMarks?.get(id) === flag.schedulerId) {
      move(job, "CANCELLED", `deleted by chasqui cancel (the script ended ${flag.at})`, {
        ...patch,
        summary: flag.summary,
      });
      continue;
    }
    const to = FLAG_STATE[flag.status];
    const why =
      flag.status === "DONE"
        ? "finished normally"
        : flag.status === "TIMEOUT"
          ? "walltime reached"
          : "failed";
    const warnings = flag.status === "DONE" ? summaryWarnings(flag.summary) : [];
    const note = warnings.length > 0 ? `; ${warnings.join("; ")}` : "";
    move(job, to, `${why} (exit ${flag.exitCode ?? "?"}, ${flag.at})${note}`, {
      ...patch,
      summary: flag.summary,
    });
  }
  if (report.snapshot) {
    for (const job of [...byId.values()]) {
      if ((job.state !== "SUBMITTED" && job.state !== "RUNNING") || job.scheduler_id === null) continue;
      const seen = report.snapshot.get(job.scheduler_id);
      if (seen && ACTIVE.has(seen.state)) {
        const patch = job.missing_since ? { missing_since: null } : {};
        if (seen.state === "R" && job.state === "SUBMITTED") move(job, "RUNNING", "running", patch);
        else if (job.missing_since) byId.set(job.id, { ...job, missing_since: null });
        continue;
      }
      // Deleted by chasqui cancel before it ever ran: no script, so no flag will come.
      if (report.cancelMarks?.get(job.id) === job.scheduler_id) {
        move(job, "CANCELLED", `deleted by chasqui cancel (${job.scheduler_id})`, { missing_since: null });
        continue;
      }
      // Gone from the scheduler (or finished there) with no flag: lost only after a grace period,
      // never from a single snapshot, since the flag may still be on its way.
      if (!job.missing_since) {
        byId.set(job.id, { ...job, missing_since: now.toISOString() });
      } else if (now.getTime() - Date.parse(job.missing_since) >= lostGraceSeconds * 1000) {
        move(job, "LOST", `not in the scheduler since ${job.missing_since} and no completion flag`);
      }
    }
  }
  return { jobs: jobs.map((j) => byId.get(j.id)!), changes };
}
