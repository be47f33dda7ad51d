// The scheduler's view of the user's jobs, as the agent's `snapshot` reports it, and what it means
// for chasqui: one table of state letters, and the scheduler's own verdict on how a job ended.
// Lines: <scheduler_id> TAB <name> TAB <state letter> TAB <exit status> TAB <comment> TAB <native
// state>, then `#error=<text>` when the query failed and a final `#rc=<rc>`. Pure; no I/O.

export type SchedulerKind = "pbs" | "slurm";

/** How the scheduler says a job ended. */
export interface Ending {
  /** deleted: qdel/scancel (outside chasqui unless a cancel mark says otherwise); walltime: the
   * limit killed it; exit: it ran and ended with `exit`; unknown: the scheduler does not say. */
  how: "deleted" | "walltime" | "exit" | "unknown";
  /** It never started (deleted while queued): no batch script ran, so no flag will ever come. */
  neverRan: boolean;
  exit: number | null;
  /** The scheduler's own words, for the job's history. */
  words: string;
}

export interface SchedulerEntry {
  name: string;
  state: string;
  /** Queued, held, running: anything but finished. */
  active: boolean;
  running: boolean;
  /** The scheduler's comment (PBS) or pending reason (Slurm); "" when none. */
  comment: string;
  /** PBS Professional's "Can Never Run": the request exceeds what the cluster has. */
  neverRuns: boolean;
  /** Set for finished jobs. */
  ending: Ending | null;
}

export interface SchedulerSnapshot {
  /** null when the scheduler could not be asked: nothing may be concluded from absence then. */
  jobs: Map<string, SchedulerEntry> | null;
  /** The scheduler's error when the query failed (e.g. "cannot connect to server"). */
  error: string | null;
}

// PBS Professional and Torque letters (Slurm's codes arrive mapped onto them by the agent).
// M (moved) and U (suspended by the workstation's user) still wait; C (Torque), F and X are done.
const WAITING = new Set(["Q", "H", "W", "T", "S", "M", "U"]);
const RUNNING = new Set(["R", "E", "B"]);
const FINISHED = new Set(["C", "F", "X"]);

/** PBS Professional's comment for a request larger than anything the cluster has. */
export function saysNeverRuns(comment: string | null): boolean {
  return comment !== null && /^can never run/i.test(comment);
}

/** Whether a job in this state still counts toward the queue (the agent counts the same way). */
export function isActiveState(state: string): boolean {
  return WAITING.has(state) || RUNNING.has(state);
}

// PBS Professional (finished state F) reports a walltime kill as -29 and a running job deleted
// with qdel as 256+15 (SIGTERM). Torque (state C) reports limit kills as -10..-12, and 271 for any
// SIGTERM, a walltime kill included on older versions: there 271 does not tell them apart.
const SIGTERM_EXIT = 271;
const LIMIT_KILLS: Record<"F" | "C", Record<number, string>> = {
  F: {
    [-24]: "ncpus burst limit",
    [-25]: "ncpus sum limit",
    [-26]: "vmem limit",
    [-27]: "mem limit",
    [-28]: "cput limit",
  },
  C: { [-10]: "memory limit", [-12]: "cput limit" },
};
const WALLTIME_EXIT: Record<"F" | "C", number> = { F: -29, C: -11 };

const SLURM_ENDINGS: Record<string, { how: Ending["how"]; words: string; exit?: number }> = {
  CA: { how: "deleted", words: "CANCELLED (scancel)" },
  TO: { how: "walltime", words: "TIMEOUT (time limit)" },
  CD: { how: "exit", words: "COMPLETED", exit: 0 },
  F: { how: "exit", words: "FAILED (non-zero exit)" },
  OOM: { how: "unknown", words: "OUT_OF_MEMORY" },
  NF: { how: "unknown", words: "NODE_FAIL" },
  PR: { how: "unknown", words: "PREEMPTED" },
  BF: { how: "unknown", words: "BOOT_FAIL" },
  DL: { how: "unknown", words: "DEADLINE" },
};

function pbsEnding(native: string, exitText: string, comment: string): Ending {
  const said = comment ? `; "${comment}"` : "";
  if (!/^-?\d+$/.test(exitText)) {
    // PBS Professional keeps a job deleted while queued as F with no Exit_status: it never ran.
    const neverRan = native === "F";
    return {
      how: neverRan ? "deleted" : "unknown",
      neverRan,
      exit: null,
      words: `job_state ${native}, no Exit_status${said}`,
    };
  }
  const exit = Number(exitText);
  const words = `job_state ${native}, Exit_status ${exit}${said}`;
  const family = native === "C" ? "C" : "F";
  if (exit === WALLTIME_EXIT[family]) return { how: "walltime", neverRan: false, exit, words };
  if (exit === SIGTERM_EXIT)
    return { how: family === "F" ? "deleted" : "unknown", neverRan: false, exit, words };
  const limit = LIMIT_KILLS[family][exit];
  if (limit) return { how: "unknown", neverRan: false, exit, words: `${words} (${limit})` };
  return { how: "exit", neverRan: false, exit, words };
}

function slurmEnding(native: string): Ending {
  const known = SLURM_ENDINGS[native];
  if (!known) return { how: "unknown", neverRan: false, exit: null, words: `state ${native}` };
  return { how: known.how, neverRan: false, exit: known.exit ?? null, words: `Slurm: ${known.words}` };
}

export function parseSchedulerSnapshot(text: string, scheduler: SchedulerKind): SchedulerSnapshot {
  const jobs = new Map<string, SchedulerEntry>();
  let rc: string | null = null;
  let error: string | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === "") continue;
    if (line.startsWith("#rc=")) rc = line.slice(4).trim();
    else if (line.startsWith("#error=")) error = line.slice(7).trim() || null;
    if (line.startsWith("#")) continue;
    const [id, name = "", state = "", exit = "", comment = "", native = state] = line.split("\t");
    if (!id || state === "") continue;
    const finished = FINISHED.has(state);
    const words = comment.trim();
    jobs.set(id, {
      name,
      state,
      active: isActiveState(state),
      running: RUNNING.has(state),
      comment: words,
      neverRuns: saysNeverRuns(words),
      ending: finished
        ? scheduler === "slurm"
          ? slurmEnding(native)
          : pbsEnding(native || state, exit.trim(), words)
        : null,
    });
  }
  // A reply cut before its #rc line is as good as no answer.
  if (rc !== "0") return { jobs: null, error: error ?? (rc === null ? "no answer" : `exit status ${rc}`) };
  return { jobs, error: null };
}
