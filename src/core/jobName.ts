// The scheduler-side name of a job: short enough for PBS (15 characters, a letter first) and
// unique per job id, because the agent finds an ambiguous submission by this name.
import { createHash } from "node:crypto";

const SCHEDULER_NAME_MAX = 15;

export function schedulerJobName(jobId: string): string {
  if (jobId.length <= SCHEDULER_NAME_MAX && /^[A-Za-z][A-Za-z0-9._-]*$/.test(jobId)) return jobId;
  const hash = createHash("sha256").update(jobId).digest("hex").slice(0, 6);
  const head = jobId.replace(/[^A-Za-z0-9]/g, "").slice(0, 7);
  return `c${head}_${hash}`.slice(0, SCHEDULER_NAME_MAX);
}
