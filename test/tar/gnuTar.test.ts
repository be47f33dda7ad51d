// Round trips through the real GNU tar on this machine, both ways.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { packTar, type TarEntry } from "../../src/core/tar.ts";
import { collect, gnuTar } from "./helpers.ts";

let root: string;
let n = 0;
const fresh = async () => {
  const dir = path.join(root, `d${n++}`);
  await fs.mkdir(dir, { recursive: true });
  return dir;
};
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "chasqui-tar-gnu-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const mtime = new Date("2025-03-04T05:06:07Z");
const prefixName = `${"p".repeat(60)}/${"q".repeat(60)}/file-${"r".repeat(30)}.txt`; // >100: ustar prefix
const paxName = `${"deep/".repeat(40)}very-long-file-name.txt`; // 200+ bytes: pax path
const longSegment = `dir/${"s".repeat(140)}`; // one segment over 100 bytes: no ustar split
const unicodeName = "résultats/ÉNERGIE-α.dat";

function bigBody(size: number, chunk: number): () => AsyncIterable<Uint8Array> {
  return async function* () {
    for (let off = 0; off < size; off += chunk) {
      const c = Buffer.alloc(Math.min(chunk, size - off));
      for (let i = 0; i < c.length; i++) c[i] = (off + i) % 251;
      yield c;
    }
  };
}

describe("our archive, extracted by GNU tar", () => {
  test("files with modes and mtimes, folders, long and non-ASCII names, symlinks, streamed bodies", async () => {
    const dest = await fresh();
    const size = 2 * 1024 * 1024 + 123;
    const entries: TarEntry[] = [
      { type: "directory", path: "job1", mode: 0o750, mtime },
      { type: "file", path: "job1/INCAR", body: "ENCUT = 520\n", mode: 0o644, mtime },
      { type: "file", path: "job1/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755, mtime },
      { type: "file", path: "job1/secret", body: Buffer.from([0, 1, 2, 255]), mode: 0o600, mtime },
      { type: "file", path: "job1/empty", body: "", mtime },
      { type: "file", path: "job1/POTCAR", size, body: bigBody(size, 65_536), mtime },
      { type: "file", path: prefixName, body: "prefix", mtime },
      { type: "file", path: paxName, body: "pax", mtime },
      { type: "file", path: longSegment, body: "segment", mtime },
      { type: "file", path: unicodeName, body: "unicode", mtime },
      { type: "symlink", path: "job1/link-to-incar", linkname: "INCAR", mtime },
      { type: "symlink", path: "job1/long-symlink", linkname: `../${"t".repeat(150)}`, mtime },
    ];
    const r = await gnuTar(["-x", "-f", "-", "-C", dest], packTar(entries));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });

    const st = (p: string) => fs.lstat(path.join(dest, p));
    const read = (p: string) => fs.readFile(path.join(dest, p), "utf8");
    expect((await st("job1")).mode & 0o777).toBe(0o750);
    expect(await read("job1/INCAR")).toBe("ENCUT = 520\n");
    expect((await st("job1/INCAR")).mode & 0o777).toBe(0o644);
    expect((await st("job1/run.sh")).mode & 0o777).toBe(0o755);
    expect((await st("job1/secret")).mode & 0o777).toBe(0o600);
    expect([...(await fs.readFile(path.join(dest, "job1/secret")))]).toEqual([0, 1, 2, 255]);
    expect((await st("job1/empty")).size).toBe(0);
    expect(Math.floor((await st("job1/INCAR")).mtimeMs / 1000)).toBe(mtime.getTime() / 1000);
    const potcar = await fs.readFile(path.join(dest, "job1/POTCAR"));
    expect(potcar.length).toBe(size);
    expect(potcar[size - 1]).toBe((size - 1) % 251);
    expect(await read(prefixName)).toBe("prefix");
    expect(await read(paxName)).toBe("pax");
    expect(await read(longSegment)).toBe("segment");
    expect(await read(unicodeName)).toBe("unicode");
    expect(await fs.readlink(path.join(dest, "job1/link-to-incar"))).toBe("INCAR");
    expect(await fs.readlink(path.join(dest, "job1/long-symlink"))).toBe(`../${"t".repeat(150)}`);
  });

  test("hard links to a file already on disk, not in the archive (content-addressed inputs)", async () => {
    const dest = await fresh();
    const hash = createHash("sha256").update("POTCAR PAW_PBE Si").digest("hex");
    await fs.mkdir(path.join(dest, "store"));
    await fs.writeFile(path.join(dest, "store", hash), "POTCAR PAW_PBE Si");
    const entries: TarEntry[] = [
      { type: "directory", path: "jobs/a", mtime },
      { type: "link", path: "jobs/a/POTCAR", linkname: `store/${hash}`, mtime },
      { type: "link", path: `jobs/${"b".repeat(120)}/POTCAR`, linkname: `store/${hash}`, mtime },
    ];
    await fs.mkdir(path.join(dest, "jobs", "b".repeat(120)), { recursive: true });
    const r = await gnuTar(["-x", "-f", "-", "-C", dest], packTar(entries));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const ino = (await fs.stat(path.join(dest, "store", hash))).ino;
    for (const p of ["jobs/a/POTCAR", `jobs/${"b".repeat(120)}/POTCAR`]) {
      expect((await fs.stat(path.join(dest, p))).ino).toBe(ino);
    }
    expect((await fs.stat(path.join(dest, "store", hash))).nlink).toBe(3);
  });

  test("a hard link target over 100 bytes (pax linkpath)", async () => {
    const dest = await fresh();
    const target = `store/${"h".repeat(64)}/${"x".repeat(64)}`;
    await fs.mkdir(path.dirname(path.join(dest, target)), { recursive: true });
    await fs.writeFile(path.join(dest, target), "data");
    const r = await gnuTar(
      ["-x", "-f", "-", "-C", dest],
      packTar([{ type: "link", path: "jobs/a/POTCAR", linkname: target, mtime }]),
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect((await fs.stat(path.join(dest, "jobs/a/POTCAR"))).ino).toBe(
      (await fs.stat(path.join(dest, target))).ino,
    );
  });

  test("GNU tar lists exactly our entries (tar -t)", async () => {
    const entries: TarEntry[] = [
      { type: "directory", path: "a", mtime },
      { type: "file", path: "a/x", body: "1", mtime },
      { type: "file", path: paxName, body: "2", mtime },
    ];
    const r = await gnuTar(["-t", "-f", "-"], packTar(entries));
    expect(r.code).toBe(0);
    expect(r.stdout.toString().trim().split("\n")).toEqual(["a/", "a/x", paxName]);
  });
});

describe("GNU tar's archive, unpacked by us", () => {
  let src: string;
  const w = async (p: string, body: string | Buffer, mode = 0o644) => {
    await fs.mkdir(path.dirname(path.join(src, p)), { recursive: true });
    await fs.writeFile(path.join(src, p), body);
    await fs.chmod(path.join(src, p), mode);
    await fs.utimes(path.join(src, p), mtime, mtime);
  };
  beforeAll(async () => {
    src = await fresh();
    await w("tree/INCAR", "ENCUT = 520\n", 0o640);
    await w("tree/run.sh", "#!/bin/sh\n", 0o755);
    await w("tree/empty", "");
    await w(`tree/${paxName}`, "long");
    await w(`tree/${longSegment}`, "segment");
    await w(`tree/${unicodeName}`, "unicode");
    await w("tree/big", Buffer.alloc(70_000, 7));
    await w("tree/h/one", "same inode");
    await fs.link(path.join(src, "tree/h/one"), path.join(src, "tree/h/two"));
    await fs.symlink("INCAR", path.join(src, "tree/link"));
    await fs.symlink(`${"l".repeat(130)}`, path.join(src, "tree/longlink"));
    await w("u/INCAR", "plain ustar");
    await w(`u/${prefixName}`, "prefix field");
  });

  const listed = async (args: string[]) =>
    (await gnuTar(["-t", ...args])).stdout
      .toString()
      .trim()
      .split("\n")
      .map((l) => l.replace(/\/$/, ""));

  for (const format of ["gnu", "pax", "posix"] as const) {
    test(`format ${format}: names, bodies, modes, mtimes, links`, async () => {
      const r = await gnuTar([`--format=${format}`, "-c", "-f", "-", "-C", src, "tree"]);
      expect(r.code).toBe(0);
      const items = await collect([r.stdout]);
      const archive = path.join(await fresh(), "a.tar");
      await fs.writeFile(archive, r.stdout);
      expect(items.map((i) => i.header.path)).toEqual(await listed(["-f", archive]));
      const by = new Map(items.map((i) => [i.header.path, i]));
      expect(by.get("tree")?.header.type).toBe("directory");
      expect(by.get("tree/INCAR")).toMatchObject({
        body: "ENCUT = 520\n",
        header: { type: "file", mode: 0o640 },
      });
      expect(by.get("tree/INCAR")?.header.mtime.getTime()).toBe(mtime.getTime());
      expect(by.get("tree/run.sh")?.header.mode).toBe(0o755);
      expect(by.get("tree/empty")).toMatchObject({ body: "", header: { size: 0 } });
      expect(by.get(`tree/${paxName}`)?.body).toBe("long");
      expect(by.get(`tree/${longSegment}`)?.body).toBe("segment");
      expect(by.get(`tree/${unicodeName}`)?.body).toBe("unicode");
      expect(by.get("tree/big")?.body).toBe("\x07".repeat(70_000));
      expect(by.get("tree/link")?.header).toMatchObject({ type: "symlink", linkname: "INCAR" });
      expect(by.get("tree/longlink")?.header).toMatchObject({ type: "symlink", linkname: "l".repeat(130) });
      const pair = [by.get("tree/h/one")!, by.get("tree/h/two")!].sort((x, y) =>
        x.header.type.localeCompare(y.header.type),
      );
      expect(pair.map((i) => i.header.type)).toEqual(["file", "link"]);
      expect(pair[0]!.body).toBe("same inode");
      expect(pair[1]!.header.linkname).toBe(pair[0]!.header.path);
    });
  }

  test("format ustar: a long name in the prefix field", async () => {
    const r = await gnuTar(["--format=ustar", "-c", "-f", "-", "-C", src, "u"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const by = new Map((await collect([r.stdout])).map((i) => [i.header.path, i]));
    expect(by.get("u/INCAR")?.body).toBe("plain ustar");
    expect(by.get(`u/${prefixName}`)?.body).toBe("prefix field");
  });
});
