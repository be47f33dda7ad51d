// Moving job inputs to the cluster in two requests whatever the number of jobs: one asks which
// file bodies the cluster's content store lacks, one tar stream carries only those plus hard
// links for every job file (so a POTCAR shared by hundreds of jobs travels once).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { JOB_LIB_FILE, JOB_LIB_TEXT } from "../core/jobLib.ts";
import { packTar, type TarEntry } from "../core/tar.ts";
import { RemoteError, remoteSystemProblem } from "../errors.ts";
import type { ExecOptions, RemoteShell } from "../ssh/session.ts";
import structureScript from "./kit/structure.sh" with { type: "text" };
import uploadScript from "./kit/upload.sh" with { type: "text" };

interface UploadFile {
  /** File name inside the job's work folder. */
  name: string;
  /** Where it is on the workstation. */
  path: string;
}

export interface UploadJob {
  id: string;
  files: UploadFile[];
  /** Rendered batch script, put into waiting/ once the inputs are in place. */
  script?: string;
  /** retry --restart: POSCAR becomes the previous run's CONTCAR when that is a valid structure. */
  restart?: boolean;
}

export interface UploadPaths {
  /** chasqui's remote folder as a bash word, e.g. `"$HOME"/chasqui_remote`. */
  remoteDirSh: string;
  /** The work-folder root as a bash word. */
  workRootSh: string;
}

export interface UploadResult {
  jobs: number;
  files: number;
  /** Distinct file bodies, and how many of them the cluster lacked. */
  uniqueBodies: number;
  bodiesSent: number;
  /** Bytes that had to reach the cluster once: distinct bodies, and the job helper when it went. */
  uniqueBytes: number;
  /** Bytes of file bodies put on the wire (the tar framing comes on top). */
  bodyBytesSent: number;
  /** The job helper went too (the cluster lacked this version of it). */
  helperSent: boolean;
  requests: number;
  /** Restarted jobs and the run whose CONTCAR they continue from (e.g. "run.1"). */
  restartedFrom: Map<string, string>;
  /** Restarts refused on the cluster (no usable CONTCAR): nothing of these jobs was placed. */
  restartRefused: { id: string; why: string }[];
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function scriptInput(paths: UploadPaths, mode: "missing" | "place", tx: string): Buffer {
  const header = `R=${paths.remoteDirSh}\nW=${paths.workRootSh}\nMODE=${mode}\nTX=${tx}\n`;
  return Buffer.from(`${header}${structureScript}\n${uploadScript}\nmain; exit $?\n`);
}

async function* concat(head: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* rest;
}

/** The tar stream, gzipped: hundreds of 512-byte headers for small inputs compress to almost nothing. */
function gzipped(tar: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  return Readable.from(tar).pipe(createGzip({ level: 3 }));
}

export async function uploadJobs(
  session: RemoteShell,
  paths: UploadPaths,
  jobs: readonly UploadJob[],
  opts: Pick<ExecOptions, "signal" | "timeoutMs"> = {},
): Promise<UploadResult> {
  const bodies = new Map<string, { path: string; size: number }>();
  const placed: { id: string; name: string; hash: string }[] = [];
  for (const job of jobs) {
    for (const f of job.files) {
      const [hash, st] = await Promise.all([sha256File(f.path), fs.stat(f.path)]);
      if (!bodies.has(hash)) bodies.set(hash, { path: f.path, size: st.size });
      placed.push({ id: job.id, name: f.name, hash });
    }
  }
  const tx = `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  // The job helper is asked about like a body: it travels only to a cluster that lacks it.
  const libKey = `lib/${JOB_LIB_FILE}`;
  const ask = Buffer.concat([
    scriptInput(paths, "missing", tx),
    Buffer.from(`${[...bodies.keys(), libKey].join("\n")}\n\n`),
  ]);
  const reply = await session.exec("bash -s", { ...opts, stdin: ask });
  if (reply.code !== 0) throw uploadFailure("cannot read the cluster's content store", reply);
  const answered = reply.stdout.toString("utf8").split("\n");
  const missing = new Set(answered.filter((h) => bodies.has(h)));
  const libMissing = answered.includes(libKey);
  let helperSent = false;
  const base = `.incoming/${tx}`;
  const entries: TarEntry[] = [];
  let bodyBytesSent = 0;
  for (const hash of missing) {
    const body = bodies.get(hash)!;
    bodyBytesSent += body.size;
    entries.push({
      type: "file",
      path: `${base}/blobs/${hash}`,
      mode: 0o644,
      size: body.size,
      body: () => createReadStream(body.path),
    });
  }
  for (const p of placed) {
    const linkname = missing.has(p.hash) ? `${base}/blobs/${p.hash}` : `store/${p.hash}`;
    entries.push({ type: "link", path: `${base}/jobs/${p.id}/${p.name}`, linkname, mode: 0o644 });
  }
  for (const job of jobs) {
    if (job.restart) entries.push({ type: "file", path: `${base}/restart/${job.id}`, mode: 0o644, body: "" });
    if (job.script !== undefined)
      entries.push({ type: "file", path: `${base}/scripts/${job.id}.sh`, mode: 0o755, body: job.script });
  }
  // The order the jobs were added in: the agent submits the oldest first, and scripts that arrive
  // in one upload must not fall back to name order.
  const order = jobs.filter((j) => j.script !== undefined).map((j) => j.id);
  if (order.length > 0) {
    entries.push({ type: "file", path: `${base}/order`, mode: 0o644, body: `${order.join("\n")}\n` });
    // The helper the scripts source travels with them where the cluster lacks it, so no script
    // can wait in waiting/ without it.
    if (libMissing) {
      entries.push({ type: "file", path: `${base}/lib/${JOB_LIB_FILE}`, mode: 0o644, body: JOB_LIB_TEXT });
      helperSent = true;
    }
  }
  const result = await session.exec("bash -s", {
    ...opts,
    stdin: concat(scriptInput(paths, "place", tx), gzipped(packTar(entries))),
  });
  if (result.code !== 0) throw uploadFailure("upload failed on the cluster", result);
  return {
    jobs: jobs.length,
    files: placed.length,
    uniqueBodies: bodies.size,
    bodiesSent: missing.size,
    uniqueBytes:
      [...bodies.values()].reduce((n, b) => n + b.size, 0) +
      (helperSent ? Buffer.byteLength(JOB_LIB_TEXT) : 0),
    helperSent,
    bodyBytesSent,
    requests: 2,
    ...parseRestarts(result.stdout.toString("utf8")),
  };
}

/** A failed upload step in words: the cluster's own reason first (a full disk, a folder it may not
 * write), with the first line it said; nothing is placed by a failed step. */
function uploadFailure(step: string, r: { code: number | null; stderr: Buffer }): RemoteError {
  const said = r.stderr.toString("utf8").trim();
  const problem = remoteSystemProblem(said);
  if (problem) {
    const line = said.split("\n").find((l) => remoteSystemProblem(l) !== null) ?? said;
    return new RemoteError(`${step}: ${problem.what} (${line})`, {
      hint: `${problem.hint} Nothing was placed; the jobs stay queued here.`,
    });
  }
  return new RemoteError(`${step}: ${said || `exit ${r.code}`}`, {
    hint: "Nothing was placed; run the same command again.",
  });
}

/** The place step's `restart_from=<id>\t<run>` and `restart_refused=<id>\t<why>` lines. */
function parseRestarts(text: string): Pick<UploadResult, "restartedFrom" | "restartRefused"> {
  const restartedFrom = new Map<string, string>();
  const restartRefused: { id: string; why: string }[] = [];
  for (const line of text.split("\n")) {
    const m = /^restart_(from|refused)=([^\t]+)\t(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === "from") restartedFrom.set(m[2]!, m[3]!);
    else restartRefused.push({ id: m[2]!, why: m[3]! });
  }
  return { restartedFrom, restartRefused };
}
