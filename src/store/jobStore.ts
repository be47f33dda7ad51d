// The job store ($CHASQUI_HOME/jobs.json): schema versions, migrations, and locked updates.
import { AsyncLocalStorage } from "node:async_hooks";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Low } from "lowdb";
import { isValidJobId, type Job } from "../core/job.ts";
import { isJobState } from "../core/states.ts";
import { ExitCode, StoreError } from "../errors.ts";
import { DurableJsonFile, removeStrayTempFiles } from "./durableFile.ts";
import { acquireLock, type LockHolder } from "./lock.ts";

const STORE_FILE = "jobs.json";
const LOCK_FILE = "jobs.lock";

interface LogCursor {
  /** Bytes of agent.log already read. */
  offset: number;
  /** The log's first line when we read it last: a different one means the log was replaced. */
  head: string | null;
}

export interface StoreData {
  version: number;
  jobs: Job[];
  log_cursor: LogCursor | null;
  /** ISO-8601 time of the last complete sync. */
  last_sync: string | null;
  /** Job ids forgotten with `rm --remote`: the next sync removes their folders on the cluster. */
  remote_removals: string[];
  /** How the last sync that reached the cluster ended, and what it saw there (`chasqui status`). */
  last_report: SyncReport | null;
}

export interface SyncReport {
  at: string;
  /** null when the sync completed; else what stopped it (the scheduler not answering included). */
  error: string | null;
  /** The failed sync's exit status (3: a person had to log in); absent in stores before it was kept. */
  exit_code?: number | null;
  /** The user's jobs in the scheduler at that moment (submitted by hand too); null when unknown. */
  queued: number | null;
  running: number | null;
  /** Scripts waiting on the cluster for room under the limits. */
  waiting: number | null;
}

type RawStore = Record<string, unknown>;
export type Migration = (data: RawStore) => RawStore;

/**
 * MIGRATIONS[i] turns a version i+1 store into version i+2; `version` is set for you.
 * Adding a field is one line here (plus the field in StoreData), e.g.
 *   (d) => ({ ...d, remote_agent_version: null }),
 */
const MIGRATIONS: readonly Migration[] = [
  // 1 → 2: results come home with a record of what came (was: a time), runs bring a summary,
  // and a cancel can wait for the next sync.
  (d) => ({
    ...d,
    jobs: Array.isArray(d.jobs)
      ? d.jobs.map((job: Record<string, unknown>) => {
          const { downloaded_at, ...rest } = job;
          return {
            ...rest,
            results:
              typeof downloaded_at === "string"
                ? { at: downloaded_at, dest: rest.local_path, files: [] }
                : null,
            summary: null,
            cancel_requested: false,
          };
        })
      : d.jobs,
  }),
  // 2 → 3: what the scheduler says about a waiting job ("Can Never Run: ...").
  (d) => ({
    ...d,
    jobs: Array.isArray(d.jobs)
      ? d.jobs.map((job: Record<string, unknown>) => ({ ...job, scheduler_note: null }))
      : d.jobs,
  }),
  // 3 → 4: `rm --remote` leaves the cluster's side to the next sync.
  (d) => ({ ...d, remote_removals: [] }),
  // 4 → 5: the last sync's outcome and the cluster's numbers, for `chasqui status`.
  (d) => ({ ...d, last_report: null }),
];
export const CURRENT_VERSION = MIGRATIONS.length + 1;

/**
 * The store's text: one job per line. A third of the size of indented JSON (10,000 jobs are read
 * at every `list`), still one grep or diff line per job for a person.
 */
export function storeText(data: StoreData): string {
  const { jobs, ...rest } = data;
  const fields = Object.entries(rest).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  const rows = jobs.map((j, i) => `    ${JSON.stringify(j)}${i < jobs.length - 1 ? "," : ""}`);
  return ["{", ...fields, `  "jobs": [`, ...rows, "  ]", "}", ""].join("\n");
}

export function emptyStore(): StoreData {
  return {
    version: CURRENT_VERSION,
    jobs: [],
    log_cursor: null,
    last_sync: null,
    remote_removals: [],
    last_report: null,
  };
}

/**
 * Parsed JSON → current StoreData: refuses a newer version or a bad shape (StoreError), runs the
 * migrations for an older one. Pure; `file` is only for messages.
 */
export function reviveStoreData(raw: unknown, file: string, migrations: readonly Migration[] = MIGRATIONS) {
  const current = migrations.length + 1;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw notAStore(file, "not a JSON object");
  let data = raw as RawStore;
  const version = data.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw notAStore(file, 'no valid "version"');
  }
  if (version > current) {
    throw new StoreError(`${file} was written by a newer chasqui (version ${version}); upgrade chasqui`, {
      hint: `This chasqui understands store version ${current} and has not changed the file.`,
    });
  }
  for (let v = version; v < current; v++) data = { ...migrations[v - 1]!(data), version: v + 1 };
  const problems = storeProblems(data);
  if (problems.length > 0) throw notAStore(file, problems.slice(0, 5).join("; "));
  return { remote_removals: [], last_report: null, ...data } as unknown as StoreData;
}

/** What is wrong with a store's shape (empty when nothing). Fields it does not know are kept. */
function storeProblems(data: unknown): string[] {
  if (typeof data !== "object" || data === null) return ["not an object"];
  const d = data as RawStore;
  const problems: string[] = [];
  if (!Array.isArray(d.jobs)) return ['"jobs" is not an array'];
  const seen = new Set<string>();
  for (const [i, job] of (d.jobs as unknown[]).entries()) {
    const j = job as Partial<Job> | null;
    if (typeof j !== "object" || j === null) {
      problems.push(`jobs[${i}] is not an object`);
      continue;
    }
    if (typeof j.id !== "string" || !isValidJobId(j.id)) {
      problems.push(`jobs[${i}] has a bad id`);
      continue;
    }
    if (seen.has(j.id)) problems.push(`job id ${j.id} appears twice`);
    seen.add(j.id);
    if (typeof j.state !== "string" || !isJobState(j.state)) problems.push(`job ${j.id} has a bad state`);
    if (!Array.isArray(j.history)) problems.push(`job ${j.id} has no history`);
    if (typeof j.local_path !== "string") problems.push(`job ${j.id} has no local_path`);
  }
  const c = d.log_cursor as Partial<LogCursor> | null | undefined;
  if (c !== null) {
    const ok =
      typeof c === "object" &&
      typeof c.offset === "number" &&
      Number.isInteger(c.offset) &&
      c.offset >= 0 &&
      (c.head === null || typeof c.head === "string");
    if (!ok) problems.push('"log_cursor" is not null or {offset, head}');
  }
  if (d.last_sync !== null && typeof d.last_sync !== "string")
    problems.push('"last_sync" is not null or a time');
  if (
    d.remote_removals !== undefined &&
    (!Array.isArray(d.remote_removals) ||
      d.remote_removals.some((id) => typeof id !== "string" || !isValidJobId(id)))
  )
    problems.push('"remote_removals" is not a list of job ids');
  return problems;
}

function notAStore(file: string, why: string): StoreError {
  return new StoreError(`${file} is not a valid chasqui job store (${why})`, {
    hint: `chasqui has not changed it. Fix it by hand, or restore ${file}.bak if it is there.`,
  });
}

export interface StoreOptions {
  /** Clock for the lock's `started` field. */
  now?: () => Date;
  /** How long to wait for another chasqui's lock. Default 10 s. */
  lockWaitMs?: number;
  signal?: AbortSignal;
  /** Shown to another chasqui that finds the store locked. */
  command?: string;
  /** Told once when another chasqui holds the lock and this one waits for it. */
  onWait?: (holder: LockHolder | null) => void;
}

/** The store while its lock is held: given to withStoreLock's callback, dead after it returns. */
export interface LockedStore {
  read(): Promise<StoreData>;
  write(data: StoreData): Promise<void>;
  /** Fresh read → fn mutates a copy → validate → durable write. fn throwing writes nothing. */
  update<T>(fn: (data: StoreData) => T | Promise<T>): Promise<T>;
}

export interface JobStore {
  readonly home: string;
  readonly file: string;
  /** A consistent snapshot, without the lock (writes are atomic renames). */
  read(): Promise<StoreData>;
  /** Lock → fresh read → fn mutates a copy → validate → durable write → unlock. */
  update<T>(fn: (data: StoreData) => T | Promise<T>): Promise<T>;
  /** Holds the lock across `fn` (sync); nested update()/withLock() calls inside join it. */
  withLock<T>(fn: (store: LockedStore) => Promise<T>): Promise<T>;
}

// Which stores the current async call chain holds: a nested update joins the held lock instead
// of waiting for itself.
const heldStores = new AsyncLocalStorage<ReadonlyMap<string, LockedStore>>();
const insideUpdate = new AsyncLocalStorage<string>();

export function openStore(home: string, opts: StoreOptions = {}): JobStore {
  const dir = path.resolve(home);
  const file = path.join(dir, STORE_FILE);
  const adapter = new DurableJsonFile<StoreData>(file, {
    revive: (raw, f) => reviveStoreData(raw, f),
    serialize: storeText,
  });
  let prepared: Promise<void> | undefined;
  const prepare = () => {
    prepared ??= (async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await removeStrayTempFiles(dir, [STORE_FILE, `${STORE_FILE}.bak`, LOCK_FILE, `${LOCK_FILE}.break`]);
    })();
    return prepared;
  };

  const readFresh = async (): Promise<StoreData> => {
    const db = new Low<StoreData>(adapter, emptyStore());
    await db.read();
    return db.data;
  };
  const writeChecked = async (data: StoreData): Promise<void> => {
    const problems = storeProblems(data);
    if (data.version !== CURRENT_VERSION)
      problems.unshift(`version ${data.version} is not ${CURRENT_VERSION}`);
    if (problems.length > 0) {
      throw new StoreError(`refusing to write an invalid job store to ${file}: ${problems.join("; ")}`, {
        exitCode: ExitCode.failure,
      });
    }
    const db = new Low<StoreData>(adapter, data);
    await db.write();
  };

  const withLock = async <T>(fn: (store: LockedStore) => Promise<T>): Promise<T> => {
    const joined = heldStores.getStore()?.get(dir);
    if (joined) return fn(joined);
    await prepare();
    const lock = await acquireLock(path.join(dir, LOCK_FILE), {
      ...(opts.lockWaitMs === undefined ? {} : { waitMs: opts.lockWaitMs }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.command === undefined ? {} : { command: opts.command }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
      ...(opts.onWait === undefined ? {} : { onWait: opts.onWait }),
    });
    let alive = true;
    let queue: Promise<unknown> = Promise.resolve();
    const guard = () => {
      if (!alive) throw new Error("LockedStore used after its lock was released");
    };
    const locked: LockedStore = {
      read: async () => {
        guard();
        return readFresh();
      },
      write: async (data) => {
        guard();
        await writeChecked(data);
      },
      // Tasks started inside the lock share it, so their updates take turns here.
      update: (fn) => {
        guard();
        if (insideUpdate.getStore() === dir) {
          throw new Error(
            "store update started inside an update of the same store: change the data given to you",
          );
        }
        const turn = queue.then(async () => {
          guard();
          const draft = structuredClone(await readFresh());
          const result = await insideUpdate.run(dir, () => fn(draft));
          guard();
          await writeChecked(draft);
          return result;
        });
        queue = turn.catch(() => {});
        return turn;
      },
    };
    const held = new Map(heldStores.getStore() ?? []);
    held.set(dir, locked);
    try {
      return await heldStores.run(held, () => fn(locked));
    } finally {
      alive = false;
      await lock.release();
    }
  };

  return {
    home: dir,
    file,
    read: readFresh,
    update: (fn) => withLock((locked) => locked.update(fn)),
    withLock,
  };
}

/** Holds the store lock across `fn` (a whole sync), with several updates inside. */
export function withStoreLock<T>(
  home: string,
  opts: StoreOptions,
  fn: (store: LockedStore) => Promise<T>,
): Promise<T> {
  return openStore(home, opts).withLock(fn);
}
