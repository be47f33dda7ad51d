// Test helpers for the cluster-in-a-box (test/cluster/cluster.sh): its description, fresh TOTP
// codes, commands as the test user, run counts from the scheduler, polling with a deadline.
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface Cluster {
  host: string;
  keyPort: number;
  totpPort: number;
  user: string;
  home: string;
  scratch: string;
  identity: string;
  encryptedIdentity: string;
  passphrase: string;
  knownHosts: string;
  totpSecret: string;
  slurmConf: string;
  jobcompLog: string;
  stateDir: string;
  cpus: number;
  partitions: string[];
}

export const CLUSTER_SH = path.join(import.meta.dir, "cluster.sh");

function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CHASQUI_CLUSTER_DIR ?? "/var/lib/chasqui-cluster";
}

function pidAlive(file: string): boolean {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function daemonsAlive(dir: string): boolean {
  return [
    path.join(dir, "munge/munged.pid"),
    path.join(dir, "run/slurmctld.pid"),
    path.join(dir, "run/slurmd.pid"),
    path.join(dir, "run/sshd.pid"),
  ].every(pidAlive);
}

let cached: Cluster | undefined;

/** The running cluster; brings it up (`cluster.sh up`) when it is not running. */
export function loadCluster(): Cluster {
  if (cached && daemonsAlive(cached.stateDir)) return cached;
  const dir = stateDir();
  const json = path.join(dir, "cluster.json");
  if (!fs.existsSync(json) || !daemonsAlive(dir)) {
    const up = spawnSync("bash", [CLUSTER_SH, "up"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (up.status !== 0) throw new Error(`cluster.sh up failed (${up.status}):\n${up.stderr}${up.stdout}`);
  }
  cached = JSON.parse(fs.readFileSync(json, "utf8")) as Cluster;
  return cached;
}

/** Fresh remote account state: no jobs of the test user, no chasqui_remote* folders, empty scratch. */
export function resetRemote(): void {
  loadCluster();
  const r = spawnSync("bash", [CLUSTER_SH, "reset"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cluster.sh reset failed (${r.status}):\n${r.stderr}${r.stdout}`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a bash command as the test user in its home, with SLURM_CONF set (no ssh involved). */
export function runAsUser(
  cmd: string,
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const c = loadCluster();
  const env = {
    HOME: c.home,
    USER: c.user,
    LOGNAME: c.user,
    PATH: "/usr/local/bin:/usr/bin:/bin",
    SLURM_CONF: c.slurmConf,
    LANG: "C.UTF-8",
  };
  return new Promise((resolve, reject) => {
    const child = spawn("runuser", ["-u", c.user, "--", "env", "-i", ...envArgs(env), "bash", "-c", cmd], {
      cwd: c.home,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin.end(opts.input ?? "");
  });
}

function envArgs(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** Poll until cond returns a truthy value (which is returned), or throw at the deadline. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? "a condition"}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/**
 * How many times a job of this scheduler name was run or is queued: distinct scheduler ids from the
 * jobcomp log (finished jobs) and squeue (queued, running). The queue is read first, so a job that
 * finishes in between is still counted once.
 */
export async function countRuns(jobName: string): Promise<number> {
  const c = loadCluster();
  const ids = new Set<string>();
  const q = spawnSync("squeue", ["-h", "-a", "-n", jobName, "-o", "%i"], {
    encoding: "utf8",
    env: { ...process.env, SLURM_CONF: c.slurmConf },
  });
  if (q.status !== 0) throw new Error(`squeue failed: ${q.stderr}`);
  for (const id of q.stdout.split("\n")) if (id.trim()) ids.add(id.trim());
  const log = fs.existsSync(c.jobcompLog) ? fs.readFileSync(c.jobcompLog, "utf8") : "";
  for (const line of log.split("\n")) {
    const id = /^JobId=(\S+)/.exec(line)?.[1];
    const name = / Name=(\S*) JobState=/.exec(line)?.[1];
    if (id && name === jobName) ids.add(id);
  }
  return ids.size;
}

// ---- TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30 s steps) ----

const TOTP_STEP_SECONDS = 30;

function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.toUpperCase().replace(/[\s=-]/g, "");
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The code of one time step (HOTP of the step counter). */
function totpAt(secret: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const bin = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 1_000_000).padStart(6, "0");
}

/** Steps the server accepts ahead of its clock: (WINDOW_SIZE 41 - 1) / 2, see cluster.sh. */
const WINDOW_AHEAD = 20;

function currentStep(nowMs = Date.now()): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS);
}

/** The steps pam_google_authenticator recorded in its DISALLOW_REUSE line. */
function serverUsedSteps(file: string): number[] {
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const line = text.split("\n").find((l) => l.startsWith('" DISALLOW_REUSE'));
  return (line ?? "")
    .split(/\s+/)
    .slice(2)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

function withFileLock<T>(lockDir: string, fn: () => T): T {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // The critical section takes microseconds: a lock older than 5 s was left by a dead process.
      try {
        if (Date.now() - fs.statSync(lockDir).mtimeMs > 5_000) fs.rmdirSync(lockDir);
      } catch {}
      if (Date.now() > deadline) throw new Error(`could not take ${lockDir}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmdirSync(lockDir);
  }
}

/**
 * A code the server has not seen yet. The last step handed out is kept in the state folder (under a
 * lock), so no two calls, in any process, return the same step. The server (WINDOW_SIZE 41)
 * accepts steps up to 20 ahead of its clock; past that, this waits for the clock.
 */
export async function totpCode(
  opts: { secret?: string; dir?: string; usedFile?: string } = {},
): Promise<string> {
  const dir = opts.dir ?? stateDir();
  const c = opts.secret === undefined || opts.usedFile === undefined ? loadCluster() : undefined;
  const secret = opts.secret ?? c!.totpSecret;
  const usedFile = opts.usedFile ?? path.join(c!.home, ".google_authenticator");
  const lastFile = path.join(dir, "totp-last-step");
  const step = withFileLock(path.join(dir, "totp.lock"), () => {
    let last = -1;
    try {
      last = Number(fs.readFileSync(lastFile, "utf8").trim());
    } catch {}
    if (!Number.isFinite(last)) last = -1;
    // Steps the server has seen (codes used by anything that bypassed this helper count too).
    for (const used of serverUsedSteps(usedFile)) last = Math.max(last, used);
    const chosen = Math.max(currentStep(), last + 1);
    fs.writeFileSync(`${lastFile}.tmp`, `${chosen}\n`);
    fs.renameSync(`${lastFile}.tmp`, lastFile);
    return chosen;
  });
  // Usable once the server's clock is at step-7 or later (one step of margin for clock edges).
  const usableAtMs = (step - (WINDOW_AHEAD - 1)) * TOTP_STEP_SECONDS * 1000;
  while (Date.now() < usableAtMs) {
    await new Promise((r) => setTimeout(r, Math.min(1_000, usableAtMs - Date.now() + 5)));
  }
  return totpAt(secret, step);
}
