// Fetching results in one request whatever the number of jobs: the workstation says which files it
// has (name, size, sha256); the cluster answers with a manifest and one gzipped tar of the rest.
// Each file lands under its final name only once whole, and never over an input of the job.
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { shellQuote } from "../core/layout.ts";
import { matchesAny } from "../core/resultFiles.ts";
import { unpackTar, writeFileEntryAtomically } from "../core/tar.ts";
import { RemoteError } from "../errors.ts";
import { isOutputName } from "../files/scanJobFolder.ts";
import { collectEvery } from "../runtime/collectGarbage.ts";
import type { RemoteShell } from "../ssh/session.ts";
import downloadScript from "./kit/download.sh" with { type: "text" };

export interface DownloadTarget {
  id: string;
  /** Local folder the job's results go to. */
  dest: string;
  /** File-name patterns to fetch. */
  globs: readonly string[];
  /**
   * The job's own folder: only outputs (and new names) may be written there, so an input such
   * as POSCAR is never replaced by what came back.
   */
  guardInputs: boolean;
  /** Names that came home in an earlier download: results, not inputs, whatever their names. */
  earlierResults: readonly string[];
}

/** A file of the job's own folder that a download must leave alone. */
function isGuarded(t: DownloadTarget, name: string): boolean {
  return t.guardInputs && !isOutputName(name) && !t.earlierResults.includes(name);
}

interface ResultFile {
  name: string;
  size: number;
}

export interface JobDownload {
  id: string;
  dest: string;
  /** Fetched in this download. */
  written: ResultFile[];
  /** Already home with the same sha256: not sent again. */
  same: ResultFile[];
  /** Files on the cluster that were not written, with why. */
  skipped: { name: string; why: string }[];
  /** The work folder was not on the cluster. */
  missing: boolean;
}

export interface DownloadProgress {
  bytes: number;
  total: number;
}

interface LocalFile {
  name: string;
  /** -1: keep it whatever the cluster has (an input, a symlink). */
  size: number;
  sha256: string;
  why?: string;
}

/** One reused buffer, not a stream: hashing a 500 MB vasprun.xml must not churn memory. */
async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const handle = await fs.open(file, "r");
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

/** A temp file of writeFileEntryAtomically: `.<name>.<pid>.<12 hex>.part`. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.part$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** What the workstation has of a job's results already, for the cluster to skip. Temp files of
 * a download that was killed (its process is gone) are removed on the way. */
async function localFiles(t: DownloadTarget): Promise<LocalFile[]> {
  const entries = await fs.readdir(t.dest, { withFileTypes: true }).catch(() => []);
  const out: LocalFile[] = [];
  for (const e of entries) {
    const temp = TEMP_NAME.exec(e.name);
    if (temp && e.isFile() && Number(temp[1]) !== process.pid && !alive(Number(temp[1]))) {
      await fs.rm(path.join(t.dest, e.name), { force: true });
      continue;
    }
    if (/[\t\n]/.test(e.name) || !matchesAny(e.name, t.globs)) continue;
    const full = path.join(t.dest, e.name);
    if (e.isSymbolicLink()) out.push({ name: e.name, size: -1, sha256: "-", why: "a symlink has that name" });
    else if (!e.isFile()) out.push({ name: e.name, size: -1, sha256: "-", why: "a folder has that name" });
    else if (isGuarded(t, e.name))
      out.push({ name: e.name, size: -1, sha256: "-", why: "an input of the job has that name" });
    else {
      const st = await fs.stat(full);
      out.push({ name: e.name, size: st.size, sha256: await sha256File(full) });
    }
  }
  return out;
}

export function downloadInput(
  workRootSh: string,
  targets: readonly DownloadTarget[],
  have: ReadonlyMap<string, readonly LocalFile[]>,
): Buffer {
  const spec = targets.map((t) => [t.id, ...t.globs].join("\t")).join("\n");
  const haveLines = [...have].flatMap(([id, files]) =>
    files.map((f) => [id, f.name, String(f.size), f.sha256].join("\t")),
  );
  const header = [`W=${workRootSh}`, `SPEC=${shellQuote(spec)}`, `HAVE=${shellQuote(haveLines.join("\n"))}`];
  return Buffer.from(`${header.join("\n")}\n${downloadScript}\nmain; exit $?\n`);
}

interface ManifestEntry {
  id: string;
  name: string;
  size: number;
  verdict: "send" | "same" | "kept" | "missing";
}

export function parseManifest(text: string): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  for (const line of text.split("\n")) {
    const [id, name, size, verdict] = line.split("\t");
    if (!id || !verdict || !["send", "same", "kept", "missing"].includes(verdict)) continue;
    out.push({ id, name: name ?? "", size: Number(size) || 0, verdict: verdict as ManifestEntry["verdict"] });
  }
  return out;
}

/** Takes the "@@manifest N\n<N bytes>" head off the reply and passes the tar stream after it on. */
async function* afterManifest(
  source: AsyncIterable<Buffer>,
  onManifest: (text: string) => void,
): AsyncGenerator<Buffer> {
  let head: Buffer | null = Buffer.alloc(0);
  let need = -1;
  for await (const chunk of source) {
    if (head === null) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (need < 0) {
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > 200) throw new RemoteError("unexpected reply from the cluster to a download");
        continue;
      }
      const m = /^@@manifest (\d+)$/.exec(head.subarray(0, nl).toString("utf8"));
      if (!m)
        throw new RemoteError(`unexpected reply from the cluster to a download: ${head.subarray(0, nl)}`);
      need = Number(m[1]);
      head = head.subarray(nl + 1);
    }
    if (head.length < need) continue;
    onManifest(head.subarray(0, need).toString("utf8"));
    const rest = head.subarray(need);
    head = null;
    if (rest.length > 0) yield rest;
  }
}

export async function downloadResults(
  session: RemoteShell,
  workRootSh: string,
  targets: readonly DownloadTarget[],
  opts: { onProgress?: (p: DownloadProgress) => void; timeoutMs?: number } = {},
): Promise<JobDownload[]> {
  if (targets.length === 0) return [];
  const byId = new Map<string, JobDownload>();
  const targetOf = new Map(targets.map((t) => [t.id, t]));
  const have = new Map<string, LocalFile[]>();
  for (const t of targets) {
    byId.set(t.id, { id: t.id, dest: t.dest, written: [], same: [], skipped: [], missing: false });
    have.set(t.id, await localFiles(t));
  }
  const stream = session.execStream("bash -s", {
    stdin: downloadInput(workRootSh, targets, have),
    timeoutMs: opts.timeoutMs ?? 3_600_000,
  });
  let total = 0;
  let bytes = 0;
  const collect = collectEvery(4 * 1024 * 1024);
  let manifest: ManifestEntry[] | null = null;
  const gunzip = createGunzip();
  // pipeline, not pipe: a connection cut must fail the reader below, not leave it waiting.
  pipeline(
    Readable.from(
      afterManifest(stream.stdout, (text) => {
        manifest = parseManifest(text);
        total = manifest.filter((e) => e.verdict === "send").reduce((n, e) => n + e.size, 0);
        opts.onProgress?.({ bytes: 0, total });
      }),
    ),
    gunzip,
    () => {},
  );
  // Settles with the command; observed here so a failure while we read is not unhandled.
  const done = stream.done.then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  try {
    for await (const { header, body } of unpackTar(gunzip)) {
      const parts = header.path.split("/");
      const [id, name] = parts;
      const target = id ? targetOf.get(id) : undefined;
      const job = id ? byId.get(id) : undefined;
      if (header.type !== "file" || parts.length !== 2 || !target || !job || !name || name.startsWith(".")) {
        continue; // not something we asked for: skipped (its body is drained by unpackTar)
      }
      const final = path.join(target.dest, name);
      // Checked again here: the folder may have changed since we listed it.
      const existing = await fs.lstat(final).catch(() => null);
      if (existing?.isSymbolicLink() || (existing && !existing.isFile())) {
        job.skipped.push({ name, why: "something that is not a file has that name" });
        continue;
      }
      if (existing && isGuarded(target, name)) {
        job.skipped.push({ name, why: "an input of the job has that name" });
        continue;
      }
      await fs.mkdir(target.dest, { recursive: true, mode: 0o755 });
      await writeFileEntryAtomically(
        final,
        header,
        counted(body, (n) => {
          bytes += n;
          collect(n);
          opts.onProgress?.({ bytes, total });
        }),
      );
      job.written.push({ name, size: header.size });
    }
  } catch (e) {
    const end = await done;
    if (!end.ok) throw end.e;
    const stderr = end.r.stderr.toString().trim();
    throw new RemoteError(
      `download failed: ${e instanceof Error ? e.message : String(e)}${stderr ? ` (${stderr})` : ""}`,
      { hint: "Files that arrived whole were kept; run the same command again for the rest." },
    );
  }
  const end = await done;
  if (!end.ok) throw end.e;
  const stderr = end.r.stderr.toString();
  // GNU tar exits 1 when a file changed while it was read (a job still running): what came is whole.
  if ((end.r.code !== 0 && end.r.code !== 1) || manifest === null) {
    throw new RemoteError(`download failed on the cluster: ${stderr.trim() || `exit ${end.r.code}`}`);
  }
  for (const e of manifest as ManifestEntry[]) {
    const job = byId.get(e.id);
    if (!job) continue;
    if (e.verdict === "missing") job.missing = true;
    else if (e.verdict === "same") job.same.push({ name: e.name, size: e.size });
    else if (e.verdict === "kept") {
      const why = have.get(e.id)?.find((f) => f.name === e.name)?.why ?? "kept the local file";
      job.skipped.push({ name: e.name, why });
    }
  }
  return targets.map((t) => byId.get(t.id)!);
}

async function* counted(body: AsyncIterable<Buffer>, add: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    add(chunk.length);
    yield chunk;
  }
}
