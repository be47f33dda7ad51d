// Cancelling jobs: which jobs may be cancelled, and what each answer of the cluster's agent does
// to a job. Pure; `chasqui cancel` and the sync (for `cancel --next-sync`) share it.
import { InputError } from "../errors.ts";
import { type Job, transition } from "./job.ts";
import type { CancelOutcome } from "./protocol.ts";
import { FINAL_STATES } from "./states.ts";

export interface CancelAnswer {
  /** `local`: it had not left the workstation. The others are the agent's answer. */
  outcome: "local" | CancelOutcome;
  detail: string;
}

const REASON: Partial<Record<CancelAnswer["outcome"], string>> = {
  local: "cancelled by user before upload",
  removed: "cancelled by user: script taken out of waiting/, never submitted",
  deleted: "cancelled by user: deleted in the scheduler",
  unknown: "cancelled by user: nothing of it was waiting or submitted on the cluster",
};

/** Refuses (bad input, nothing changed) jobs that have nothing left to cancel. */
export function checkCancellable(jobs: readonly Job[]): void {
  const final = jobs.filter((j) => FINAL_STATES.has(j.state));
  if (final.length > 0) {
    throw new InputError(
      `cannot cancel ${final.map((j) => `${j.id} (${j.state})`).join(", ")}: already finished`,
      "Nothing was changed. `chasqui list --state RUNNING` shows what can still be cancelled.",
    );
  }
}

/**
 * The job after the cluster's answer: CANCELLED when the cancel took effect. A job that had
 * already finished ("gone") keeps its state for the sync to collect; an error leaves it as it was
 * (a request for the next sync stays, to be tried again).
 */
export function applyCancelAnswer(job: Job, answer: CancelAnswer, now: Date): Job {
  const reason = REASON[answer.outcome];
  if (reason)
    return { ...transition(job, "CANCELLED", reason, now), missing_since: null, cancel_requested: false };
  if (answer.outcome === "gone") return { ...job, cancel_requested: false };
  return job;
}

/** `agent.sh cancel` arguments: ID=SCHEDULER_ID where the store knows the scheduler id. */
export function cancelArgs(jobs: readonly Pick<Job, "id" | "scheduler_id">[]): string[] {
  return jobs.map((j) => (j.scheduler_id ? `${j.id}=${j.scheduler_id}` : j.id));
}
