// Many processes on one store: no lost update, and SIGKILL mid-write never leaves a torn file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { openStore } from "../../src/store/jobStore.ts";
import { SLOW } from "../slow.ts";
import { BUN, DENO, finished, helper, run } from "./helpers/spawn.ts";

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-store-conc-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function expectAllUpdates(home: string, tags: string[], each: number) {
  const data = await openStore(home).read();
  expect(data.log_cursor?.offset).toBe(tags.length * each);
  const ids = new Set(data.jobs.map((j) => j.id));
  expect(ids.size).toBe(tags.length * each);
  for (const tag of tags) for (let i = 0; i < each; i++) expect(ids.has(`${tag}-${i}`)).toBe(true);
}

describe("two processes updating one store", () => {
  test("500 updates each under Bun: none lost", async () => {
    const home = path.join(root, "bun-bun");
    const results = await Promise.all(
      ["a", "b"].map((tag) => run(BUN, [helper("counterWriter.ts"), home, "500", tag])),
    );
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    await expectAllUpdates(home, ["a", "b"], 500);
  }, 120_000);

  test("100 updates each, one process under Deno: none lost", async () => {
    const home = path.join(root, "bun-deno");
    const results = await Promise.all([
      run(BUN, [helper("counterWriter.ts"), home, "100", "bun"]),
      run(DENO, ["run", "-A", helper("counterWriter.ts"), home, "100", "deno"]),
    ]);
    for (const r of results) expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: "done\n" });
    await expectAllUpdates(home, ["bun", "deno"], 100);
  }, 60_000);
});

/** Jobs j0..j(k-1) with counter k: the state after exactly k writes. */
function writesIn(text: string): number {
  const data = JSON.parse(text) as { jobs: { id: string }[]; log_cursor: { offset: number } | null };
  const k = data.log_cursor?.offset ?? 0;
  expect(data.jobs.map((j) => j.id)).toEqual(Array.from({ length: k }, (_, i) => `j${i}`));
  return k;
}

test("SIGKILL at random moments while writing always leaves a whole store", async () => {
  const home = path.join(root, "killed");
  // Hundreds in the slow group (CI); enough in the quick one to catch a regression.
  const trials = SLOW ? 350 : 100;
  let writes = 0;
  let leftLocks = 0;
  let leftTemps = 0;
  for (let trial = 0; trial < trials; trial++) {
    const child = spawn(BUN, [helper("endlessWriter.ts"), home], { stdio: ["ignore", "pipe", "pipe"] });
    const done = finished(child);
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
    // A random moment: the point is where the kill lands, not waiting for anything.
    await new Promise((r) => setTimeout(r, Math.random() * 30));
    child.kill("SIGKILL");
    const end = await done;
    expect(end.signal === "SIGKILL" || end.stderr === "").toBe(true);

    const names = await fs.readdir(home);
    if (names.includes("jobs.lock")) leftLocks++;
    if (names.some((n) => n.endsWith(".tmp"))) leftTemps++;
    let text: string | null = null;
    try {
      text = await fs.readFile(path.join(home, "jobs.json"), "utf8");
    } catch {
      expect(writes).toBe(0); // killed before its first write
    }
    if (text !== null) {
      const k = writesIn(text);
      expect(k).toBeGreaterThanOrEqual(writes);
      writes = k;
    }
    if (names.includes("jobs.json.bak")) {
      const b = writesIn(await fs.readFile(path.join(home, "jobs.json.bak"), "utf8"));
      expect(b).toBeLessThanOrEqual(writes);
    }
  }
  // The kills landed inside updates, and the next opener cleaned up after them.
  expect(writes).toBeGreaterThan(0);
  expect(leftLocks).toBeGreaterThan(0);
  const store = openStore(home, { lockWaitMs: 1000 });
  await store.update((d) => {
    d.last_sync = "now";
  });
  const after = await fs.readdir(home);
  expect(after.filter((n) => n.endsWith(".tmp") || n === "jobs.lock")).toEqual([]);
  expect((await store.read()).log_cursor?.offset).toBe(writes);
  console.log(
    `kill test: ${trials} kills, ${writes} writes, ${leftLocks} left a lock, ${leftTemps} a temp file`,
  );
}, 120_000);
