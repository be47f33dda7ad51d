// A lock across processes (and hosts sharing a file system) made of one file created by link().
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { clearInterval, setInterval } from "node:timers";
import { errnoCode, LockBusyError } from "../errors.ts";
import { isProcessAlive, tempPathFor } from "./durableFile.ts";

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO-8601 time the lock was taken. */
  started: string;
  /** What the holder is doing, e.g. "chasqui sync". */
  command: string;
  /** Linux boot id: a pid from before a reboot is dead whatever runs under that number now. */
  boot: string | null;
  /** Unique per acquisition: release only removes a lock that is still ours. */
  token: string;
}

export interface AcquireOptions {
  /** How long to wait for a busy lock before LockBusyError. Default 10 s. */
  waitMs?: number;
  signal?: AbortSignal;
  /** Shown to whoever finds the lock busy. */
  command?: string;
  /** A lock from another host is stale when its file was not touched for this long. Default 30 min. */
  staleAfterMs?: number;
  /** The holder touches the lock file this often, so long holds (sync) never look stale. Default 30 s. */
  heartbeatMs?: number;
  /** Clock for `started`; waiting uses the real clock. */
  now?: () => Date;
  /** Called once when the lock is found held by a live holder and we start waiting. */
  onWait?: (holder: LockHolder | null) => void;
}

export interface HeldLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Idempotent. Leaves the file alone if someone broke the lock and took it meanwhile. */
  release(): Promise<void>;
}

const DEFAULT_LOCK_WAIT_MS = 10_000;
const DEFAULT_STALE_AFTER_MS = 30 * 60_000;
const DEFAULT_HEARTBEAT_MS = 30_000;
/** A lock file we cannot parse (a writer without hard links, caught mid-write) is stale after this. */
const UNREADABLE_STALE_MS = 60_000;
/** The breaker's own lock is short-lived; older than this, its owner died. */
const BREAKER_STALE_MS = 30_000;

const heldTokens = new Set<string>();

/**
 * Takes the lock at `lockPath`, waiting up to `waitMs` with backoff. A stale lock (holder dead on
 * this host, or untouched for `staleAfterMs` on another) is broken. Throws LockBusyError naming
 * the holder, or the signal's reason when aborted.
 */
export async function acquireLock(lockPath: string, opts: AcquireOptions = {}): Promise<HeldLock> {
  const file = path.resolve(lockPath);
  const waitMs = opts.waitMs ?? DEFAULT_LOCK_WAIT_MS;
  const staleAfterMs = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const holder: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    started: (opts.now?.() ?? new Date()).toISOString(),
    command: opts.command ?? defaultCommand(),
    boot: await bootId(),
    token: randomBytes(12).toString("hex"),
  };
  const deadline = Date.now() + waitMs;
  let delay = 5;
  let told = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    if (await createExclusive(file, holder)) break;
    const seen = await inspectLock(file);
    if (seen === null) continue; // released between our attempt and our look: try again at once
    if (isStale(seen, staleAfterMs) && (await breakLock(file, seen))) continue;
    if (Date.now() >= deadline) throw busyError(file, seen);
    if (!told) {
      told = true;
      opts.onWait?.(seen.holder ?? null);
    }
    await sleep(Math.max(1, Math.min(delay, deadline - Date.now())), opts.signal);
    delay = Math.min(delay * 2, 250);
  }
  heldTokens.add(holder.token);
  const timer = setInterval(() => {
    const t = new Date();
    fs.utimes(file, t, t).catch(() => {});
  }, opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  timer.unref();
  let released = false;
  return {
    path: file,
    holder,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      heldTokens.delete(holder.token);
      const current = await inspectLock(file);
      if (current?.holder?.token === holder.token) await fs.rm(file, { force: true });
    },
  };
}

/** Runs `fn` while holding the lock; the lock is released however `fn` ends. */
export async function withLock<T>(
  lockPath: string,
  opts: AcquireOptions,
  fn: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(lockPath, opts);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/** The current holder, or null if the lock is free (or its file unreadable). */
export async function readLockHolder(lockPath: string): Promise<LockHolder | null> {
  return (await inspectLock(path.resolve(lockPath)))?.holder ?? null;
}

interface SeenLock {
  holder: LockHolder | null;
  raw: string;
  ino: number;
  mtimeMs: number;
}

/** Writes the holder to a temp file, then links it to `target`: link fails if the name exists, even on NFS. */
async function createExclusive(target: string, holder: LockHolder): Promise<boolean> {
  const temp = tempPathFor(target);
  const content = `${JSON.stringify(holder)}\n`;
  await fs.writeFile(temp, content, { mode: 0o600, flag: "wx" });
  try {
    await fs.link(temp, target);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw e;
    // No hard links on this file system: O_EXCL is the next best thing.
    try {
      await fs.writeFile(target, content, { mode: 0o600, flag: "wx" });
      return true;
    } catch (e2) {
      if (errnoCode(e2) === "EEXIST") return false;
      throw e2;
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
}

async function inspectLock(file: string): Promise<SeenLock | null> {
  try {
    const [raw, st] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file)]);
    return { holder: parseHolder(raw), raw, ino: st.ino, mtimeMs: st.mtimeMs };
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return null;
    throw e;
  }
}

function parseHolder(raw: string): LockHolder | null {
  try {
    const v = JSON.parse(raw) as Partial<LockHolder> | null;
    if (!v || typeof v.pid !== "number" || typeof v.host !== "string") return null;
    return {
      pid: v.pid,
      host: v.host,
      started: typeof v.started === "string" ? v.started : "",
      command: typeof v.command === "string" ? v.command : "",
      boot: typeof v.boot === "string" ? v.boot : null,
      token: typeof v.token === "string" ? v.token : "",
    };
  } catch {
    return null;
  }
}

function isStale(seen: SeenLock, staleAfterMs: number): boolean {
  const age = Date.now() - seen.mtimeMs;
  const h = seen.holder;
  if (h === null) return age > UNREADABLE_STALE_MS;
  if (h.host !== os.hostname()) return age > staleAfterMs;
  if (h.boot !== null && cachedBootId !== null && h.boot !== cachedBootId) return true;
  // Our own pid but not a token we hold: left by an earlier process that had the same pid.
  if (h.pid === process.pid) return !heldTokens.has(h.token);
  return !isProcessAlive(h.pid);
}

/**
 * Removes a stale lock, but only the one we judged: breakers take turns through a second lock,
 * and the lock is checked again (same file, same content) before it is renamed away.
 */
async function breakLock(file: string, judged: SeenLock): Promise<boolean> {
  const breaker = `${file}.break`;
  const me: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    command: "breaking a stale lock",
    boot: cachedBootId,
    token: randomBytes(12).toString("hex"),
  };
  if (!(await createExclusive(breaker, me))) {
    const other = await inspectLock(breaker);
    if (other && isStale(other, BREAKER_STALE_MS)) await fs.rm(breaker, { force: true });
    return false;
  }
  try {
    const now = await inspectLock(file);
    if (now === null) return true;
    if (now.ino !== judged.ino || now.raw !== judged.raw) return true; // someone else's turn now
    const aside = `${file}.stale.${process.pid}.${randomBytes(6).toString("hex")}`;
    await fs.rename(file, aside);
    await fs.rm(aside, { force: true });
    return true;
  } finally {
    await fs.rm(breaker, { force: true });
  }
}

function busyError(file: string, seen: SeenLock): LockBusyError {
  const h = seen.holder;
  const who =
    h === null
      ? "a process that left no readable details"
      : `pid ${h.pid} on ${h.host}${h.command ? ` ("${h.command}")` : ""}${h.started ? `, since ${h.started}` : ""}`;
  return new LockBusyError(
    `another chasqui is using the job store: held by ${who}`,
    `Wait for it to finish and try again. If no chasqui is running there, remove ${file}.`,
  );
}

function defaultCommand(): string {
  return ["chasqui", ...process.argv.slice(2)].join(" ").slice(0, 200);
}

let cachedBootId: string | null = null;
let bootIdRead = false;
async function bootId(): Promise<string | null> {
  if (bootIdRead) return cachedBootId;
  bootIdRead = true;
  try {
    cachedBootId = (await fs.readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim() || null;
  } catch {
    cachedBootId = null;
  }
  return cachedBootId;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
