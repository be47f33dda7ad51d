// Results coming home, end to end: the compiled binary against the cluster-in-a-box (key port; the
// 2FA path is covered by sync.test.ts). Run summaries, a 200 MB vasprun.xml with flat memory, a
// download cut by the proxy, cancels (also racing with the agent), and restarts from CONTCAR.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Cluster, countRuns, loadCluster, resetRemote, runAsUser, waitFor } from "../cluster/cluster.ts";
import { startProxy, type Proxy as TcpProxy } from "../cluster/proxy.ts";
import { slowTest } from "../slow.ts";
import { BINARY, BOX_JOBS, clusterLogin, type Run, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

let cluster: Cluster;
const tag = Math.random().toString(36).slice(2, 6);
beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});

interface Listed {
  id: string;
  state: string;
  scheduler_id: string | null;
  history: { to: string; reason: string }[];
  summary: Record<string, unknown> | null;
  results: { files: { name: string; size: number }[] } | null;
  attempt: number;
}

function setUp(remoteDir: string, maxQueued: number, port = cluster.keyPort, extra: string[] = []): Sandbox {
  const s = sandbox();
  // The cluster's host keys, also under the port given (a proxy's), in a file of this sandbox.
  const knownHosts = path.join(s.root, "known_hosts");
  const keys = fs.readFileSync(cluster.knownHosts, "utf8");
  fs.writeFileSync(knownHosts, keys + keys.replaceAll(`]:${cluster.keyPort} `, `]:${port} `));
  const init = s.run([
    "init",
    ...clusterLogin(cluster, port, knownHosts),
    ...BOX_JOBS,
    "--max-queued",
    String(maxQueued),
    "--remote-dir",
    remoteDir,
    ...extra,
  ]);
  expect(init.code).toBe(0);
  return s;
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`chasqui failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

const syncJson = (s: Sandbox, args: string[] = []) =>
  JSON.parse(ok(s.run(["sync", "--json", ...args])).stdout);
const listed = (s: Sandbox): Listed[] => JSON.parse(ok(s.run(["list", "--json"])).stdout);
const byId = (s: Sandbox) => new Map(listed(s).map((j) => [j.id, j]));
const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

async function remoteSha(file: string): Promise<string> {
  const r = await runAsUser(`sha256sum ${file}`);
  if (r.code !== 0) throw new Error(`sha256sum ${file}: ${r.stderr}`);
  return r.stdout.split(/\s+/)[0]!;
}

async function flagsIn(remoteDir: string, ids: readonly string[], timeoutMs = 120_000): Promise<void> {
  await waitFor(
    async () => {
      const r = await runAsUser(`cd ${remoteDir}/completed 2>/dev/null && ls`);
      const have = new Set(r.stdout.split("\n").filter(Boolean));
      return ids.every((id) => have.has(`${id}.flag`));
    },
    { timeoutMs, intervalMs: 250, what: `the flags of ${ids.join(", ")}` },
  );
}

/** Runs the binary without blocking this process (the in-process proxy needs the event loop),
 * sampling the child's peak resident memory (VmHWM) while it runs. */
function runAsync(s: Sandbox, args: string[]): Promise<Run & { peakKb: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, args, {
      cwd: s.root,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.root, CHASQUI_HOME: s.home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let peakKb = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {}
    };
    const timer = setInterval(sample, 20);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("exit", () => sample());
    child.on("close", (code) => {
      clearInterval(timer);
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        peakKb,
      });
    });
  });
}

describe("run summaries, big results, restart refused", () => {
  const R = "chasqui_remote_results";
  let s: Sandbox;
  const id = (n: string) => `${n}${tag}`;

  beforeAll(async () => {
    s = setUp(R, 10);
    const jobs: Record<string, string> = {
      relax: "NSW = 3\nIBRION = 2\nFAKE_SECONDS = 0\n",
      nelm: "NELM = 8\nFAKE_NELM_HIT = .TRUE.\nFAKE_SECONDS = 0\n",
      fail: "FAKE_FAIL = .TRUE.\nFAKE_SECONDS = 0\n",
      big: "FAKE_SECONDS = 0\nFAKE_VASPRUN_MB = 200\n",
    };
    const folders = Object.entries(jobs).map(([n, incar]) =>
      s.jobFolder(id(n), { ...VASP_FILES, INCAR: incar }),
    );
    ok(s.run(["add", ...folders]));
    expect(syncJson(s).uploaded).toHaveLength(4);
    await flagsIn(R, Object.keys(jobs).map(id), 180_000);
    syncJson(s);
  }, 240_000);

  test("energies, steps and convergence in list --json are what the fake VASP wrote", () => {
    const jobs = byId(s);
    expect(jobs.get(id("relax"))).toMatchObject({
      state: "DONE",
      summary: {
        energy: -10.1003,
        ionic_steps: 3,
        electronic_steps: 7,
        nelm: 60,
        electronic_converged: true,
        relaxation: "reached",
        contcar: "valid",
      },
    });
    // Hit NELM: still DONE (VASP finished), but flagged.
    const nelm = jobs.get(id("nelm"))!;
    expect(nelm).toMatchObject({
      state: "DONE",
      summary: { energy: -10.1001, electronic_steps: 8, nelm: 8, electronic_converged: false },
    });
    expect(nelm.history.at(-1)!.reason).toContain("electronic steps hit NELM (8/8)");
    expect(jobs.get(id("fail"))).toMatchObject({ state: "FAILED", summary: { contcar: "missing" } });
    const plain = ok(s.run(["list"])).stdout;
    expect(plain).toContain(`${id("relax")}\tDONE\t`);
    expect(plain).toContain("\t-10.1003\t");
  });

  test("a 200 MB vasprun.xml comes home whole with the process's peak memory under 100 MB", async () => {
    const r = await runAsync(s, ["download", id("big"), "--json"]);
    expect(r.code).toBe(0);
    const [got] = JSON.parse(r.stdout);
    const local = path.join(s.root, "jobs", id("big"), "vasprun.xml");
    expect(got.written.map((f: { name: string }) => f.name)).toContain("vasprun.xml");
    expect(fs.statSync(local).size).toBeGreaterThan(190 * 1024 * 1024);
    expect(sha256(local)).toBe(await remoteSha(`${R}/jobs/${id("big")}/vasprun.xml`));
    console.log(`peak memory while downloading 200 MB: ${(r.peakKb / 1024).toFixed(1)} MB`);
    expect(r.peakKb).toBeGreaterThan(0);
    expect(r.peakKb).toBeLessThan(100 * 1024);
    // show lists what came home, with sizes; nothing identical travels twice.
    expect(ok(s.run(["show", id("big")])).stdout).toMatch(/vasprun\.xml \(\d+ MB\)/);
    const again = JSON.parse(ok(s.run(["download", id("big"), "--json"])).stdout);
    expect(again[0].written).toEqual([]);
    expect(again[0].same.map((f: { name: string }) => f.name)).toContain("vasprun.xml");
  }, 180_000);

  test("results_dir and download_globs: only the asked files, under results_dir/<id>, inputs never touched", async () => {
    const config = JSON.parse(fs.readFileSync(path.join(s.home, "config.json"), "utf8"));
    fs.writeFileSync(
      path.join(s.home, "config.json"),
      JSON.stringify({
        ...config,
        results_dir: path.join(s.root, "results"),
        download_globs: ["OSZICAR", "POSCAR"],
      }),
    );
    const r = JSON.parse(ok(s.run(["download", id("relax"), "--json"])).stdout);
    expect(r[0].dest).toBe(path.join(s.root, "results", id("relax")));
    expect(fs.readdirSync(r[0].dest).sort()).toEqual(["OSZICAR", "POSCAR"]);
    // Back to the job's own folder: its POSCAR (an input) is kept, whatever the cluster has.
    fs.writeFileSync(
      path.join(s.home, "config.json"),
      JSON.stringify({ ...config, download_globs: ["POSCAR", "OSZICAR"] }),
    );
    const before = sha256(path.join(s.root, "jobs", id("relax"), "POSCAR"));
    const own = JSON.parse(ok(s.run(["download", id("relax"), "--json"])).stdout);
    expect(own[0].skipped).toEqual([{ name: "POSCAR", why: "an input of the job has that name" }]);
    expect(sha256(path.join(s.root, "jobs", id("relax"), "POSCAR"))).toBe(before);
    fs.writeFileSync(path.join(s.home, "config.json"), JSON.stringify(config));
  });

  test("retry --restart of a run that left no CONTCAR: exit 2, nothing changed; plain retry works", () => {
    const before = s.snapshot();
    const r = s.run(["retry", "--restart", id("fail")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("CONTCAR");
    expect(r.stderr).toContain(`chasqui retry ${id("fail")}`);
    expect(s.snapshot()).toEqual(before);
    expect(s.run(["retry", id("fail")]).code).toBe(0);
  });
});

describe("a download cut in the middle", () => {
  let proxy: TcpProxy;
  afterAll(async () => proxy?.close());

  test("leaves no partial file; the next sync completes it", async () => {
    proxy = await startProxy({ targetPort: cluster.keyPort, cutCount: "downstream" });
    const R = "chasqui_remote_cut";
    const s = setUp(R, 10, proxy.port);
    const job = `cut${tag}`;
    ok(
      s.run(["add", s.jobFolder(job, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\nFAKE_VASPRUN_MB = 40\n" })]),
    );
    expect(JSON.parse((await runAsync(s, ["sync", "--json"])).stdout).uploaded).toEqual([job]);
    await flagsIn(R, [job]);
    const folder = path.join(s.root, "jobs", job);
    const inputs = new Map(fs.readdirSync(folder).map((f) => [f, sha256(path.join(folder, f))]));

    proxy.setCutAfter(3 * 1024 * 1024);
    const cut = await runAsync(s, ["sync", "--download", "--json"]);
    expect(cut.code).not.toBe(0);
    expect(proxy.stats().cuts).toBeGreaterThan(0);
    // Whatever is there is whole: no temp file, no file that differs from the cluster's copy.
    for (const f of fs.readdirSync(folder)) {
      expect(f.endsWith(".part")).toBe(false);
      if (inputs.has(f)) expect(sha256(path.join(folder, f))).toBe(inputs.get(f)!);
      else expect(sha256(path.join(folder, f))).toBe(await remoteSha(`${R}/jobs/${job}/${f}`));
    }
    expect(fs.existsSync(path.join(folder, "vasprun.xml"))).toBe(false);

    proxy.setCutAfter(null);
    const next = await runAsync(s, ["sync", "--download", "--json"]);
    expect(next.code).toBe(0);
    expect(JSON.parse(next.stdout).downloaded.map((d: { id: string }) => d.id)).toEqual([job]);
    expect(sha256(path.join(folder, "vasprun.xml"))).toBe(await remoteSha(`${R}/jobs/${job}/vasprun.xml`));
    expect(
      byId(s)
        .get(job)!
        .results!.files.map((f) => f.name),
    ).toEqual(expect.arrayContaining(["OUTCAR", "OSZICAR", "CONTCAR", "vasprun.xml", "stdout"]));
  }, 180_000);
});

describe("cancel on the cluster", () => {
  test("an UPLOADED job is never submitted; a RUNNING one is deleted and ends CANCELLED, not TIMEOUT", async () => {
    const R = "chasqui_remote_cancel";
    const s = setUp(R, 1);
    // The agent submits oldest first, then by name: run before wait before next.
    const [run, wait, next] = ["a", "b", "c"].map((n) => `c${n}${tag}`) as [string, string, string];
    const long = { ...VASP_FILES, INCAR: "FAKE_SECONDS = 600\n" };
    ok(s.run(["add", s.jobFolder(run, long), s.jobFolder(wait, long), s.jobFolder(next, long)]));
    syncJson(s);
    expect(byId(s).get(wait)!.state).toBe("UPLOADED");
    await waitFor(async () => (await runAsUser(`squeue -h -n ${run} -t R -o %i`)).stdout.trim() !== "", {
      timeoutMs: 60_000,
      what: `${run} running`,
    });

    const c1 = JSON.parse(ok(s.run(["cancel", wait, "--json"])).stdout);
    expect(c1).toMatchObject([{ id: wait, outcome: "removed", state: "CANCELLED" }]);
    // A cancel whose answer never reached the workstation: the agent's own cancel, run there.
    const direct = await runAsUser(`bash ${R}/agent.sh cancel ${run}`);
    expect(direct.stdout).toMatch(new RegExp(`^${run}\\tdeleted\\t`));
    await flagsIn(R, [run]);
    expect((await runAsUser(`head -1 ${R}/completed/${run}.flag`)).stdout.trim()).toBe("TIMEOUT");
    const after = syncJson(s);
    const jobs = byId(s);
    expect(jobs.get(run)!.state).toBe("CANCELLED");
    expect(jobs.get(run)!.history.at(-1)!.reason).toContain("deleted by chasqui cancel");
    expect(after.cancelled).toContain(run);
    // The queue moved on to the next job; the cancelled one was never submitted.
    await waitFor(async () => (await countRuns(next)) === 1, {
      timeoutMs: 60_000,
      what: `${next} submitted`,
    });
    expect(await countRuns(wait)).toBe(0);

    // cancel --next-sync: recorded now, done by the next sync in its own session.
    const later = JSON.parse(ok(s.run(["cancel", next, "--next-sync", "--json"])).stdout);
    expect(later).toMatchObject([{ id: next, outcome: "requested" }]);
    expect(byId(s).get(next)!.state).not.toBe("CANCELLED");
    const synced = syncJson(s);
    expect(synced.ssh_requests).toBe(1);
    expect(synced.cancelled).toEqual([next]);
    expect(byId(s).get(next)).toMatchObject({ state: "CANCELLED" });
    // A finished job cannot be cancelled, and the refusal changes nothing.
    const before = s.snapshot();
    expect(s.run(["cancel", next]).code).toBe(2);
    expect(s.snapshot()).toEqual(before);
  }, 240_000);

  slowTest(
    "20 cancels racing with agent triggers: none submitted after its cancel returned, none lost",
    async () => {
      const R = "chasqui_remote_race";
      const s = setUp(R, 3);
      const ids = Array.from({ length: 20 }, (_, i) => `r${tag}${String(i).padStart(2, "0")}`);
      // Long enough that none ends by itself while the cancels go on: every cancel meets a job
      // that is waiting, being claimed, queued or running.
      ok(
        s.run(["add", ...ids.map((id) => s.jobFolder(id, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 60\n" }))]),
      );
      expect(syncJson(s).uploaded).toHaveLength(20);
      // Jobs finishing together trigger the agent; here a loop does the same, as fast as it can.
      const stop = `${R}/stop-triggers`;
      const triggers = runAsUser(
        `n=0; while [ ! -e ${stop} ]; do bash ${R}/agent.sh trigger >/dev/null 2>&1; n=$((n+1)); done; echo $n`,
        { timeoutMs: 300_000 },
      );
      const outcomes = new Map<string, string>();
      // The first (running) and the last (waiting) first, then the rest interleaved, so cancels
      // meet the agent at every stage while each freed slot makes it submit the next.
      const order = [
        ids[0]!,
        ids[19]!,
        ...ids.slice(1, 19).filter((_, i) => i % 2 === 1),
        ...ids
          .slice(1, 19)
          .filter((_, i) => i % 2 === 0)
          .reverse(),
      ];
      for (const id of order) {
        const r = s.run(["cancel", id, "--json"]);
        const [answer] = JSON.parse(r.stdout) as { outcome: string; detail: string }[];
        if (answer!.outcome === "error") console.log(`cancel ${id}: ${answer!.detail}; ${r.stderr}`);
        outcomes.set(id, answer!.outcome);
      }
      await runAsUser(`touch ${stop}`);
      const rounds = Number((await triggers).stdout.trim());
      expect(rounds).toBeGreaterThan(5);
      await waitFor(
        async () =>
          (await runAsUser(`squeue -h -u ${cluster.user} -o %j | grep -c '^r${tag}'`)).stdout.trim() === "0",
        {
          timeoutMs: 120_000,
          what: "the race's jobs to leave the queue",
        },
      );
      const log = (await runAsUser(`cat ${R}/agent.log`)).stdout.split("\n").map((l) => l.split("\t"));
      for (const id of ids) {
        const outcome = outcomes.get(id)!;
        expect(["removed", "deleted", "gone"]).toContain(outcome);
        const events = log.filter((f) => f[2] === id).map((f) => f[1]);
        const cancelAt = events.indexOf("CANCEL");
        // Nothing is submitted after a cancel, and no job runs to its end after "deleted".
        if (cancelAt >= 0) expect(events.slice(cancelAt)).not.toContain("SUBMIT");
        if (outcome === "removed") expect(await countRuns(id)).toBe(0);
        if (outcome === "deleted") {
          const flag = await runAsUser(`head -1 ${R}/completed/${id}.flag 2>/dev/null`);
          expect(flag.stdout.trim()).not.toBe("DONE");
        }
        expect(await countRuns(id)).toBeLessThanOrEqual(1);
      }
      const count = (o: string) => [...outcomes.values()].filter((x) => x === o).length;
      expect(count("removed")).toBeGreaterThan(0);
      expect(count("deleted")).toBeGreaterThan(0);
      // Every job ends known: cancelled, or DONE where it finished before its cancel.
      syncJson(s);
      await waitFor(
        () => {
          syncJson(s);
          return listed(s).every((j) => j.state === "CANCELLED" || j.state === "DONE");
        },
        { timeoutMs: 60_000, intervalMs: 1000, what: "every job CANCELLED or DONE" },
      );
      const states = byId(s);
      for (const id of ids) {
        expect(states.get(id)!.state).toBe(outcomes.get(id) === "gone" ? "DONE" : "CANCELLED");
      }
      console.log(
        `cancel race: ${[...outcomes.values()].filter((o) => o === "removed").length} removed from waiting/, ` +
          `${[...outcomes.values()].filter((o) => o === "deleted").length} deleted, ` +
          `${[...outcomes.values()].filter((o) => o === "gone").length} already done; ${rounds} agent rounds`,
      );
    },
    300_000,
  );
});

describe("retry --restart from CONTCAR", () => {
  test("a TIMEOUT run is continued from its CONTCAR on the cluster and reaches DONE", async () => {
    const R = "chasqui_remote_restart";
    const s = setUp(R, 5);
    const job = `rs${tag}`;
    ok(
      s.run([
        "add",
        s.jobFolder(job, { ...VASP_FILES, INCAR: "NSW = 5\nIBRION = 2\nFAKE_OVERRUN = .TRUE.\n" }),
        "--set",
        "walltime=00:01:00",
      ]),
    );
    syncJson(s);
    // A walltime kill as the job sees it: SIGTERM to every process of the batch step (Slurm's own
    // kill comes only a minute in; templates/cluster.test.ts waits for a real one).
    await waitFor(async () => (await runAsUser(`test -s ${R}/jobs/${job}/WAVECAR`)).code === 0, {
      timeoutMs: 60_000,
      what: "the overrunning run's WAVECAR",
    });
    const sid = byId(s).get(job)!.scheduler_id;
    expect(sid).toMatch(/^\d+$/);
    expect((await runAsUser(`scancel --signal=TERM --full ${sid}`)).code).toBe(0);
    await flagsIn(R, [job], 60_000);
    // The TIMEOUT flag waits for the scheduler to let the job go before it is read.
    await waitFor(
      async () => {
        syncJson(s);
        return byId(s).get(job)?.state === "TIMEOUT";
      },
      { timeoutMs: 60_000, intervalMs: 1000, what: "the job to read TIMEOUT" },
    );
    expect(byId(s).get(job)).toMatchObject({ state: "TIMEOUT", summary: { contcar: "valid" } });

    const before = fs.readFileSync(path.join(s.root, "jobs", job, "POSCAR"), "utf8");
    ok(s.run(["retry", "--restart", job]));
    const resent = syncJson(s);
    expect(resent.uploaded).toEqual([job]);
    expect(
      byId(s)
        .get(job)!
        .history.findLast((h) => h.to === "UPLOADED")!.reason,
    ).toContain("POSCAR from run.1/CONTCAR");
    expect((await runAsUser(`cat ${R}/jobs/${job}/POSCAR`)).stdout).toBe(
      (await runAsUser(`cat ${R}/jobs/${job}/run.1/CONTCAR`)).stdout,
    );
    // WAVECAR came back from run.1/ to where VASP reads it.
    expect((await runAsUser(`ls ${R}/jobs/${job}/run.1`)).stdout).not.toContain("WAVECAR");
    expect((await runAsUser(`cat ${R}/jobs/${job}/WAVECAR`)).stdout).toBe("fake wavefunctions of Si\n");
    await flagsIn(R, [job], 120_000);
    syncJson(s);
    expect(byId(s).get(job)).toMatchObject({ state: "DONE", attempt: 1 });
    // The second run read the first run's structure (the fake VASP echoes its POSCAR into OUTCAR).
    const outcar = (await runAsUser(`cat ${R}/jobs/${job}/OUTCAR`)).stdout;
    expect(outcar).toContain("POSCAR found :  Si [continued]");
    expect(outcar).toContain("0.00010000");
    // The workstation's POSCAR is the user's, untouched.
    expect(fs.readFileSync(path.join(s.root, "jobs", job, "POSCAR"), "utf8")).toBe(before);
  }, 400_000);
});
