// The store lock: exclusive across processes, busy errors that name the holder, stale locks broken.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { LockBusyError } from "../../src/errors.ts";
import { acquireLock, readLockHolder, withLock } from "../../src/store/lock.ts";
import { BUN, caught, deadPid, helper, run } from "./helpers/spawn.ts";

let root: string;
let n = 0;
const lockPath = async () => {
  const dir = path.join(root, `d${n++}`);
  await fs.mkdir(dir);
  return path.join(dir, "jobs.lock");
};
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-lock-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const writeHolder = (file: string, fields: Record<string, unknown>) =>
  fs.writeFile(
    file,
    JSON.stringify({
      host: os.hostname(),
      started: "2026-01-02T03:04:05.000Z",
      command: "x",
      token: "t",
      ...fields,
    }),
  );

test("acquire writes the holder, release removes the lock, and release is idempotent", async () => {
  const file = await lockPath();
  const lock = await acquireLock(file, {
    command: "chasqui test",
    now: () => new Date("2026-05-06T07:08:09Z"),
  });
  const holder = await readLockHolder(file);
  expect(holder).toMatchObject({
    pid: process.pid,
    host: os.hostname(),
    command: "chasqui test",
    started: "2026-05-06T07:08:09.000Z",
  });
  expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  await lock.release();
  await lock.release();
  expect(await readLockHolder(file)).toBeNull();
  expect(await fs.readdir(path.dirname(file))).toEqual([]);
});

test("a busy lock throws LockBusyError (exit 4) naming pid, command and since when", async () => {
  const file = await lockPath();
  const lock = await acquireLock(file, { command: "chasqui sync" });
  try {
    const err = await caught(acquireLock(file, { waitMs: 50 }));
    expect(err).toBeInstanceOf(LockBusyError);
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toContain("chasqui sync");
    expect(err.message).toContain(lock.holder.started);
    expect(err.hint).toContain(file);
  } finally {
    await lock.release();
  }
});

test("another process holding the lock keeps us out; we get it once it lets go", async () => {
  const file = await lockPath();
  const first = await acquireLock(file);
  const child = run(BUN, [helper("lockOnce.ts"), file, "100"]);
  const r = await child;
  expect(r.code).toBe(4);
  expect(r.stdout).toContain(`pid ${process.pid}`);
  await first.release();
  const again = await run(BUN, [helper("lockOnce.ts"), file, "100"]);
  expect(again.code).toBe(0);
  expect(again.stdout).toBe("acquired\n");
});

test("a waiter gets the lock when the holder releases within the wait", async () => {
  const file = await lockPath();
  const first = await acquireLock(file);
  let got = false;
  const second = acquireLock(file, { waitMs: 10_000 }).then((l) => {
    got = true;
    return l;
  });
  expect((await readLockHolder(file))?.token).toBe(first.holder.token);
  expect(got).toBe(false);
  await first.release();
  const lock = await second;
  expect((await readLockHolder(file))?.token).toBe(lock.holder.token);
  await lock.release();
});

test("withLock releases when fn throws", async () => {
  const file = await lockPath();
  await expect(
    withLock(file, {}, async () => {
      throw new Error("boom");
    }),
  ).rejects.toThrow("boom");
  expect(await readLockHolder(file)).toBeNull();
});

test("a stale lock of a dead pid on this host is broken", async () => {
  const file = await lockPath();
  await writeHolder(file, { pid: await deadPid() });
  const lock = await acquireLock(file, { waitMs: 0 });
  expect((await readLockHolder(file))?.token).toBe(lock.holder.token);
  await lock.release();
  expect(await fs.readdir(path.dirname(file))).toEqual([]);
});

test("a lock from before a reboot is stale even if its pid is alive now", async () => {
  const file = await lockPath();
  await writeHolder(file, { pid: process.ppid, boot: "some-other-boot" });
  const lock = await acquireLock(file, { waitMs: 0 });
  await lock.release();
});

test("our own pid with a token we do not hold is a leftover of an earlier process", async () => {
  const file = await lockPath();
  await writeHolder(file, { pid: process.pid, token: "not-ours" });
  const lock = await acquireLock(file, { waitMs: 0 });
  await lock.release();
});

test("a lock of another host is respected while fresh and broken once old", async () => {
  const file = await lockPath();
  await writeHolder(file, { pid: 1, host: "some-other-host.example" });
  const err = await caught(acquireLock(file, { waitMs: 30 }));
  expect(err).toBeInstanceOf(LockBusyError);
  expect(err.message).toContain("some-other-host.example");
  const old = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(file, old, old);
  const lock = await acquireLock(file, { waitMs: 0 });
  await lock.release();
});

test("release leaves alone a lock that someone else holds now", async () => {
  const file = await lockPath();
  const lock = await acquireLock(file);
  await fs.rm(file);
  await writeHolder(file, { pid: process.ppid, token: "someone-else" });
  await lock.release();
  expect((await readLockHolder(file))?.token).toBe("someone-else");
});

test("an abort signal ends the wait with its reason", async () => {
  const file = await lockPath();
  const lock = await acquireLock(file);
  const ctl = new AbortController();
  const waiting = acquireLock(file, { waitMs: 60_000, signal: ctl.signal });
  ctl.abort(new Error("user pressed ^C"));
  await expect(waiting).rejects.toThrow("user pressed ^C");
  await lock.release();
});

test("the holder refreshes the lock file's time (heartbeat), so long holds never look stale", async () => {
  const file = await lockPath();
  const lock = await acquireLock(file, { heartbeatMs: 5 });
  const old = new Date(Date.now() - 3600_000);
  await fs.utimes(file, old, old);
  const deadline = Date.now() + 10_000;
  while ((await fs.stat(file)).mtimeMs < Date.now() - 60_000 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  expect((await fs.stat(file)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  await lock.release();
});
