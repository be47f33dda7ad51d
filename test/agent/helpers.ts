// A throwaway remote folder with the real agent.sh and a fake PBS Professional on PATH
// (test/agent/fakepbs.sh), plus readers for what the agent and the fake scheduler left behind.
import { afterEach } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type AgentEvent, parseAgentLog } from "../../src/core/agentLog.ts";

const AGENT_SH = path.join(import.meta.dir, "../../src/cluster/kit/agent.sh");
const FAKE_PBS = path.join(import.meta.dir, "fakepbs.sh");
const FIXTURES = path.join(import.meta.dir, "../fixtures");
const USER = "tester";

export interface Sandbox {
  root: string;
  /** The remote folder R (agent.sh, waiting/, agent.log, ...). */
  R: string;
  work: string;
  sched: string;
  bin: string;
  env: Record<string, string>;
}

export interface SandboxOptions {
  conf?: Record<string, string | number>;
  /** Scheduler commands to put on PATH (default qsub, qstat, qselect). */
  commands?: string[];
  /** The most unfinished jobs any qsub may see (the fake records a violation above it). */
  cap?: number;
}

function makeSandbox(opts: SandboxOptions = {}): Sandbox {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-agent-"));
  const R = path.join(root, "remote");
  const work = path.join(root, "scratch");
  const sched = path.join(root, "sched");
  const bin = path.join(root, "bin");
  for (const d of [R, work, sched, bin]) fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(AGENT_SH, path.join(R, "agent.sh"));
  const conf = { SCHEDULER: "pbs", WORK_ROOT: work, ...opts.conf };
  fs.writeFileSync(
    path.join(R, "agent.conf"),
    Object.entries(conf)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(""),
  );
  for (const c of opts.commands ?? ["qsub", "qstat", "qselect"]) fs.symlinkSync(FAKE_PBS, path.join(bin, c));
  if (opts.cap !== undefined) fs.writeFileSync(path.join(sched, "cap"), `${opts.cap}\n`);
  const env = {
    PATH: `${bin}:/usr/bin:/bin`,
    USER,
    HOME: root,
    LANG: "C.UTF-8",
    FAKE_SCHED: sched,
    FAKE_FIXTURES: path.join(FIXTURES, "pbspro"),
  };
  return { root, R, work, sched, bin, env };
}

function removeSandbox(sb: Sandbox): void {
  fs.rmSync(sb.root, { recursive: true, force: true });
}

/** Sandboxes for one test file: `box()` makes one, each is removed after its test. */
export function sandboxesPerTest(): (opts?: SandboxOptions) => Sandbox {
  let boxes: Sandbox[] = [];
  afterEach(() => {
    for (const sb of boxes) removeSandbox(sb);
    boxes = [];
  });
  return (opts) => {
    const sb = makeSandbox(opts);
    boxes.push(sb);
    return sb;
  };
}

/** A rendered batch script in waiting/ (and its work folder), modified at `mtime` (seconds). */
export function addWaiting(
  sb: Sandbox,
  id: string,
  opts: {
    name?: string | null;
    queue?: string;
    mtime?: number;
    dir?: "waiting" | "submitting";
    workDir?: boolean;
  } = {},
): string {
  const dir = path.join(sb.R, opts.dir ?? "waiting");
  fs.mkdirSync(dir, { recursive: true });
  const name = opts.name === undefined ? id : opts.name;
  const lines = ["#!/bin/bash"];
  if (name !== null) lines.push(`#PBS -N ${name}`);
  lines.push(`#PBS -q ${opts.queue ?? "workq"}`, "#PBS -l walltime=00:10:00", "echo hello", "");
  const file = path.join(dir, `${id}.sh`);
  fs.writeFileSync(file, lines.join("\n"));
  if (opts.workDir !== false) fs.mkdirSync(path.join(sb.work, id), { recursive: true });
  const t = opts.mtime ?? Math.floor(Date.now() / 1000);
  fs.utimesSync(file, t, t);
  return file;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function agent(sb: Sandbox, args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync("bash", [path.join(sb.R, "agent.sh"), ...args], {
    env: { ...sb.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

export function agentAsync(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(sb.R, "agent.sh"), ...args], {
      env: { ...sb.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

export function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

export function logText(sb: Sandbox): string {
  return readText(path.join(sb.R, "agent.log"));
}

export function events(sb: Sandbox): AgentEvent[] {
  return parseAgentLog(logText(sb), 0).events;
}

/** Events other than START/END, as "EVENT job detail" strings. */
export function jobEvents(sb: Sandbox): string[] {
  return events(sb)
    .filter((e) => e.event !== "START" && e.event !== "END")
    .map((e) => `${e.event} ${e.jobId} ${e.detail}`);
}

/** Job names in the order the fake qsub was called. */
export function qsubCalls(sb: Sandbox): string[] {
  return readText(path.join(sb.sched, "calls"))
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t")[0]!);
}

export function qsubCallLines(sb: Sandbox): { name: string; cwd: string; args: string }[] {
  return readText(path.join(sb.sched, "calls"))
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [name = "", cwd = "", args = ""] = l.split("\t");
      return { name, cwd, args };
    });
}

export function violations(sb: Sandbox): string {
  return readText(path.join(sb.sched, "violations"));
}

export interface FakeJob {
  seq: string;
  name: string;
  state: string;
  owner: string;
  exit: string;
}

export function schedJobs(sb: Sandbox): FakeJob[] {
  return readText(path.join(sb.sched, "jobs"))
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [seq = "", name = "", state = "", owner = "", exit = ""] = l.split("\t");
      return { seq, name, state, owner, exit };
    });
}

function writeJobs(sb: Sandbox, jobs: FakeJob[]): void {
  fs.writeFileSync(
    path.join(sb.sched, "jobs"),
    jobs.map((j) => `${j.seq}\t${j.name}\t${j.state}\t${j.owner}\t${j.exit}\n`).join(""),
  );
}

/** A job the scheduler knows that the agent did not submit (by hand, or by another user). */
export function addSchedJob(sb: Sandbox, name: string, state: string, owner = USER, exit = ""): string {
  const seqFile = path.join(sb.sched, "seq");
  const seq = Number(readText(seqFile).trim() || "0");
  fs.writeFileSync(seqFile, `${seq + 1}\n`);
  writeJobs(sb, [...schedJobs(sb), { seq: String(seq), name, state, owner, exit }]);
  return `${seq}.fakehost`;
}

/** Every unfinished job (or those named) finishes with exit status 0. */
export function finishJobs(sb: Sandbox, names?: string[]): void {
  writeJobs(
    sb,
    schedJobs(sb).map((j) =>
      j.state !== "F" && (!names || names.includes(j.name)) ? { ...j, state: "F", exit: "0" } : j,
    ),
  );
}

export function setMode(sb: Sandbox, mode: string, name?: string): void {
  fs.writeFileSync(path.join(sb.sched, name ? `mode.${name}` : "mode"), `${mode}\n`);
}

export function ls(sb: Sandbox, dir: string, suffix = ".sh"): string[] {
  try {
    return fs
      .readdirSync(path.join(sb.R, dir))
      .filter((f) => f.endsWith(suffix))
      .map((f) => f.slice(0, -suffix.length))
      .sort();
  } catch {
    return [];
  }
}

/** A pid that certainly belonged to a process that has exited. */
export function deadPid(): number {
  const r = spawnSync("bash", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}
