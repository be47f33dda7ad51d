// The durable lowdb adapter: atomic writes, the .bak copy, corrupt files left alone, stray temps.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { StoreError } from "../../src/errors.ts";
import { DurableJsonFile, isProcessAlive, removeStrayTempFiles } from "../../src/store/durableFile.ts";
import { caught, deadPid } from "./helpers/spawn.ts";

let root: string;
let n = 0;
const fresh = async () => {
  const dir = path.join(root, `d${n++}`);
  await fs.mkdir(dir);
  return dir;
};
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-durable-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test("a .bak that is already a link to the file (a writer killed between its renames): no temp left", async () => {
  const dir = await fresh();
  const file = path.join(dir, "x.json");
  const a = new DurableJsonFile<{ n: number }>(file);
  await a.write({ n: 1 });
  await fs.link(file, `${file}.bak`);
  await a.write({ n: 2 });
  expect((await fs.readdir(dir)).sort()).toEqual(["x.json", "x.json.bak"]);
  expect(JSON.parse(await fs.readFile(`${file}.bak`, "utf8"))).toEqual({ n: 1 });
  expect(await a.read()).toEqual({ n: 2 });
});

test("a missing file reads as null", async () => {
  expect(await new DurableJsonFile(path.join(await fresh(), "x.json")).read()).toBeNull();
});

test("write then read round-trips, mode 0600, the previous version kept as .bak, no temp left", async () => {
  const dir = await fresh();
  const file = path.join(dir, "x.json");
  const a = new DurableJsonFile<{ n: number }>(file);
  await a.write({ n: 1 });
  expect(await fs.readdir(dir)).toEqual(["x.json"]);
  await a.write({ n: 2 });
  await a.write({ n: 3 });
  expect(await a.read()).toEqual({ n: 3 });
  expect(JSON.parse(await fs.readFile(`${file}.bak`, "utf8"))).toEqual({ n: 2 });
  expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  expect((await fs.stat(`${file}.bak`)).mode & 0o777).toBe(0o600);
  expect((await fs.readdir(dir)).sort()).toEqual(["x.json", "x.json.bak"]);
});

test("a corrupt file is refused with a StoreError naming it, and left byte for byte", async () => {
  const file = path.join(await fresh(), "x.json");
  const bytes = Buffer.from('{"version": 1, "jobs": [\n  {"id": "a"\x00\xff');
  await fs.writeFile(file, bytes);
  const err = await caught(new DurableJsonFile(file).read());
  expect(err).toBeInstanceOf(StoreError);
  expect(err.message).toContain(file);
  expect(err.message).toContain("corrupt");
  expect(err.hint).toContain(".bak");
  expect(Buffer.compare(await fs.readFile(file), bytes)).toBe(0);
});

test("revive runs on read and its error passes through", async () => {
  const file = path.join(await fresh(), "x.json");
  await fs.writeFile(file, '{"n": 5}');
  const a = new DurableJsonFile<number>(file, { revive: (raw) => (raw as { n: number }).n * 2 });
  expect(await a.read()).toBe(10);
  const b = new DurableJsonFile<number>(file, {
    revive: () => {
      throw new StoreError("nope");
    },
  });
  expect(b.read()).rejects.toThrow("nope");
});

test("stray temp files of dead processes are removed; those of live ones and other names stay", async () => {
  const dir = await fresh();
  const dead = await deadPid();
  expect(isProcessAlive(dead)).toBe(false);
  const names = [
    `.jobs.json.${dead}.abc123.tmp`,
    `.jobs.json.${process.pid}.abc123.tmp`,
    `.other.json.${dead}.abc123.tmp`,
    "jobs.json",
  ];
  for (const name of names) await fs.writeFile(path.join(dir, name), "x");
  const removed = await removeStrayTempFiles(dir, ["jobs.json"]);
  expect(removed).toEqual([path.join(dir, names[0]!)]);
  expect((await fs.readdir(dir)).sort()).toEqual(names.slice(1).sort());
});
