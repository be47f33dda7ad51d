// `retry --restart`: whether a job's last run can be continued from its CONTCAR, and what happens
// to a job whose restart the cluster refused. Pure.
import { InputError } from "../errors.ts";
import { type Job, transition } from "./job.ts";
import type { JobState } from "./states.ts";

/**
 * Refuses (bad input) a restart the run's own summary already rules out: CONTCAR missing or not
 * a structure with POSCAR's atom counts. Without a summary (a LOST job, an older script) the
 * cluster checks at the next sync.
 */
export function checkRestartable(jobs: readonly Job[]): void {
  const bad = jobs.filter((j) => j.summary?.contcar === "invalid" || j.summary?.contcar === "missing");
  if (bad.length === 0) return;
  const what = bad.map((j) =>
    j.summary?.contcar === "missing"
      ? `${j.id} (its run left no CONTCAR, or an empty one)`
      : `${j.id} (its CONTCAR is not a valid structure with POSCAR's atom counts)`,
  );
  throw new InputError(
    `cannot restart ${what.join(", ")}`,
    `Nothing was changed. \`chasqui retry ${bad.map((j) => j.id).join(" ")}\` (without --restart) runs again from POSCAR.`,
  );
}

/** The job back in the state it was retried from, when the cluster refused its restart. */
export function refuseRestart(job: Job, why: string, now: Date): Job {
  const before = [...job.history].reverse().find((h) => h.to === "QUEUED_LOCAL")?.from;
  const back: JobState = before === "TIMEOUT" || before === "LOST" ? before : "FAILED";
  return {
    ...transition(
      job,
      back,
      `retry --restart refused on the cluster: ${why}; \`chasqui retry ${job.id}\` runs again from POSCAR`,
      now,
    ),
    restart: false,
    // It was not sent: the attempt it was given by retry did not happen.
    attempt: Math.max(0, job.attempt - 1),
  };
}
