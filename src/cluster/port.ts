// The cluster as the rest of chasqui sees it: a few requests, typed. The ssh implementation
// (sshCluster.ts) is the only code that talks to a real cluster; tests drive the sync through an
// in-memory one.
import type { AgentEvent } from "../core/agentLog.ts";
import type { Config } from "../core/config.ts";
import type { CancelOutcome, Flag } from "../core/protocol.ts";
import type { SchedulerSnapshot } from "../core/schedulerView.ts";
import type { DownloadProgress, DownloadTarget, JobDownload } from "./download.ts";
import type { UploadJob } from "./upload.ts";

interface UploadOutcome {
  /** Restarted jobs and the run whose CONTCAR they continue from (e.g. "run.1"). */
  restartedFrom: Map<string, string>;
  /** Restarts refused on the cluster (no usable CONTCAR): nothing of these jobs was placed. */
  restartRefused: { id: string; why: string }[];
}

/** What a sync asks in its one state request. */
export interface StateAsk {
  /** Where the sync stopped reading agent.log: byte offset, and the log's first line then. */
  cursor: { offset: number; head: string | null };
  limits: Pick<Config, "scheduler" | "max_queued" | "max_running" | "trigger_host">;
  /** `cancel --next-sync`: agent cancel arguments (ID or ID=SCHEDULER_ID), done first. */
  cancel: readonly string[];
  /** chasqui's open jobs (ID=SCHEDULER_ID or ID), whose fate the scheduler is asked about. */
  open: readonly string[];
  /** Jobs forgotten with `rm --remote`. */
  remove: readonly string[];
}

/** The cluster's answer: everything a sync learns, in one reply. */
export interface StateReport {
  /** The agent version deployed by this request, when it deployed one. */
  deployed: string | null;
  /** agent.log events since the cursor, in order. */
  events: AgentEvent[];
  /** Where the next read starts; null when there is no log yet. */
  nextCursor: { offset: number; head: string } | null;
  /** How agent.log was read: from the cursor, across a rotation, from the start of a log that
   * replaced the one the cursor was in ("restart"), or the first time. */
  logRead: "continue" | "rotated" | "restart" | "first" | null;
  flags: Map<string, Flag>;
  cancelMarks: Map<string, string>;
  cancelAnswers: Map<string, { outcome: CancelOutcome; detail: string }>;
  snapshot: SchedulerSnapshot;
  /** Scripts left in waiting/ after the agent's run (held back by the limits), when known. */
  waiting: number | null;
  /** rm --remote: removed, and refused (a script still waits there). */
  removed: string[];
  removeRefused: string[];
}

export interface Cluster {
  upload(jobs: readonly UploadJob[]): Promise<UploadOutcome>;
  state(ask: StateAsk): Promise<StateReport>;
  /** `chasqui cancel`: the agent cancels these (ID or ID=SCHEDULER_ID) under its lock. */
  cancel(
    args: readonly string[],
    limits: StateAsk["limits"],
  ): Promise<Map<string, { outcome: CancelOutcome; detail: string }>>;
  download(
    targets: readonly DownloadTarget[],
    opts: { onProgress?: (p: DownloadProgress) => void },
  ): Promise<JobDownload[]>;
  /** `chasqui doctor`: the cluster side as KEY=VALUE facts (kit/doctor.sh); null facts when the
   * remote shell failed, with its words. */
  probe(queue: string): Promise<{ facts: Map<string, string> | null; problem: string }>;
  /** How the login went, hop by hop: host, port, and the methods that succeeded. */
  route(): readonly { host: string; port: number; methods: string[] }[];
  /** SSH requests (exec channels) made so far. */
  requests(): number;
  close(): Promise<void>;
}
