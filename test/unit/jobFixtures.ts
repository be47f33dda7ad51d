// Jobs in a given state, with a history that got them there, for tests of the pure core.
import { type Job, newJob, transition } from "../../src/core/job.ts";

export const t0 = new Date("2026-12-01T10:00:00Z");
export const later = (s: number) => new Date(t0.getTime() + s * 1000);

export function jobIn(id: string, states: Job["state"][], patch: Partial<Job> = {}): Job {
  let j = newJob({ id, name: id, local_path: `/w/${id}`, template: "pbspro-vasp", vars: {}, now: t0 });
  states.forEach((s, i) => {
    j = transition(j, s, `to ${s}`, later(i + 1));
  });
  return { ...j, ...patch };
}
