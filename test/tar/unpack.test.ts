// Unpacking: any chunk boundaries, header encodings, and clear errors on cut or corrupt streams.
import { describe, expect, test } from "bun:test";
import { packTar, type TarEntry, TarError, unpackTar } from "../../src/core/tar.ts";
import { chunksOf, collect, concat } from "./helpers.ts";

const mtime = new Date("2024-01-02T03:04:05Z");
const small: TarEntry[] = [
  { type: "directory", path: "d", mtime },
  { type: "file", path: "d/a.txt", body: "hello\n", mode: 0o640, mtime },
  { type: "file", path: `d/${"n".repeat(150)}`, body: "x".repeat(700), mtime }, // pax header
  { type: "symlink", path: "d/s", linkname: "a.txt", mtime },
  { type: "link", path: "d/h", linkname: "d/a.txt", mtime },
];
const packed = () => concat(packTar(small));

test("our archive is whole records of zero-padded blocks and unpacks to what was packed", async () => {
  const buf = await packed();
  expect(buf.length % 10240).toBe(0);
  const items = await collect([buf]);
  expect(items.map((i) => [i.header.path, i.header.type, i.body])).toEqual([
    ["d", "directory", ""],
    ["d/a.txt", "file", "hello\n"],
    [`d/${"n".repeat(150)}`, "file", "x".repeat(700)],
    ["d/s", "symlink", ""],
    ["d/h", "link", ""],
  ]);
  expect(items[1]!.header).toMatchObject({ mode: 0o640, size: 6, mtime });
  expect(items[3]!.header.linkname).toBe("a.txt");
  expect(items[4]!.header.linkname).toBe("d/a.txt");
});

test("a name that fits the ustar prefix split uses it, with no pax header", async () => {
  const name = `${"a".repeat(90)}/${"b".repeat(90)}`;
  const buf = await concat(packTar([{ type: "file", path: name, body: "z", mtime }]));
  expect(String.fromCharCode(buf[156]!)).toBe("0");
  expect(buf.subarray(345, 345 + 90).toString()).toBe("a".repeat(90));
  expect((await collect([buf]))[0]!.header.path).toBe(name);
});

test("every split point, one-byte chunks and three-way splits give the same entries", async () => {
  const buf = await packed();
  const expected = JSON.stringify(await collect([buf]));
  for (let i = 0; i <= buf.length; i++) {
    const got = JSON.stringify(await collect(chunksOf(buf, [i])));
    if (got !== expected) throw new Error(`split at ${i} differs`);
  }
  expect(JSON.stringify(await collect(chunksOf(buf, new Array(buf.length).fill(1))))).toBe(expected);
  for (let i = 1; i < 3000; i += 37) {
    expect(JSON.stringify(await collect(chunksOf(buf, [i, 511, 1, 513])))).toBe(expected);
  }
});

test("bodies the consumer does not read are skipped; a partly read body too", async () => {
  const buf = await packed();
  const seen: string[] = [];
  for await (const { header, body } of unpackTar([buf])) {
    seen.push(header.path);
    if (header.path === "d/a.txt") for await (const _ of body) break;
  }
  expect(seen).toEqual(["d", "d/a.txt", `d/${"n".repeat(150)}`, "d/s", "d/h"]);
});

describe("errors", () => {
  const kindOf = async (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) => {
    try {
      await collect(source);
    } catch (e) {
      expect(e).toBeInstanceOf(TarError);
      return { kind: (e as TarError).kind, message: (e as TarError).message };
    }
    return null;
  };

  test("a stream cut anywhere before the end-of-archive block is 'truncated'", async () => {
    const buf = await packed();
    const dataEnd = 5120; // 10 blocks of headers and bodies, then the end-of-archive blocks
    expect(buf.subarray(dataEnd - 512, dataEnd).some((b) => b !== 0)).toBe(true);
    expect(buf.subarray(dataEnd).every((b) => b === 0)).toBe(true);
    for (let cut = 0; cut <= dataEnd; cut += 64) {
      const r = await kindOf([buf.subarray(0, cut)]);
      expect(r?.kind).toBe("truncated");
      expect(r?.message).toContain("ended early");
    }
    expect(await kindOf([buf.subarray(0, dataEnd + 512)])).toBeNull(); // one zero block is enough
  });

  test("a bad checksum or garbage is 'corrupt'", async () => {
    const buf = Buffer.from(await packed());
    buf[600] = buf[600]! ^ 0xff; // inside the second header's name
    expect((await kindOf([buf]))?.kind).toBe("corrupt");
    expect((await kindOf([Buffer.alloc(1024, "garbage!")]))?.kind).toBe("corrupt");
  });

  test("packing refuses unsafe paths and bodies that do not match their size", async () => {
    for (const p of ["/etc/passwd", "../x", "a/../../b", "", "."]) {
      const r = concat(packTar([{ type: "file", path: p, body: "x" }]));
      await expect(r).rejects.toThrow(TarError);
    }
    const short = concat(
      packTar([
        {
          type: "file",
          path: "f",
          size: 10,
          body: async function* () {
            yield Buffer.from("abc");
          },
        },
      ]),
    );
    await expect(short).rejects.toThrow("ended at 3 of 10 bytes");
    const long = concat(packTar([{ type: "file", path: "f", size: 2, body: () => [Buffer.from("abc")] }]));
    await expect(long).rejects.toThrow("longer than its size");
  });
});
