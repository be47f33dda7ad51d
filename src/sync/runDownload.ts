// `chasqui download [JOB...]` and the download step of a sync: which jobs, where their results
// go, and the record of what came home.
import * as os from "node:os";
import * as path from "node:path";
import type { ConnectOptions } from "../cluster/connect.ts";
import type { DownloadProgress, DownloadTarget, JobDownload } from "../cluster/download.ts";
import type { Cluster } from "../cluster/port.ts";
import { openCluster } from "../cluster/sshCluster.ts";
import { readConfig } from "../config/configFile.ts";
import type { Config } from "../core/config.ts";
import { findJobs } from "../core/findJobs.ts";
import type { Job, JobResults } from "../core/job.ts";
import { resultGlobs } from "../core/resultFiles.ts";
import { InputError } from "../errors.ts";
import type { LockedStore } from "../store/jobStore.ts";
import { openStore, type StoreOptions } from "../store/jobStore.ts";

const FINISHED = new Set(["DONE", "FAILED", "TIMEOUT"]);

/** Where a job's results go: `results_dir/<id>` when set (relative to the home folder), else its own folder. */
function downloadTarget(
  job: Job,
  config: Pick<Config, "results_dir" | "download_globs">,
  home = os.homedir(),
): DownloadTarget {
  const globs = resultGlobs(job, config);
  if (config.results_dir === null) {
    // Names that came into this same folder before are results; anything else there is the user's.
    const earlierResults = job.results?.dest === job.local_path ? job.results.files.map((f) => f.name) : [];
    return { id: job.id, dest: job.local_path, globs, guardInputs: true, earlierResults };
  }
  const base = config.results_dir.replace(/^~(?=\/|$)/, home);
  return {
    id: job.id,
    dest: path.resolve(home, base, job.id),
    globs,
    guardInputs: false,
    earlierResults: [],
  };
}

/** Finished jobs whose results have not come home since they finished. */
export function needsDownload(job: Job): boolean {
  if (!FINISHED.has(job.state)) return false;
  return job.results === null || job.results.at < job.updated_at;
}

/** Has been on the cluster, so there is a work folder to fetch from. */
function wasUploaded(job: Job): boolean {
  return job.history.some((h) => h.to === "UPLOADED");
}

export interface DownloadSelection {
  /** Every job that has been on the cluster, running ones too (what they wrote so far). */
  all?: boolean;
  /** Also jobs whose results are home already (what changed comes again). */
  force?: boolean;
}

/** The jobs a `chasqui download` fetches: the named ones, or those the selection picks. */
export function pickDownloads(jobs: readonly Job[], ids: readonly string[], sel: DownloadSelection): Job[] {
  if (ids.length > 0) {
    const picked = findJobs({ jobs }, ids);
    const local = picked.filter((j) => !wasUploaded(j));
    if (local.length > 0) {
      throw new InputError(
        `nothing to download for ${local.map((j) => `${j.id} (${j.state})`).join(", ")}: never sent to the cluster`,
        "`chasqui sync` sends queued jobs first; nothing was changed.",
      );
    }
    return picked;
  }
  if (sel.all)
    return jobs.filter((j) => wasUploaded(j) && (sel.force || j.results === null || needsDownload(j)));
  return jobs.filter((j) => (sel.force ? FINISHED.has(j.state) : needsDownload(j)));
}

/** What a download brought, as the job's record: every result file that is now home. */
export function resultsRecord(d: JobDownload, at: string): JobResults {
  const files = [...d.written, ...d.same].sort((a, b) => a.name.localeCompare(b.name));
  return { at, dest: d.dest, files };
}

/** Downloads from the cluster, then records what came home (one store write). */
export async function fetchInto(
  cluster: Cluster,
  locked: LockedStore,
  config: Config,
  jobs: readonly Job[],
  opts: { now: () => Date; onProgress?: (p: DownloadProgress) => void },
): Promise<JobDownload[]> {
  if (jobs.length === 0) return [];
  const results = await cluster.download(
    jobs.map((j) => downloadTarget(j, config)),
    opts.onProgress ? { onProgress: opts.onProgress } : {},
  );
  const at = opts.now().toISOString();
  const got = new Map(results.filter((r) => !r.missing).map((r) => [r.id, resultsRecord(r, at)]));
  await locked.update((d) => {
    d.jobs = d.jobs.map((j) => {
      const rec = got.get(j.id);
      return rec ? { ...j, results: rec } : j;
    });
  });
  return results;
}

export async function runDownload(
  home: string,
  ids: readonly string[],
  opts: ConnectOptions &
    DownloadSelection & {
      now: () => Date;
      onProgress?: (p: DownloadProgress) => void;
      onLockWait?: StoreOptions["onWait"];
    },
): Promise<JobDownload[]> {
  const { config } = await readConfig(home);
  const store = openStore(home, {
    command: "chasqui download",
    ...(opts.onLockWait ? { onWait: opts.onLockWait } : {}),
  });
  return store.withLock(async (locked) => {
    const picked = pickDownloads((await locked.read()).jobs, ids, opts);
    if (picked.length === 0) return [];
    const cluster = await openCluster(config, opts);
    try {
      return await fetchInto(cluster, locked, config, picked, opts);
    } finally {
      await cluster.close();
    }
  });
}
