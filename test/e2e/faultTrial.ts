// One fault-injection trial against the cluster-in-a-box: a few jobs, syncs with results coming
// home, each sync either cut by the proxy after a random number of bytes (login, upload, the
// agent's run, the log and flags, the download) or SIGKILLed after a random time; then clean syncs
// until nothing changes. The invariants are checked against the cluster's own truth. Used by
// faults.test.ts (a sample) and bench/soak.ts (hundreds of trials, with figures).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { schedulerJobName } from "../../src/core/jobName.ts";
import { type Cluster, countRuns, runAsUser, waitFor } from "../cluster/cluster.ts";
import type { Proxy as TcpProxy } from "../cluster/proxy.ts";
import { BINARY, BOX_JOBS, clusterLogin, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

export type FaultKind = "cut" | "kill";

export interface TrialResult {
  kind: FaultKind;
  /** Faulty syncs that were really interrupted (a cut that happened, a kill before the exit). */
  faults: number;
  jobs: number;
  /** Jobs that reached the scheduler more than once / never reached DONE. */
  duplicates: number;
  lost: number;
  /** Jobs whose local state is not the cluster's (a DONE flag there ⇔ DONE here). */
  disagreements: number;
  /** Downloaded files that differ from the cluster's copy, and temp files left behind. */
  badFiles: number;
  storeParses: boolean;
  /** Clean syncs it took to settle after the faults. */
  recoverySyncs: number;
  problems: string[];
}

function run(
  s: Sandbox,
  args: string[],
  killAfterMs: number | null,
): Promise<{ code: number | null; killed: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BINARY, args, {
      cwd: s.root,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.root, CHASQUI_HOME: s.home },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b) => {
      stderr += b;
    });
    let exited = false;
    let killed = false;
    const timer =
      killAfterMs === null
        ? null
        : setTimeout(() => {
            if (!exited) {
              killed = true;
              child.kill("SIGKILL");
            }
          }, killAfterMs);
    child.on("close", (code) => {
      exited = true;
      if (timer) clearTimeout(timer);
      resolve({ code, killed, stderr });
    });
  });
}

/** Log-uniform in [lo, hi]: faults land early (login) as often as late (download). */
function logUniform(rand: () => number, lo: number, hi: number): number {
  return Math.round(Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo))));
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export async function faultTrial(opts: {
  cluster: Cluster;
  proxy: TcpProxy;
  kind: FaultKind;
  name: string;
  rand: () => number;
  jobs?: number;
  faultySyncs?: number;
}): Promise<TrialResult> {
  const { cluster, proxy, kind, rand } = opts;
  const remote = `chasqui_remote_${opts.name}`;
  const s = sandbox();
  // The cluster's host keys under the proxy's port too.
  const knownHosts = path.join(s.root, "known_hosts");
  const keys = fs.readFileSync(cluster.knownHosts, "utf8");
  fs.writeFileSync(knownHosts, keys + keys.replaceAll(`]:${cluster.keyPort} `, `]:${proxy.port} `));
  const init = await run(
    s,
    [
      "init",
      ...clusterLogin(cluster, proxy.port, knownHosts),
      ...BOX_JOBS,
      "--max-queued",
      "2",
      "--remote-dir",
      remote,
      "--download",
    ],
    null,
  );
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const ids = Array.from({ length: opts.jobs ?? 4 }, (_, i) => `${opts.name}j${i}`);
  const folders = ids.map((id) =>
    s.jobFolder(id, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\nFAKE_VASPRUN_MB = 1\n" }),
  );
  const add = await run(s, ["add", ...folders], null);
  if (add.code !== 0) throw new Error(`add failed: ${add.stderr}`);

  let faults = 0;
  for (let i = 0; i < (opts.faultySyncs ?? 3); i++) {
    if (kind === "cut") {
      const cutsBefore = proxy.stats().cuts;
      proxy.setCutAfter(logUniform(rand, 200, 3_000_000));
      await run(s, ["sync"], null);
      proxy.setCutAfter(null);
      if (proxy.stats().cuts > cutsBefore) faults++;
    } else {
      const r = await run(s, ["sync"], logUniform(rand, 5, 4_000));
      if (r.killed) faults++;
    }
    // Let the cluster move on between faults (jobs end, agents run).
    await new Promise((r) => setTimeout(r, rand() * 1_000));
  }

  // Clean syncs until every job is DONE with its results home and one more sync changes nothing.
  const problems: string[] = [];
  let recoverySyncs = 0;
  const listed = (): { id: string; state: string; results: unknown }[] => {
    const text = fs.readFileSync(path.join(s.home, "jobs.json"), "utf8");
    return JSON.parse(text).jobs;
  };
  try {
    await waitFor(
      async () => {
        recoverySyncs++;
        const r = await run(s, ["sync", "--json"], null);
        if (r.code !== 0) return false;
        return listed().every((j) => j.state === "DONE" && j.results !== null);
      },
      { timeoutMs: 120_000, intervalMs: 300, what: `${opts.name}: every job DONE with its results home` },
    );
  } catch (e) {
    problems.push((e as Error).message);
  }

  let storeParses = true;
  let jobs: { id: string; state: string }[] = [];
  try {
    jobs = listed();
  } catch (e) {
    storeParses = false;
    problems.push(`the store does not parse: ${(e as Error).message}`);
  }
  let duplicates = 0;
  let lost = 0;
  let disagreements = 0;
  let badFiles = 0;
  const flags = (await runAsUser(`ls ${remote}/completed 2>/dev/null`)).stdout.split(/\s+/);
  for (const id of ids) {
    const runs = await countRuns(schedulerJobName(id));
    if (runs > 1) {
      duplicates++;
      problems.push(`${id} reached the scheduler ${runs} times`);
    }
    const state = jobs.find((j) => j.id === id)?.state ?? "missing";
    if (state !== "DONE") {
      lost++;
      problems.push(`${id} is ${state}`);
    }
    const doneThere = flags.includes(`${id}.flag`);
    if (doneThere !== (state === "DONE")) {
      disagreements++;
      problems.push(`${id}: ${state} here, ${doneThere ? "a flag" : "no flag"} on the cluster`);
    }
    // Results: whole, and the cluster's bytes.
    const folder = path.join(s.root, "jobs", id);
    for (const f of fs.readdirSync(folder)) {
      if (f.endsWith(".part") || f.includes(".tmp")) {
        badFiles++;
        problems.push(`${id}: ${f} left behind`);
      }
    }
    for (const f of ["OUTCAR", "vasprun.xml"]) {
      const local = path.join(folder, f);
      if (!fs.existsSync(local)) continue;
      const there = await runAsUser(`sha256sum ${remote}/jobs/${id}/${f}`);
      if (there.stdout.split(" ")[0] !== sha(fs.readFileSync(local))) {
        badFiles++;
        problems.push(`${id}/${f} differs from the cluster's copy`);
      }
    }
  }
  fs.rmSync(s.root, { recursive: true, force: true });
  return {
    kind,
    faults,
    jobs: ids.length,
    duplicates,
    lost,
    disagreements,
    badFiles,
    storeParses,
    recoverySyncs,
    problems,
  };
}
