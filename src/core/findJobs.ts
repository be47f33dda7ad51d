// Jobs named on the command line, all or none: an unknown id is bad input before anything changes.
import { InputError } from "../errors.ts";
import type { Job } from "./job.ts";

export function findJobs(data: { jobs: readonly Job[] }, ids: readonly string[]): Job[] {
  const byId = new Map(data.jobs.map((j) => [j.id, j]));
  const unknown = [...new Set(ids.filter((id) => !byId.has(id)))];
  if (unknown.length > 0) {
    throw new InputError(
      `no such job${unknown.length === 1 ? "" : "s"}: ${unknown.join(", ")}`,
      "`chasqui list` shows the job ids.",
    );
  }
  return [...new Set(ids)].map((id) => byId.get(id)!);
}
