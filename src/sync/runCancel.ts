// `chasqui cancel`: jobs still on the workstation are cancelled in the store; jobs on the cluster
// are taken out of waiting/ or deleted in the scheduler by the agent, under its lock, in one
// request of one session (or, with --next-sync, by the next sync). The store changes only for
// what the cluster confirmed.

import { agentLimits, type ConnectOptions } from "../cluster/connect.ts";
import { openCluster } from "../cluster/sshCluster.ts";
import { readConfig } from "../config/configFile.ts";
import { applyCancelAnswer, type CancelAnswer, cancelArgs, checkCancellable } from "../core/cancel.ts";
import type { Config } from "../core/config.ts";
import { findJobs } from "../core/findJobs.ts";
import type { Job } from "../core/job.ts";
import { openStore, type StoreOptions } from "../store/jobStore.ts";

export interface CancelResult {
  id: string;
  /** `requested`: recorded for the next sync (--next-sync). */
  outcome: CancelAnswer["outcome"] | "requested";
  detail: string;
  state: Job["state"];
}

export async function runCancel(
  home: string,
  ids: readonly string[],
  opts: ConnectOptions & { now: () => Date; nextSync?: boolean; onLockWait?: StoreOptions["onWait"] },
): Promise<CancelResult[]> {
  const store = openStore(home, {
    command: "chasqui cancel",
    ...(opts.onLockWait ? { onWait: opts.onLockWait } : {}),
  });
  return store.withLock(async (locked) => {
    const picked = findJobs(await locked.read(), ids);
    checkCancellable(picked);
    const answers = new Map<string, { outcome: CancelResult["outcome"]; detail: string }>();
    for (const j of picked) {
      if (j.state === "QUEUED_LOCAL") answers.set(j.id, { outcome: "local", detail: "" });
      else if (opts.nextSync) answers.set(j.id, { outcome: "requested", detail: "" });
    }
    const remote = picked.filter((j) => !answers.has(j.id));
    if (remote.length > 0) {
      const { config } = await readConfig(home);
      for (const [id, a] of await cancelOnCluster(config, remote, opts)) answers.set(id, a);
    }
    const now = opts.now();
    const results: CancelResult[] = [];
    await locked.update((d) => {
      d.jobs = d.jobs.map((j) => {
        const a = answers.get(j.id);
        if (!a) return j;
        const next =
          a.outcome === "requested"
            ? { ...j, cancel_requested: true }
            : applyCancelAnswer(j, a as CancelAnswer, now);
        results.push({ id: j.id, outcome: a.outcome, detail: a.detail, state: next.state });
        return next;
      });
    });
    const order = new Map(picked.map((j, i) => [j.id, i]));
    return results.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  });
}

async function cancelOnCluster(
  config: Config,
  jobs: readonly Job[],
  opts: ConnectOptions,
): Promise<Map<string, CancelAnswer>> {
  const cluster = await openCluster(config, opts);
  try {
    const answers: Map<string, CancelAnswer> = await cluster.cancel(cancelArgs(jobs), agentLimits(config));
    for (const j of jobs) {
      if (!answers.has(j.id))
        answers.set(j.id, { outcome: "error", detail: "the cluster gave no answer for it" });
    }
    return answers;
  } finally {
    await cluster.close();
  }
}
