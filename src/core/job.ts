// The job record kept in the store, and the pure operations on it (ids, transitions).
import { createHash } from "node:crypto";
import type { RunSummary } from "./runSummary.ts";
import { canTransition, type HistoryEntry, IllegalTransitionError, type JobState } from "./states.ts";
import { transliterate } from "./transliterate.ts";

export interface Job {
  /** Unique, safe as a file name and a shell word: [A-Za-z0-9._-], at most 64. */
  id: string;
  name: string;
  state: JobState;
  /** What the scheduler printed on qsub (e.g. "12.pbshost" on PBS Pro, "2" on Slurm's wrapper). */
  scheduler_id: string | null;
  /** Absolute path of the job folder on the workstation. */
  local_path: string;
  template: string;
  /** Template variables given for this job (`add --set`); config defaults fill the rest. */
  vars: Record<string, string>;
  created_at: string;
  updated_at: string;
  /** Exit code from the completion flag, when known. */
  exit_code: number | null;
  /** How many times the job was sent again with `retry`; run N keeps its outputs under run.N/. */
  attempt: number;
  /** `retry --restart`: the next upload continues from the previous run's CONTCAR. */
  restart: boolean;
  /** What came home the last time the job's results were downloaded. */
  results: JobResults | null;
  /** The last run as the cluster summarized it (energy, steps, convergence, CONTCAR). */
  summary: RunSummary | null;
  /** `cancel --next-sync`: the next sync cancels it on the cluster. */
  cancel_requested: boolean;
  /** First time the scheduler no longer knew a submitted job with no flag (LOST after a grace period). */
  missing_since: string | null;
  /** What the scheduler says about the job while it waits (PBS comment, Slurm pending reason). */
  scheduler_note: string | null;
  history: HistoryEntry[];
}

export interface JobResults {
  /** When the download finished (ISO-8601). */
  at: string;
  /** The local folder they went to. */
  dest: string;
  /** Every result file that is home, fetched now or found identical (sha256) and kept. */
  files: { name: string; size: number }[];
}

const JOB_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidJobId(id: string): boolean {
  return JOB_ID_PATTERN.test(id) && id !== "." && id !== "..";
}

/**
 * A job id from a name: unsafe characters become "_", long names are cut, and a numeric suffix
 * keeps ids unique against `taken`.
 */
export function makeJobId(name: string, taken: ReadonlySet<string>): string {
  let base = transliterate(name)
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    // Never a leading "-" (it would read as an option) or "." (a hidden file).
    .replace(/^[-._]+/, "")
    .replace(/_+$/, "");
  // A name in a script with no Latin reading (CJK, ...): a short hash, the same for the same name.
  if (!/[A-Za-z0-9]/.test(base)) base = `job-${createHash("sha256").update(name).digest("hex").slice(0, 6)}`;
  base = base.slice(0, 56);
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** A copy of `job` in state `to`, with a history entry. Throws on an illegal transition. */
export function transition(job: Job, to: JobState, reason: string, now: Date): Job {
  if (job.state === to) return job;
  if (!canTransition(job.state, to)) throw new IllegalTransitionError(job.id, job.state, to);
  const at = now.toISOString();
  return {
    ...job,
    state: to,
    updated_at: at,
    history: [...job.history, { at, from: job.state, to, reason }],
  };
}

export function newJob(fields: {
  id: string;
  name: string;
  local_path: string;
  template: string;
  vars: Record<string, string>;
  now: Date;
}): Job {
  const at = fields.now.toISOString();
  return {
    id: fields.id,
    name: fields.name,
    state: "QUEUED_LOCAL",
    scheduler_id: null,
    local_path: fields.local_path,
    template: fields.template,
    vars: fields.vars,
    created_at: at,
    updated_at: at,
    exit_code: null,
    attempt: 0,
    restart: false,
    results: null,
    summary: null,
    cancel_requested: false,
    missing_since: null,
    scheduler_note: null,
    history: [{ at, from: null, to: "QUEUED_LOCAL", reason: "added" }],
  };
}
