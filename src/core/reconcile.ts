// The pure heart of a sync: the store's jobs plus what the cluster reported (agent events,
// completion flags, one scheduler snapshot) give the jobs' new states. No I/O here.
import type { AgentEvent } from "./agentLog.ts";
import { type Job, transition } from "./job.ts";
import type { Flag } from "./protocol.ts";
import { summaryWarnings } from "./runSummary.ts";
import type { Ending, SchedulerEntry } from "./schedulerView.ts";
import type { JobState } from "./states.ts";

export interface RemoteReport {
  events: AgentEvent[];
  flags: Map<string, Flag>;
  /** null when the scheduler could not be asked this time: then nothing is concluded from it. */
  snapshot: Map<string, SchedulerEntry> | null;
  /** Scheduler ids that `chasqui cancel` deleted, by job id (the agent's cancel marks). */
  cancelMarks?: Map<string, string>;
}

export interface Change {
  id: string;
  from: JobState;
  to: JobState;
  reason: string;
}

const FLAG_STATE = { DONE: "DONE", FAIL: "FAILED", TIMEOUT: "TIMEOUT" } as const;

/** The state and words for a job whose script was stopped by SIGTERM, given the scheduler's verdict. */
function afterSigterm(ending: Ending | null): { to: JobState; why: string } {
  if (ending?.how === "deleted")
    return { to: "CANCELLED", why: `deleted in the scheduler outside chasqui (${ending.words})` };
  if (ending?.how === "walltime") return { to: "TIMEOUT", why: `walltime reached (${ending.words})` };
  if (ending) return { to: "TIMEOUT", why: `stopped by SIGTERM (${ending.words})` };
  return {
    to: "TIMEOUT",
    why: "stopped by SIGTERM: walltime reached or deleted outside chasqui (the scheduler no longer says which)",
  };
}

/** A job that ended with no flag at all, once the grace period is over. */
function withoutFlag(ending: Ending | null, since: string): { to: JobState; why: string } {
  if (ending?.how === "deleted")
    return { to: "CANCELLED", why: `deleted in the scheduler outside chasqui (${ending.words})` };
  if (ending?.how === "walltime")
    return { to: "TIMEOUT", why: `walltime reached, no completion flag (${ending.words})` };
  if (ending?.how === "exit")
    return { to: "FAILED", why: `ended without writing its completion flag (${ending.words})` };
  const said = ending ? ` (${ending.words})` : "";
  return { to: "LOST", why: `not in the scheduler since ${since} and no completion flag${said}` };
}

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
    const patch = {
      exit_code: flag.exitCode,
      scheduler_id: flag.schedulerId,
      missing_since: null,
      scheduler_note: null,
    };
    // The SIGTERM of a qdel and of a walltime kill look the same to the script: the mark decides.
    // A run that reached DONE did all its work: the cancel came too late to matter.
    if (flag.status !== "DONE" && report.cancelMarks?.get(id) === flag.schedulerId) {
      move(job, "CANCELLED", `deleted by chasqui cancel (the script ended ${flag.at})`, {
        ...patch,
        summary: flag.summary,
      });
      continue;
    }
    let to: JobState = FLAG_STATE[flag.status];
    let why = flag.status === "DONE" ? "finished normally" : "failed";
    if (flag.status === "TIMEOUT") {
      // SIGTERM means a walltime kill or a qdel: the scheduler's verdict tells them apart, so wait
      // for it while the job is still ending or the scheduler cannot be asked.
      if (report.snapshot === null) continue;
      const seen = report.snapshot.get(flag.schedulerId);
      if (seen?.active) continue;
      ({ to, why } = afterSigterm(seen?.ending ?? null));
    }
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
      if (seen?.active) {
        // What the scheduler says about a job that waits ("Can Never Run: ..."), shown by list/show.
        const note = seen.running ? null : seen.comment || null;
        const patch = {
          ...(job.missing_since ? { missing_since: null } : {}),
          ...(note !== job.scheduler_note ? { scheduler_note: note } : {}),
        };
        if (seen.running && job.state === "SUBMITTED") move(job, "RUNNING", "running", patch);
        else if (Object.keys(patch).length > 0) byId.set(job.id, { ...job, ...patch });
        continue;
      }
      // Deleted by chasqui cancel before it ever ran: no script, so no flag will come.
      if (report.cancelMarks?.get(job.id) === job.scheduler_id) {
        move(job, "CANCELLED", `deleted by chasqui cancel (${job.scheduler_id})`, { missing_since: null });
        continue;
      }
      const ending = seen?.ending ?? null;
      // Deleted before it started: no script ran, so no flag will ever come.
      if (ending?.neverRan) {
        move(job, "CANCELLED", `deleted in the scheduler before it started (${ending.words})`, {
          missing_since: null,
          scheduler_note: null,
        });
        continue;
      }
      // Gone from the scheduler (or finished there) with no flag: decided only after a grace
      // period, never from a single snapshot, since the flag may still be on its way.
      if (!job.missing_since) {
        byId.set(job.id, { ...job, missing_since: now.toISOString() });
      } else if (now.getTime() - Date.parse(job.missing_since) >= lostGraceSeconds * 1000) {
        const { to, why } = withoutFlag(ending, job.missing_since);
        move(job, to, why, { scheduler_note: null });
      }
    }
  }
  return { jobs: jobs.map((j) => byId.get(j.id)!), changes };
}
