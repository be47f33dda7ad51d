// chasqui sync end to end: the compiled binary, the cluster-in-a-box's 2FA port, real Slurm behind
// the PBS wrappers. Six jobs under max_queued=2 feed themselves; request counts do not grow with N.
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { schedulerJobName } from "../../src/core/jobName.ts";
import { type Cluster, countRuns, loadCluster, resetRemote, runAsUser, waitFor } from "../cluster/cluster.ts";
import { BOX_JOBS, clusterLogin, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

let cluster: Cluster;

/** Logins through the 2FA port since this was called, from the test sshd's log. */
function loginCounter(): () => number {
  const log = path.join(cluster.stateDir, "log/sshd.log");
  const count = () => (fs.readFileSync(log, "utf8").match(/Accepted keyboard-interactive/g) ?? []).length;
  const start = count();
  return () => count() - start;
}

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function hashFolder(dir: string): Map<string, string> {
  return new Map(fs.readdirSync(dir).map((f) => [f, sha256(path.join(dir, f))]));
}
// Job names are counted in the scheduler's history, which outlives a test run: make them unique.
const tag = Math.random().toString(36).slice(2, 6);
beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});

function setUp(port: number, maxQueued: number, extra: string[] = []): Sandbox {
  const s = sandbox();
  const init = s.run([
    "init",
    ...clusterLogin(cluster, port),
    ...BOX_JOBS,
    "--max-queued",
    String(maxQueued),
    ...extra,
  ]);
  expect(init.code).toBe(0);
  return s;
}

function sync(s: Sandbox, args: string[] = []) {
  const r = s.run(["sync", "--json", ...args]);
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const listed = (s: Sandbox) =>
  JSON.parse(s.run(["list", "--json"]).stdout) as {
    id: string;
    state: string;
    scheduler_id: string | null;
  }[];

describe("chasqui sync", () => {
  test("six jobs, max_queued=2, through the TOTP port: each submitted once, all DONE", async () => {
    const otp = `${process.execPath} ${path.resolve(import.meta.dir, "../cluster/totp-cli.ts")}`;
    const s = setUp(cluster.totpPort, 2, [
      "--otp-command",
      otp,
      "--remote-dir",
      "chasqui_remote_sync6",
      "--download",
    ]);
    const ids = [1, 2, 3, 4, 5, 6].map((i) => `s${tag}${i}`);
    const folders = ids.map((id) => s.jobFolder(id, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 1\n" }));
    const inputsBefore = folders.map((f) => hashFolder(f));
    expect(s.run(["add", ...folders]).code).toBe(0);
    const logins = loginCounter();

    const dry = s.run(["sync", "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).plan).toHaveLength(6);
    expect(listed(s).every((j) => j.state === "QUEUED_LOCAL")).toBe(true);

    const first = sync(s);
    expect(first.uploaded).toHaveLength(6);
    expect(first.submitted).toHaveLength(2);
    expect(first.ssh_requests).toBe(3);
    expect(logins()).toBe(1);

    // The jobs feed the queue themselves; sample the scheduler while they do. A job that has
    // written its flag is ending (it runs the agent before it exits) and does not count.
    let most = 0;
    const flagged = (ls: string) =>
      new Set(ls.split(/\s+/).map((f) => schedulerJobName(f.replace(/\.flag$/, ""))));
    await waitFor(
      async () => {
        const q = await runAsUser("squeue -h -u chasqui -o %j; echo @; ls chasqui_remote_sync6/completed");
        const [queue = "", flags = ""] = q.stdout.split("@\n");
        const ending = flagged(flags);
        const counted = queue.split("\n").filter((n) => n !== "" && !ending.has(n)).length;
        most = Math.max(most, counted);
        return flags.split(/\s+/).filter((f) => f.endsWith(".flag")).length === 6;
      },
      { timeoutMs: 120_000, intervalMs: 200, what: "six completion flags" },
    );
    expect(most).toBeLessThanOrEqual(2);

    const second = sync(s);
    // The state request and the one download of all six jobs' results, in the same login.
    expect(second.ssh_requests).toBe(2);
    expect(logins()).toBe(2);
    // status reads what that sync saw, without logging in again.
    const status = JSON.parse(s.run(["status", "--json"]).stdout);
    expect(status.last_attempt).toMatchObject({ error: null, waiting: 0 });
    expect(status.last_attempt.queued).toBeGreaterThanOrEqual(0);
    expect(logins()).toBe(2);
    expect(second.downloaded.map((d: { id: string }) => d.id).sort()).toEqual([...ids].sort());
    const jobs = listed(s);
    expect(jobs.map((j) => j.state)).toEqual(ids.map(() => "DONE"));
    for (const id of ids) expect(await countRuns(id)).toBe(1);
    // Every DONE job's results are home, byte for byte what the cluster has; inputs untouched.
    for (const [i, id] of ids.entries()) {
      const remote = await runAsUser(
        `cd chasqui_remote_sync6/jobs/${id} && sha256sum OUTCAR vasprun.xml OSZICAR CONTCAR`,
      );
      expect(remote.code).toBe(0);
      for (const line of remote.stdout.trim().split("\n")) {
        const [sum, name] = line.split(/\s+/);
        expect(sha256(path.join(folders[i]!, name!))).toBe(sum!);
      }
      const after = hashFolder(folders[i]!);
      for (const [name, sum] of inputsBefore[i]!) expect(after.get(name)).toBe(sum);
    }
    // Nothing left to fetch: the next sync is one request again, and one more login.
    const third = sync(s);
    expect(third.ssh_requests).toBe(1);
    expect(third.downloaded).toEqual([]);
    expect(logins()).toBe(3);
    // Each login on the 2FA port needs a fresh 30 s TOTP step: this test waits for a few.
  }, 300_000);

  test("SSH requests per sync are the same for 1 and for 50 jobs", async () => {
    const counts: number[][] = [];
    for (const n of [1, 50]) {
      const s = setUp(cluster.keyPort, 100, [
        "--remote-dir",
        `chasqui_remote_n${n}`,
        "--set",
        "command=true",
      ]);
      const folders = Array.from({ length: n }, (_, i) => s.jobFolder(`n${n}-${i}`));
      expect(s.run(["add", ...folders]).code).toBe(0);
      const first = sync(s);
      expect(first.uploaded).toHaveLength(n);
      const steady = sync(s);
      await waitFor(
        async () =>
          Number((await runAsUser(`ls chasqui_remote_n${n}/completed | wc -l`)).stdout.trim()) === n,
        { timeoutMs: 120_000, intervalMs: 250, what: `${n} completion flags` },
      );
      // All n finished jobs: their states and every result in one more request.
      const withDownload = sync(s, ["--download"]);
      expect(withDownload.downloaded).toHaveLength(n);
      counts.push([first.ssh_requests, steady.ssh_requests, withDownload.ssh_requests]);
    }
    expect(counts[0]).toEqual(counts[1]!);
    expect(counts[0]).toEqual([3, 1, 2]);
  }, 240_000);

  test("a job the scheduler rejects ends FAILED with its message; the store is not touched by --dry-run", () => {
    const s = setUp(cluster.keyPort, 10, ["--remote-dir", "chasqui_remote_badq"]);
    expect(s.run(["add", s.jobFolder("badq"), "--set", "queue=nosuchqueue"]).code).toBe(0);
    const before = s.snapshot();
    expect(s.run(["sync", "--dry-run"]).code).toBe(0);
    expect(s.snapshot()).toEqual(before);
    sync(s);
    const [job] = listed(s) as unknown as { state: string; history: { reason: string }[] }[];
    expect(job!.state).toBe("FAILED");
    expect(job!.history.at(-1)!.reason).toContain("rejected by the scheduler");
    // Nothing new: the next sync changes no job.
    const again = sync(s);
    expect(again.changes).toEqual([]);
    expect(listed(s)).toEqual([job] as never);
  });
});

describe("retry", () => {
  test("a retried job runs again: the old run is kept under run.1/ and its flag does not count", async () => {
    const s = setUp(cluster.keyPort, 10, ["--remote-dir", "chasqui_remote_retry"]);
    expect(
      s.run(["add", s.jobFolder(`rt${tag}`, { ...VASP_FILES, INCAR: "FAKE_FAIL = .TRUE.\n" })]).code,
    ).toBe(0);
    sync(s);
    await waitFor(
      async () => (await runAsUser(`ls chasqui_remote_retry/completed/rt${tag}.flag`)).code === 0,
      {
        timeoutMs: 60_000,
        what: "the failing job's flag",
      },
    );
    sync(s);
    const [failed] = listed(s) as unknown as { state: string; exit_code: number }[];
    expect(failed!.state).toBe("FAILED");
    expect(failed!.exit_code).not.toBe(0);
    expect(s.run(["retry", `rt${tag}`]).code).toBe(0);
    const resent = sync(s);
    expect(resent.uploaded).toEqual([`rt${tag}`]);
    // The first run's flag moved into run.1/, so this sync cannot see the job as finished yet.
    expect(resent.failed).toEqual([]);
    const kept = await runAsUser(`ls chasqui_remote_retry/jobs/rt${tag}/run.1`);
    expect(kept.stdout).toContain("chasqui.flag");
    expect(kept.stdout).toContain("OUTCAR");
    expect(await countRuns(`rt${tag}`)).toBe(2);
  }, 180_000);
});

describe("fixing jobs between syncs", () => {
  test("rm --remote removes the job's folder at the next sync; a job whose template broke stays, the rest go", async () => {
    const remote = "chasqui_remote_fix";
    const s = setUp(cluster.keyPort, 10, ["--remote-dir", remote]);
    const gone = `rm${tag}`;
    expect(s.run(["add", s.jobFolder(gone)]).code).toBe(0);
    sync(s);
    await waitFor(async () => (await runAsUser(`ls ${remote}/completed/${gone}.flag`)).code === 0, {
      timeoutMs: 60_000,
      what: "the job's flag",
    });
    sync(s);
    expect(listed(s)[0]!.state).toBe("DONE");
    expect(s.run(["rm", gone, "--remote"]).code).toBe(0);
    // The job helper came with the first upload, under its versioned name.
    const libDir = path.join(cluster.home, remote, "lib");
    const [lib] = fs.readdirSync(libDir);
    expect(lib).toMatch(/^job-[0-9a-f]{12}\.sh$/);
    const inode = fs.statSync(path.join(libDir, lib!)).ino;

    // A user template that breaks after its jobs were added: those jobs wait, the others go.
    const good = `ok${tag}`;
    const broken = `br${tag}`;
    expect(s.run(["add", s.jobFolder(good)]).code).toBe(0);
    fs.mkdirSync(path.join(s.home, "templates"), { recursive: true });
    fs.writeFileSync(
      path.join(s.home, "templates", "mine.sh.hbs"),
      fs.readFileSync(path.join(import.meta.dir, "../../templates/torque-vasp.sh.hbs"), "utf8"),
    );
    expect(s.run(["add", "--template", "mine", s.jobFolder(broken)]).code).toBe(0);
    fs.writeFileSync(path.join(s.home, "templates", "mine.sh.hbs"), "#!/bin/bash\n{{#if queue}}\n");

    const r = s.run(["sync", "--json"]);
    expect(r.code).toBe(2);
    const summary = JSON.parse(r.stdout);
    expect(summary.uploaded).toEqual([good]);
    expect(summary.not_sent.map((n: { id: string }) => n.id)).toEqual([broken]);
    expect(summary.removed_remote).toEqual([gone]);
    // A later upload leaves the helper alone: jobs may be reading it.
    expect(fs.statSync(path.join(libDir, lib!)).ino).toBe(inode);
    expect(r.stderr).toContain(`1 job(s) not sent, their batch script cannot be rendered: ${broken}`);
    expect((await runAsUser(`ls -d ${remote}/jobs/${gone} ${remote}/completed/${gone}.flag`)).code).not.toBe(
      0,
    );
    const stuck = JSON.parse(s.run(["show", broken, "--json"]).stdout);
    expect(stuck.state).toBe("QUEUED_LOCAL");
    expect(stuck.history.at(-1).reason).toContain('not sent: template "mine" has a syntax error');
    // Said once, not at every sync; and nothing is left to remove.
    const again = JSON.parse(s.run(["sync", "--json"]).stdout);
    expect(again.removed_remote).toEqual([]);
    expect(JSON.parse(s.run(["show", broken, "--json"]).stdout).history).toHaveLength(stuck.history.length);
    expect(JSON.parse(fs.readFileSync(path.join(s.home, "jobs.json"), "utf8")).remote_removals).toEqual([]);
  }, 180_000);
});
