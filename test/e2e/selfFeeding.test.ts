// The queue feeds itself on a cluster that tears jobs down as PBS Professional does (the
// cluster-in-a-box kills every process a finished job leaves behind and removes its $TMPDIR), and
// a scheduler that does not answer is heard: doctor fails, sync exits 1 and changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { schedulerJobName } from "../../src/core/jobName.ts";
import {
  CLUSTER_SH,
  type Cluster,
  countRuns,
  loadCluster,
  resetRemote,
  waitFor,
} from "../cluster/cluster.ts";
import { SLOW, slowTest } from "../slow.ts";
import { BOX_JOBS, clusterLogin, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

let cluster: Cluster;
beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});
afterAll(() => {
  // A test that stopped the controller must not leave it stopped for the next file.
  spawnSync("bash", [CLUSTER_SH, "up"], { stdio: "ignore" });
});

function setUp(remoteDir: string, extra: string[] = []): Sandbox {
  const s = sandbox();
  const init = s.run([
    "init",
    ...clusterLogin(cluster, cluster.keyPort),
    ...BOX_JOBS,
    "--remote-dir",
    remoteDir,
    ...extra,
  ]);
  expect(init.code).toBe(0);
  return s;
}

const listed = (s: Sandbox) =>
  JSON.parse(s.run(["list", "--json"]).stdout) as {
    id: string;
    state: string;
    history: unknown[];
    scheduler_id: string | null;
  }[];

function remoteFile(remoteDir: string, rel: string): string {
  const p = path.join(cluster.home, remoteDir, rel);
  return fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "";
}

/** Until `n` completion flags are in the remote folder, written by the jobs themselves. */
function waitForFlags(remoteDir: string, n: number, timeoutMs: number): Promise<true> {
  const dir = path.join(cluster.home, remoteDir, "completed");
  return waitFor(() => fs.readdirSync(dir).filter((f) => f.endsWith(".flag")).length === n || null, {
    what: `${n} completion flags`,
    timeoutMs,
    intervalMs: 500,
  });
}

const tag = Math.random().toString(36).slice(2, 6);

describe("the queue feeds itself when jobs are torn down as on PBS", () => {
  // Ten in the slow group (CI), five in the quick one: each waits for the one before it.
  const n = SLOW ? 10 : 5;
  test(`${n} jobs, max_queued=1, one sync: each reaches the scheduler once, in the order added, and ends DONE`, async () => {
    const remote = "chasqui_remote_feed";
    const s = setUp(remote, ["--max-queued", "1"]);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      // Added in reverse name order: submission must follow the order of adding, not names.
      const id = `feed${tag}${String.fromCharCode(106 - i)}`;
      ids.push(id);
      const dir = s.jobFolder(id, { ...VASP_FILES, INCAR: "ENCUT = 400\nFAKE_SECONDS = 1\n" });
      expect(s.run(["add", dir]).code).toBe(0);
    }
    const first = s.run(["sync", "--json"]);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).submitted).toHaveLength(1);
    // No more syncs: the jobs' own end-of-job agent runs submit the others, one at a time.
    await waitForFlags(remote, n, 180_000);
    for (const id of ids) expect(await countRuns(schedulerJobName(id))).toBe(1);
    const log = remoteFile(remote, "agent.log");
    const submits = log.split("\n").filter((l) => l.split("\t")[1] === "SUBMIT");
    expect(submits.map((l) => l.split("\t")[2])).toEqual(ids);
    // One agent run came from the sync; every other submission from a job that was ending.
    const starts = log.split("\n").filter((l) => l.split("\t")[1] === "START");
    expect(starts.filter((l) => !l.includes("from job")).length).toBe(1);
    expect(starts.filter((l) => l.includes("from job")).length).toBeGreaterThanOrEqual(n - 1);
    // Nothing a job left behind survives it, and no agent kept its files in a job's TMPDIR.
    expect(fs.readdirSync(path.join(cluster.home, remote)).filter((f) => f.startsWith(".tmp."))).toEqual([]);
    // The second sync only reads what happened: it submits nothing.
    const last = s.run(["sync", "--json"]);
    expect(last.code).toBe(0);
    expect(JSON.parse(last.stdout).completed).toHaveLength(n);
    expect(remoteFile(remote, "agent.log")).toBe(log);
    expect(listed(s).map((j) => j.state)).toEqual(Array(n).fill("DONE"));
  }, 300_000);
});

describe("trigger_host", () => {
  test("ending jobs run the agent on the login node by the cluster's own ssh: three jobs, one sync", async () => {
    const remote = "chasqui_remote_via";
    const s = setUp(remote, ["--max-queued", "1", "--trigger-host", "login-node"]);
    const ids = ["a", "b", "c"].map((x) => `via${tag}${x}`);
    for (const id of ids) {
      const dir = s.jobFolder(id, { ...VASP_FILES, INCAR: "ENCUT = 400\nFAKE_SECONDS = 1\n" });
      expect(s.run(["add", dir]).code).toBe(0);
    }
    expect(s.run(["sync"]).code).toBe(0);
    await waitForFlags(remote, 3, 120_000);
    for (const id of ids) expect(await countRuns(schedulerJobName(id))).toBe(1);
    const log = remoteFile(remote, "agent.log").split("\n");
    const fromJobs = log.filter((l) => l.split("\t")[1] === "START" && l.includes("from job"));
    expect(fromJobs.length).toBeGreaterThanOrEqual(2);
    // Every run a job asked for came in by ssh (SSH_CONNECTION names the compute node).
    for (const l of fromJobs) expect(l).toContain(`via ${cluster.host}`);
    expect(s.run(["sync"]).code).toBe(0);
    expect(listed(s).map((j) => j.state)).toEqual(["DONE", "DONE", "DONE"]);
  }, 240_000);
});

describe("a scheduler that does not answer", () => {
  function stopController(): void {
    const pid = Number(fs.readFileSync(path.join(cluster.stateDir, "run/slurmctld.pid"), "utf8").trim());
    process.kill(pid, "SIGTERM");
    spawnSync("bash", ["-c", `while kill -0 ${pid} 2>/dev/null; do sleep 0.1; done`], { timeout: 30_000 });
  }
  function startController(): void {
    const up = spawnSync("bash", [CLUSTER_SH, "up"], { encoding: "utf8" });
    if (up.status !== 0) throw new Error(`cluster.sh up failed: ${up.stderr}`);
  }

  test("doctor names an unknown queue and an unset account", () => {
    const s = setUp("chasqui_remote_down", ["--template", "pbspro-vasp", "--set", "queue=nosuchq"]);
    const r = s.run(["doctor", "--json"]);
    expect(r.code).toBe(1);
    const checks = new Map(
      (JSON.parse(r.stdout) as { name: string; ok: boolean; detail: string }[]).map((c) => [c.name, c]),
    );
    expect(checks.get("scheduler")?.ok).toBe(true);
    expect(checks.get("queue")).toMatchObject({ ok: false });
    expect(checks.get("queue")!.detail).toContain('unknown queue "nosuchq"');
    expect(checks.get("account")).toMatchObject({ ok: false });
    expect(checks.get("account")!.detail).toContain("#PBS -A");
    expect(r.stderr).toContain("some checks failed");
  });

  slowTest(
    "stopped: doctor fails naming it; sync exits 1, says so, and no job changes state",
    async () => {
      const remote = "chasqui_remote_down";
      const s = setUp(remote);
      for (const name of ["down1", "down2"]) {
        const dir = s.jobFolder(`${name}${tag}`, {
          ...VASP_FILES,
          INCAR: "ENCUT = 400\nFAKE_SECONDS = 600\n",
        });
        expect(s.run(["add", dir]).code).toBe(0);
      }
      expect(s.run(["sync"]).code).toBe(0);
      await waitFor(
        () => {
          s.run(["sync"]);
          return listed(s).every((j) => j.state === "RUNNING");
        },
        { what: "both jobs running", timeoutMs: 60_000, intervalMs: 1000 },
      );
      const before = listed(s);
      const storeBefore = fs.readFileSync(path.join(s.home, "jobs.json"), "utf8");
      stopController();
      try {
        const doctor = s.run(["doctor", "--json"]);
        expect(doctor.code).toBe(1);
        const scheduler = (JSON.parse(doctor.stdout) as { name: string; ok: boolean; detail: string }[]).find(
          (c) => c.name === "scheduler",
        );
        expect(scheduler).toMatchObject({ ok: false });
        expect(scheduler!.detail).toContain("the server does not answer");

        const r = s.run(["sync", "--json"]);
        expect(r.code).toBe(1);
        const summary = JSON.parse(r.stdout);
        expect(summary.scheduler_error).toBeTruthy();
        expect(summary.warnings.join("\n")).toContain("the scheduler did not answer");
        expect(summary.changes).toEqual([]);
        expect(r.stderr).toContain("chasqui: the scheduler did not answer");
        const after = listed(s);
        expect(after.map((j) => [j.id, j.state, j.history.length])).toEqual(
          before.map((j) => [j.id, j.state, j.history.length]),
        );
        // The cursor and last_sync may move; no job's record does.
        const jobsOf = (text: string) => JSON.stringify(JSON.parse(text).jobs);
        expect(jobsOf(fs.readFileSync(path.join(s.home, "jobs.json"), "utf8"))).toBe(jobsOf(storeBefore));
      } finally {
        startController();
      }
      expect(s.run(["cancel", ...before.map((j) => j.id)]).code).toBe(0);
    },
    240_000,
  );
});
