// The job store: empty when missing, versions and migrations, refusals that leave the file alone,
// updates that write all or nothing, and the long-held lock of a sync.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { newJob } from "../../src/core/job.ts";
import { StoreError } from "../../src/errors.ts";
import {
  CURRENT_VERSION,
  emptyStore,
  type Migration,
  openStore,
  reviveStoreData,
  storeText,
  withStoreLock,
} from "../../src/store/jobStore.ts";
import { readLockHolder } from "../../src/store/lock.ts";
import { BUN, caught, helper, run } from "./helpers/spawn.ts";

let root: string;
let n = 0;
const freshHome = () => path.join(root, `home${n++}`);
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-jobstore-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const job = (id: string) =>
  newJob({ id, name: id, local_path: `/data/${id}`, template: "t", vars: {}, now: new Date(0) });

test("a missing store reads as empty and reading creates nothing", async () => {
  const home = freshHome();
  expect(await openStore(home).read()).toEqual(emptyStore());
  await expect(fs.stat(home)).rejects.toThrow();
});

test("update creates the home 0700 and the file 0600, and returns fn's value", async () => {
  const home = freshHome();
  const store = openStore(home);
  const r = await store.update((d) => {
    d.jobs.push(job("a"));
    return d.jobs.length;
  });
  expect(r).toBe(1);
  expect((await fs.stat(home)).mode & 0o777).toBe(0o700);
  expect((await fs.stat(store.file)).mode & 0o777).toBe(0o600);
  const data = await store.read();
  expect(data.version).toBe(CURRENT_VERSION);
  expect(data.jobs.map((j) => j.id)).toEqual(["a"]);
  expect(await readLockHolder(path.join(home, "jobs.lock"))).toBeNull();
});

test("fn throwing (or async rejecting) leaves the file byte for byte", async () => {
  const store = openStore(freshHome());
  await store.update((d) => {
    d.jobs.push(job("a"));
  });
  const before = await fs.readFile(store.file);
  await expect(
    store.update((d) => {
      d.jobs.push(job("b"));
      throw new Error("changed my mind");
    }),
  ).rejects.toThrow("changed my mind");
  await expect(
    store.update(async (d) => {
      d.jobs = [];
      await Promise.resolve();
      throw new Error("async too");
    }),
  ).rejects.toThrow("async too");
  expect(Buffer.compare(await fs.readFile(store.file), before)).toBe(0);
});

test("fn leaving an invalid store (duplicate id) is refused before anything is written", async () => {
  const store = openStore(freshHome());
  await store.update((d) => {
    d.jobs.push(job("a"));
  });
  const before = await fs.readFile(store.file);
  const err = await caught(
    store.update((d) => {
      d.jobs.push(job("a"));
    }),
  );
  expect(err).toBeInstanceOf(StoreError);
  expect(err.message).toContain("appears twice");
  expect(Buffer.compare(await fs.readFile(store.file), before)).toBe(0);
});

describe("files the store must not touch", () => {
  const cases: [string, string][] = [
    ["corrupt JSON", '{"version": 1, "jobs": ['],
    ["a newer version", JSON.stringify({ ...emptyStore(), version: CURRENT_VERSION + 1, future: true })],
    ["not an object", "[1, 2, 3]"],
    ["no version", JSON.stringify({ jobs: [] })],
    ["jobs not a list", JSON.stringify({ ...emptyStore(), jobs: {} })],
    ["a job with a bad state", JSON.stringify({ ...emptyStore(), jobs: [{ ...job("a"), state: "WEIRD" }] })],
  ];
  for (const [what, text] of cases) {
    test(`${what}: read and update refuse it with a StoreError, file untouched`, async () => {
      const home = freshHome();
      await fs.mkdir(home);
      const file = path.join(home, "jobs.json");
      await fs.writeFile(file, text);
      const store = openStore(home);
      const e1 = await caught(store.read());
      const e2 = await caught(store.update((d) => void d.jobs.push(job("x"))));
      for (const e of [e1, e2]) {
        expect(e).toBeInstanceOf(StoreError);
        expect(e.message).toContain(file);
      }
      expect(await fs.readFile(file, "utf8")).toBe(text);
      expect(await fs.readdir(home)).toEqual(["jobs.json"]);
    });
  }

  test("the newer-version message tells the user to upgrade", async () => {
    const home = freshHome();
    await fs.mkdir(home);
    await fs.writeFile(path.join(home, "jobs.json"), JSON.stringify({ ...emptyStore(), version: 99 }));
    await expect(openStore(home).read()).rejects.toThrow(
      "was written by a newer chasqui (version 99); upgrade chasqui",
    );
  });
});

describe("migrations", () => {
  const migrations: Migration[] = [
    (d) => ({ ...d, log_cursor: null }),
    (d) => ({ ...d, last_sync: (d.synced_at as string | undefined) ?? null }),
  ];

  test("an older store is migrated step by step to the current version", () => {
    const v1 = { version: 1, jobs: [job("a")], synced_at: "2026-01-01T00:00:00Z" };
    const data = reviveStoreData(v1, "/f", migrations);
    expect(data).toMatchObject({ version: 3, log_cursor: null, last_sync: "2026-01-01T00:00:00Z" });
    expect(data.jobs.map((j) => j.id)).toEqual(["a"]);
    expect(reviveStoreData({ ...emptyStore(), version: 3 }, "/f", migrations).version).toBe(3);
  });

  test("a version beyond the migrations is refused", () => {
    expect(() => reviveStoreData({ ...emptyStore(), version: 4 }, "/f", migrations)).toThrow(
      "newer chasqui (version 4)",
    );
  });

  test("the current version is read as it is, unknown fields kept and written back", async () => {
    const home = freshHome();
    await fs.mkdir(home);
    await fs.writeFile(path.join(home, "jobs.json"), JSON.stringify({ ...emptyStore(), extra: { a: 1 } }));
    const store = openStore(home);
    await store.update((d) => {
      d.last_sync = "t";
    });
    expect(JSON.parse(await fs.readFile(store.file, "utf8"))).toMatchObject({
      extra: { a: 1 },
      last_sync: "t",
    });
  });
});

describe("withStoreLock (a sync holding the lock)", () => {
  test("several updates inside, nested store.update joins the held lock instead of deadlocking", async () => {
    const home = freshHome();
    const store = openStore(home, { lockWaitMs: 200 });
    const out = await withStoreLock(home, { command: "chasqui sync" }, async (locked) => {
      await locked.update((d) => void d.jobs.push(job("a")));
      await store.update((d) => void d.jobs.push(job("b")));
      await store.withLock((again) => again.update((d) => void d.jobs.push(job("c"))));
      const d = await locked.read();
      d.last_sync = "2026-01-01T00:00:00.000Z";
      await locked.write(d);
      return (await locked.read()).jobs.length;
    });
    expect(out).toBe(3);
    const data = await store.read();
    expect(data.jobs.map((j) => j.id)).toEqual(["a", "b", "c"]);
    expect(data.last_sync).toBe("2026-01-01T00:00:00.000Z");
  });

  test("while held, another process gets LockBusyError naming the sync", async () => {
    const home = freshHome();
    await withStoreLock(home, { command: "chasqui sync" }, async () => {
      const r = await run(BUN, [helper("lockOnce.ts"), path.join(home, "jobs.lock"), "50"]);
      expect(r.code).toBe(4);
      expect(r.stdout).toContain("chasqui sync");
    });
    const r = await run(BUN, [helper("lockOnce.ts"), path.join(home, "jobs.lock"), "50"]);
    expect(r.code).toBe(0);
  });

  test("concurrent updates from tasks inside the lock take turns: none lost", async () => {
    const home = freshHome();
    const store = openStore(home);
    await withStoreLock(home, {}, async (locked) => {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? locked : store).update(async (d) => {
            const k = d.log_cursor?.offset ?? 0;
            await new Promise((r) => setImmediate(r));
            d.log_cursor = { offset: k + 1, head: null };
          }),
        ),
      );
    });
    expect((await store.read()).log_cursor?.offset).toBe(20);
  });

  test("an update started inside an update of the same store is refused, not deadlocked", async () => {
    const store = openStore(freshHome());
    await expect(store.update(() => store.update(() => 1))).rejects.toThrow("inside an update");
  });

  test("the LockedStore is dead after the lock is released", async () => {
    const home = freshHome();
    let kept: { read(): Promise<unknown> } | undefined;
    await withStoreLock(home, {}, async (locked) => {
      kept = locked;
    });
    await expect(kept!.read()).rejects.toThrow("after its lock was released");
  });
});

describe("the store's text", () => {
  test("one job per line, and it reads back as it was", () => {
    const data = { ...emptyStore(), jobs: [job("a"), job("b")], last_sync: "2026-12-01T00:00:00Z" };
    const text = storeText(data);
    const lines = text.split("\n");
    expect(lines.filter((l) => l.startsWith('    {"id":')).length).toBe(2);
    expect(JSON.parse(text)).toEqual(data);
    expect(JSON.parse(storeText(emptyStore()))).toEqual(emptyStore());
  });
});
