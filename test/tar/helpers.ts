// Test helpers: feed a stream to GNU tar, read GNU tar's output, collect unpacked entries.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { type TarHeader, unpackTar } from "../../src/core/tar.ts";

export interface TarRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs GNU tar with `args`, writing `input` (if any) to its stdin with backpressure. */
export async function gnuTar(
  args: string[],
  input?: AsyncIterable<Uint8Array>,
  cwd?: string,
): Promise<TarRun> {
  const child = spawn("tar", args, { stdio: ["pipe", "pipe", "pipe"], ...(cwd ? { cwd } : {}) });
  const out: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const closed = once(child, "close");
  if (input) {
    for await (const chunk of input) {
      if (!child.stdin.write(chunk)) await once(child.stdin, "drain");
    }
  }
  child.stdin.end();
  const [code] = (await closed) as [number | null];
  return { code, stdout: Buffer.concat(out), stderr };
}

export async function* chunksOf(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let pos = 0;
  for (const s of sizes) {
    yield buf.subarray(pos, pos + s);
    pos += s;
  }
  if (pos < buf.length) yield buf.subarray(pos);
}

export async function concat(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

export interface Collected {
  header: TarHeader;
  body: string;
}

export async function collect(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const { header, body } of unpackTar(source)) {
    out.push({ header, body: (await concat(body)).toString("latin1") });
  }
  return out;
}
