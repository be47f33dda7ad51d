// extractTarTo: complete files only under final names, existing files respected, unsafe paths refused.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { extractTarTo, packTar, type TarEntry, TarError } from "../../src/core/tar.ts";
import { concat, gnuTar } from "./helpers.ts";

let root: string;
let n = 0;
const fresh = async () => {
  const dir = path.join(root, `d${n++}`);
  await fs.mkdir(dir, { recursive: true });
  return dir;
};
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-tar-extract-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const mtime = new Date("2024-06-07T08:09:10Z");
const walk = async (dir: string): Promise<string[]> =>
  (await fs.readdir(dir, { recursive: true })).map(String).sort();

test("GNU tar's output extracted: files, modes, mtimes, folders, links", async () => {
  const src = await fresh();
  await fs.mkdir(path.join(src, "job/sub"), { recursive: true });
  await fs.writeFile(path.join(src, "job/OUTCAR"), "energy -1.0\n");
  await fs.chmod(path.join(src, "job/OUTCAR"), 0o600);
  await fs.utimes(path.join(src, "job/OUTCAR"), mtime, mtime);
  await fs.writeFile(path.join(src, "job/sub/run.sh"), "#!/bin/sh\n", { mode: 0o755 });
  await fs.link(path.join(src, "job/OUTCAR"), path.join(src, "job/OUTCAR.hard"));
  await fs.symlink("OUTCAR", path.join(src, "job/latest"));
  const tar = await gnuTar(["-c", "-f", "-", "-C", src, "job"]);
  const dest = await fresh();
  const r = await extractTarTo([tar.stdout], dest);
  expect(r.written.sort()).toEqual([
    "job",
    "job/OUTCAR",
    "job/OUTCAR.hard",
    "job/latest",
    "job/sub",
    "job/sub/run.sh",
  ]);
  expect(await fs.readFile(path.join(dest, "job/OUTCAR"), "utf8")).toBe("energy -1.0\n");
  const st = await fs.stat(path.join(dest, "job/OUTCAR"));
  expect(st.mode & 0o777).toBe(0o600);
  expect(st.mtimeMs).toBe(mtime.getTime());
  expect((await fs.stat(path.join(dest, "job/sub/run.sh"))).mode & 0o777).toBe(0o755);
  expect(st.nlink).toBe(2);
  expect(await fs.readlink(path.join(dest, "job/latest"))).toBe("OUTCAR");
  expect((await walk(dest)).some((p) => p.endsWith(".part"))).toBe(false);
});

test("a hard link to a file already in destDir", async () => {
  const dest = await fresh();
  await fs.mkdir(path.join(dest, "store"));
  await fs.writeFile(path.join(dest, "store/abc"), "potcar");
  await extractTarTo(packTar([{ type: "link", path: "jobs/x/POTCAR", linkname: "store/abc", mtime }]), dest);
  expect((await fs.stat(path.join(dest, "jobs/x/POTCAR"))).ino).toBe(
    (await fs.stat(path.join(dest, "store/abc"))).ino,
  );
});

test("filter and overwrite decide what is written; refused files keep their content", async () => {
  const dest = await fresh();
  await fs.writeFile(path.join(dest, "INCAR"), "mine");
  await fs.writeFile(path.join(dest, "OUTCAR"), "old");
  const entries: TarEntry[] = [
    { type: "file", path: "INCAR", body: "theirs", mtime },
    { type: "file", path: "OUTCAR", body: "new", mtime },
    { type: "file", path: "WAVECAR", body: "huge", mtime },
    { type: "file", path: "CONTCAR", body: "pos", mtime },
  ];
  const asked: string[] = [];
  const r = await extractTarTo(packTar(entries), dest, {
    filter: (h) => h.path !== "WAVECAR",
    overwrite: (p) => {
      asked.push(p);
      return p !== "INCAR";
    },
  });
  expect(asked).toEqual(["INCAR", "OUTCAR"]);
  expect(r).toEqual({ written: ["OUTCAR", "CONTCAR"], skipped: ["INCAR", "WAVECAR"] });
  expect(await fs.readFile(path.join(dest, "INCAR"), "utf8")).toBe("mine");
  expect(await fs.readFile(path.join(dest, "OUTCAR"), "utf8")).toBe("new");
  expect(await walk(dest)).toEqual(["CONTCAR", "INCAR", "OUTCAR"]);
});

test("a truncated stream throws, leaves no partial file under a final name and no temp file", async () => {
  const big = Buffer.alloc(100_000, "b");
  const buf = await concat(
    packTar([
      { type: "file", path: "first", body: "complete", mtime },
      { type: "file", path: "out/big", body: big, mtime },
    ]),
  );
  for (const cut of [1024 + 512 + 10, 1024 + 512 + 50_000, 1024 + 512 + 99_999]) {
    const dest = await fresh();
    await fs.mkdir(path.join(dest, "out"));
    await fs.writeFile(path.join(dest, "out/big"), "previous download");
    // in small chunks, so part of the body has been written when the stream ends
    async function* cutStream() {
      for (let i = 0; i < cut; i += 4096) yield buf.subarray(i, Math.min(cut, i + 4096));
    }
    const err = await extractTarTo(cutStream(), dest).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TarError);
    expect((err as TarError).kind).toBe("truncated");
    expect(await fs.readFile(path.join(dest, "out/big"), "utf8")).toBe("previous download");
    expect(await fs.readFile(path.join(dest, "first"), "utf8")).toBe("complete");
    expect(await walk(dest)).toEqual(["first", "out", "out/big"]);
  }
});

test("absolute paths, '..' and escaping links are refused and nothing lands outside", async () => {
  const base = await fresh();
  const outside = path.join(base, "outside");
  const dest = path.join(base, "dest");
  await fs.mkdir(path.join(base, "work/sub"), { recursive: true });
  await fs.writeFile(path.join(base, "work/x"), "x");
  await fs.mkdir(outside);
  const archives: Buffer[] = [
    (await gnuTar(["-c", "-P", "-f", "-", path.join(base, "work/x")])).stdout, // absolute
    (await gnuTar(["-c", "-P", "-f", "-", "../x"], undefined, path.join(base, "work/sub"))).stdout, // ..
  ];
  // a symlink to a folder outside, then a file written through it
  await fs.mkdir(path.join(base, "evil"));
  await fs.symlink(outside, path.join(base, "evil/link"));
  await fs.mkdir(path.join(base, "real/link"), { recursive: true });
  await fs.writeFile(path.join(base, "real/link/pwn"), "pwned");
  const a = path.join(base, "through.tar");
  await gnuTar(["-c", "-f", a, "-C", path.join(base, "evil"), "link"]);
  await gnuTar(["-r", "-f", a, "-C", path.join(base, "real"), "link/pwn"]);
  archives.push(await fs.readFile(a));
  for (const buf of archives) {
    const err = await extractTarTo([buf], dest).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TarError);
    expect((err as TarError).kind).toBe("unsafe");
    await fs.rm(dest, { recursive: true, force: true });
  }
  expect(await fs.readdir(outside)).toEqual([]);
  expect(await fs.readFile(path.join(base, "work/x"), "utf8")).toBe("x");
});

test("a symlink pointing into the folder is fine; one pointing out is refused", async () => {
  const dest = await fresh();
  await extractTarTo(packTar([{ type: "symlink", path: "a/b", linkname: "../c" }]), dest);
  expect(await fs.readlink(path.join(dest, "a/b"))).toBe("../c");
  await expect(
    extractTarTo(packTar([{ type: "symlink", path: "a/d", linkname: "../../etc" }]), dest),
  ).rejects.toThrow("leads outside");
});

test("a file is never written through a symlink already in destDir", async () => {
  const base = await fresh();
  const outside = path.join(base, "outside");
  const dest = path.join(base, "dest");
  await fs.mkdir(outside);
  await fs.mkdir(dest);
  await fs.symlink(outside, path.join(dest, "results"));
  const err = await extractTarTo(packTar([{ type: "file", path: "results/OUTCAR", body: "x" }]), dest).then(
    () => null,
    (e: unknown) => e,
  );
  expect((err as TarError).kind).toBe("unsafe");
  expect((err as TarError).message).toContain("through the symlink");
  expect(await fs.readdir(outside)).toEqual([]);
});
