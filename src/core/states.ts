// Job states, the legal transitions between them, and the history entry every change leaves.

export const JOB_STATES = [
  "QUEUED_LOCAL",
  "UPLOADED",
  "SUBMITTED",
  "RUNNING",
  "DONE",
  "FAILED",
  "TIMEOUT",
  "CANCELLED",
  "LOST",
] as const;
export type JobState = (typeof JOB_STATES)[number];

export function isJobState(s: string): s is JobState {
  return (JOB_STATES as readonly string[]).includes(s);
}

/** States in which nothing more happens on the cluster until the user acts. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set([
  "DONE",
  "FAILED",
  "TIMEOUT",
  "CANCELLED",
  "LOST",
]);
/** States from which `retry` may send a job again. */
export const RETRYABLE_STATES: ReadonlySet<JobState> = new Set(["FAILED", "TIMEOUT", "LOST", "CANCELLED"]);

// A sync can observe several steps at once (a job uploaded, submitted and finished between two
// syncs), so forward jumps are legal; going backwards is only possible through retry.
const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  // Back to FAILED/TIMEOUT/LOST only when the cluster refuses a `retry --restart` it cannot do.
  QUEUED_LOCAL: ["UPLOADED", "CANCELLED", "FAILED", "TIMEOUT", "LOST"],
  UPLOADED: ["SUBMITTED", "RUNNING", "DONE", "FAILED", "TIMEOUT", "CANCELLED", "LOST"],
  SUBMITTED: ["RUNNING", "DONE", "FAILED", "TIMEOUT", "CANCELLED", "LOST"],
  RUNNING: ["DONE", "FAILED", "TIMEOUT", "CANCELLED", "LOST"],
  DONE: ["QUEUED_LOCAL"],
  FAILED: ["QUEUED_LOCAL"],
  TIMEOUT: ["QUEUED_LOCAL"],
  CANCELLED: ["QUEUED_LOCAL"],
  // A lost job whose flag turns up late is not lost after all.
  LOST: ["QUEUED_LOCAL", "DONE", "FAILED", "TIMEOUT", "CANCELLED"],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface HistoryEntry {
  at: string;
  from: JobState | null;
  to: JobState;
  reason: string;
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly jobId: string,
    readonly from: JobState,
    readonly to: JobState,
  ) {
    super(`job ${jobId}: cannot go from ${from} to ${to}`);
    this.name = "IllegalTransitionError";
  }
}
