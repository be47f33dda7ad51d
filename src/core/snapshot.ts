// The agent's `snapshot` output: the scheduler's view of the user's jobs, normalised by the agent
// to `<scheduler_id>\t<job_name>\t<state>\t<exit_status>` lines and a final `#rc=<rc>` line.

export interface SchedulerJob {
  name: string;
  /** One letter: Q R H E C F X (PBS), Slurm's codes mapped onto them; others passed through. */
  state: string;
  /** PBS Professional's Exit_status when the job finished (-29 = walltime); null when unknown. */
  exitStatus: number | null;
}

export interface SchedulerSnapshot {
  /** The query ran and its output was complete: absence from `jobs` means "not known". */
  ok: boolean;
  /** The query's exit status; null when the output was cut before the #rc line. */
  rc: number | null;
  /** The scheduler's error text when the query failed. */
  error: string | null;
  jobs: Map<string, SchedulerJob>;
}

export type SchedulerStateClass = "queued" | "running" | "finished" | "unknown";

const QUEUED = new Set(["Q", "H", "W", "T", "S", "M", "U"]);
const RUNNING = new Set(["R", "E", "B"]);
const FINISHED = new Set(["C", "F", "X"]);

/** What a state letter means for chasqui (the agent counts the same way against the limits). */
export function classifySchedulerState(state: string): SchedulerStateClass {
  if (QUEUED.has(state)) return "queued";
  if (RUNNING.has(state)) return "running";
  if (FINISHED.has(state)) return "finished";
  return "unknown";
}

export function parseSnapshot(text: string): SchedulerSnapshot {
  const jobs = new Map<string, SchedulerJob>();
  let rc: number | null = null;
  let error: string | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#rc=(-?\d+)$/.exec(line);
      if (m) {
        rc = Number(m[1]);
        break;
      }
      if (line.startsWith("#error=")) error = line.slice("#error=".length).trim() || null;
      continue;
    }
    const [id, name, state, exit] = line.split("\t");
    if (!id || state === undefined || state === "") continue;
    const exitStatus = exit !== undefined && /^-?\d+$/.test(exit.trim()) ? Number(exit.trim()) : null;
    jobs.set(id, { name: name ?? "", state, exitStatus });
  }
  return { ok: rc === 0, rc, error, jobs };
}
