// What a user may do to a job in each state, and the hint that names the command that works
// instead. Pure: the command layer asks, then changes the store.
import { InputError } from "../errors.ts";
import { type Job, transition } from "./job.ts";
import { FINAL_STATES, RETRYABLE_STATES } from "./states.ts";

const ON_CLUSTER = new Set(["UPLOADED", "SUBMITTED", "RUNNING"]);

/** What to do with a job in this state instead of `verb`. */
function instead(job: Job, verb: string): string {
  if (job.state === "QUEUED_LOCAL")
    return `${job.id} waits in the local queue; the next \`chasqui sync\` sends it`;
  if (ON_CLUSTER.has(job.state))
    return `${job.id} is ${job.state} on the cluster: \`chasqui cancel ${job.id}\` first, then ${verb} it`;
  if (job.state === "DONE")
    return `${job.id} is DONE: \`chasqui retry --force ${job.id}\` runs it again (the old run is kept under run.N/)`;
  return `\`chasqui retry ${job.id}\` sends it again`;
}

/** `retry`: FAILED, TIMEOUT, LOST, CANCELLED; DONE with force (a convergence rerun). */
export function checkRetryable(jobs: readonly Job[], force: boolean): void {
  const bad = jobs.filter((j) => !(RETRYABLE_STATES.has(j.state) || (force && j.state === "DONE")));
  if (bad.length === 0) return;
  throw new InputError(
    `cannot retry ${bad.map((j) => `${j.id} (${j.state})`).join(", ")}: only FAILED, TIMEOUT, LOST or CANCELLED jobs, and DONE ones with --force`,
    bad.map((j) => instead(j, "retry")).join("; "),
  );
}

/** The job back in the local queue, its next run numbered (the previous one is kept on the cluster). */
export function requeued(job: Job, restart: boolean, now: Date): Job {
  const next = transition(job, "QUEUED_LOCAL", restart ? "retry --restart" : "retry", now);
  // Jobs cancelled before they ever reached the cluster have no previous run to keep.
  const wasRemote = job.history.some((h) => h.to === "UPLOADED");
  return {
    ...next,
    attempt: wasRemote ? job.attempt + 1 : job.attempt,
    restart: restart && wasRemote,
    scheduler_id: null,
    exit_code: null,
    missing_since: null,
    scheduler_note: null,
  };
}

/** `edit`: a job not yet sent, or one that ended (the change applies to its next retry). */
export function checkEditable(jobs: readonly Job[]): void {
  const bad = jobs.filter((j) => j.state !== "QUEUED_LOCAL" && !FINAL_STATES.has(j.state));
  if (bad.length === 0) return;
  throw new InputError(
    `cannot edit ${bad.map((j) => `${j.id} (${j.state})`).join(", ")}: its script is on the cluster already`,
    bad.map((j) => instead(j, "edit")).join("; "),
  );
}

/** `rm`: forget jobs that are not on the cluster right now (never sent, or ended). */
export function checkRemovable(jobs: readonly Job[]): void {
  const bad = jobs.filter((j) => ON_CLUSTER.has(j.state));
  if (bad.length === 0) return;
  throw new InputError(
    `cannot remove ${bad.map((j) => `${j.id} (${j.state})`).join(", ")}: it is on the cluster`,
    bad.map((j) => instead(j, "remove")).join("; "),
  );
}

/** `add` of a folder that is a job already: what works in its state. */
export function alreadyAddedHint(job: Job): string {
  if (job.state === "QUEUED_LOCAL") return `it waits for the next \`chasqui sync\``;
  if (ON_CLUSTER.has(job.state)) return `it is ${job.state} on the cluster`;
  if (job.state === "DONE")
    return `\`chasqui retry --force ${job.id}\` runs it again; \`chasqui rm ${job.id}\` forgets it`;
  return `\`chasqui retry ${job.id}\` runs it again; \`chasqui rm ${job.id}\` forgets it`;
}
