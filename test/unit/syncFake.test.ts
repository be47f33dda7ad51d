// runSync driven through an in-memory cluster: the whole sync (plan, upload, commit, state
// request, reconcile, commit) in milliseconds, case by case. The real-cluster tests in test/e2e
// prove the same paths end to end.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Cluster, StateAsk, StateReport } from "../../src/cluster/port.ts";
import type { UploadJob } from "../../src/cluster/upload.ts";
import { writeConfig } from "../../src/config/configFile.ts";
import type { AgentEvent } from "../../src/core/agentLog.ts";
import { defaultConfig } from "../../src/core/config.ts";
import { type Job, newJob } from "../../src/core/job.ts";
import { parseFlags } from "../../src/core/protocol.ts";
import { parseSchedulerSnapshot } from "../../src/core/schedulerView.ts";
import { NeedsPersonError } from "../../src/errors.ts";
import { openStore } from "../../src/store/jobStore.ts";
import { runSync } from "../../src/sync/runSync.ts";
import { t0 } from "./jobFixtures.ts";

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

/** The cluster as a script: each state request answers with the next of `answers`. */
class FakeCluster implements Cluster {
  uploads: UploadJob[][] = [];
  asks: StateAsk[] = [];
  #requests = 0;
  constructor(private answers: ((ask: StateAsk) => Partial<StateReport>)[]) {}
  async upload(jobs: readonly UploadJob[]) {
    this.#requests += 2;
    this.uploads.push([...jobs]);
    return { restartedFrom: new Map<string, string>(), restartRefused: [] };
  }
  async state(ask: StateAsk): Promise<StateReport> {
    this.#requests += 1;
    this.asks.push(ask);
    const answer = this.answers.shift()?.(ask) ?? {};
    return {
      deployed: null,
      events: [],
      nextCursor: null,
      logRead: null,
      flags: new Map(),
      cancelMarks: new Map(),
      cancelAnswers: new Map(),
      snapshot: { jobs: new Map(), error: null },
      waiting: 0,
      removed: [],
      removeRefused: [],
      ...answer,
    };
  }
  async cancel() {
    this.#requests += 1;
    return new Map();
  }
  async probe() {
    return { facts: new Map<string, string>(), problem: "" };
  }
  route() {
    return [];
  }
  async download() {
    this.#requests += 1;
    return [];
  }
  requests() {
    return this.#requests;
  }
  async close() {}
}

const event = (e: string, jobId: string, detail: string): AgentEvent =>
  ({ at: "2026-12-01T10:00:00Z", event: e, jobId, detail }) as AgentEvent;
const snap = (...lines: string[]) => parseSchedulerSnapshot(`${lines.join("\n")}\n#rc=0\n`, "pbs");

/** A home with a config and the given jobs (their folders hold the four inputs). */
async function home(jobs: ((folder: (id: string) => string) => Job)[]): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-syncfake-"));
  roots.push(root);
  const h = path.join(root, "home");
  await writeConfig(h, { ...defaultConfig("h"), template: "torque-vasp", lost_grace_seconds: 600 });
  const folder = (id: string) => {
    const dir = path.join(root, "jobs", id);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ["POSCAR", "INCAR", "KPOINTS", "POTCAR"]) fs.writeFileSync(path.join(dir, f), `${f}\n`);
    return dir;
  };
  await openStore(h).update((d) => {
    d.jobs.push(...jobs.map((make) => make(folder)));
  });
  return h;
}

const queued = (id: string) => (folder: (id: string) => string) =>
  newJob({ id, name: id, local_path: folder(id), template: "torque-vasp", vars: {}, now: t0 });
const inState =
  (id: string, states: Job["state"][], patch: Partial<Job> = {}) =>
  (folder: (id: string) => string): Job => {
    let j = queued(id)(folder);
    for (const s of states)
      j = { ...j, state: s, history: [...j.history, { at: j.created_at, from: j.state, to: s, reason: s }] };
    return { ...j, ...patch };
  };

async function sync(h: string, cluster: FakeCluster, atSeconds: number) {
  return runSync(h, {
    dryRun: false,
    acceptNewHostKey: false,
    prompter: { interactive: false, ask: async () => "", confirm: async () => false, info: () => {} },
    now: () => new Date(t0.getTime() + atSeconds * 1000),
    openCluster: async () => cluster,
  });
}
const jobOf = async (h: string, id: string) => (await openStore(h).read()).jobs.find((j) => j.id === id)!;

describe("runSync through an in-memory cluster", () => {
  test("upload, SUBMIT, the log cursor kept for the next sync; 3 requests, then 1", async () => {
    const h = await home([queued("a")]);
    const cluster = new FakeCluster([
      () => ({ events: [event("SUBMIT", "a", "5.s")], nextCursor: { offset: 57, head: "first line" } }),
    ]);
    const first = await sync(h, cluster, 10);
    expect(first).toMatchObject({ uploaded: ["a"], submitted: ["a"], ssh_requests: 3 });
    expect(cluster.uploads[0]!.map((j) => j.id)).toEqual(["a"]);
    expect(cluster.uploads[0]![0]!.script).toContain("\njob() {\nmpirun vasp_std\n}\n");
    expect((await openStore(h).read()).log_cursor).toEqual({ offset: 57, head: "first line" });
    // Each sync is a session of its own.
    const next = new FakeCluster([() => ({ snapshot: snap("5.s\ta\tQ\t\t\tQ") })]);
    const second = await sync(h, next, 20);
    expect(second.ssh_requests).toBe(1);
    expect(next.asks[0]!.cursor).toEqual({ offset: 57, head: "first line" });
    // The open job is asked about by its scheduler id.
    expect(next.asks[0]!.open).toEqual(["a=5.s"]);
  });

  test("a scheduler that does not answer: scheduler_error, and no job changes", async () => {
    const h = await home([inState("a", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" })]);
    const before = await jobOf(h, "a");
    const silent = parseSchedulerSnapshot("#error=qselect: cannot connect to server\n#rc=162\n", "pbs");
    const summary = await sync(h, new FakeCluster([() => ({ snapshot: silent })]), 5000);
    expect(summary.scheduler_error).toBe("qselect: cannot connect to server");
    expect(summary.changes).toEqual([]);
    expect(await jobOf(h, "a")).toEqual(before);
  });

  test.each(["M", "U", "S", "H"])("state %s across the grace period: still SUBMITTED", async (letter) => {
    const h = await home([inState("a", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" })]);
    const waits = () => ({ snapshot: snap(`5.s\ta\t${letter}\t\t\t${letter}`) });
    await sync(h, new FakeCluster([waits]), 10);
    await sync(h, new FakeCluster([waits]), 10 + 3600);
    expect(await jobOf(h, "a")).toMatchObject({ state: "SUBMITTED", missing_since: null });
  });

  test("gone without a flag: LOST after the grace period; its flag turning up late makes it DONE", async () => {
    const h = await home([inState("a", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" })]);
    await sync(h, new FakeCluster([() => ({})]), 10);
    expect((await jobOf(h, "a")).state).toBe("SUBMITTED");
    await sync(h, new FakeCluster([() => ({})]), 10 + 600);
    expect((await jobOf(h, "a")).state).toBe("LOST");
    const flags = parseFlags("@a\nDONE\n5.s\n0\n2026-12-01T11:00:00Z\n");
    const late = await sync(h, new FakeCluster([() => ({ flags })]), 2000);
    expect(late.completed).toEqual(["a"]);
    expect((await jobOf(h, "a")).state).toBe("DONE");
  });

  test("a half-written flag (a job killed while writing it, or one made by hand) changes nothing until it is whole", async () => {
    const h = await home([inState("a", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "5.s" })]);
    const running = snap("5.s\ta\tR\t\t\tR");
    for (const partial of ["@a\n", "@a\nDONE\n", "@a\nDONE\n5.s\n0\n", "@a\nDO"]) {
      const s = await sync(
        h,
        new FakeCluster([() => ({ flags: parseFlags(partial), snapshot: running })]),
        10,
      );
      expect({ partial, changes: s.changes }).toEqual({ partial, changes: [] });
      expect((await jobOf(h, "a")).state).toBe("RUNNING");
    }
    const whole = parseFlags("@a\nDONE\n5.s\n0\n2026-12-01T11:00:00Z\n");
    await sync(h, new FakeCluster([() => ({ flags: whole, snapshot: running })]), 20);
    expect((await jobOf(h, "a")).state).toBe("DONE");
  });

  test("a flag whose SUBMIT the sync never saw: DONE straight from UPLOADED", async () => {
    const h = await home([inState("a", ["UPLOADED"])]);
    const flags = parseFlags("@a\nDONE\n9.s\n0\n2026-12-01T11:00:00Z\n");
    const summary = await sync(h, new FakeCluster([() => ({ flags })]), 10);
    expect(summary.completed).toEqual(["a"]);
    expect(await jobOf(h, "a")).toMatchObject({ state: "DONE", scheduler_id: "9.s" });
  });

  test("each sync leaves its outcome and the cluster's numbers for `chasqui status`", async () => {
    const h = await home([inState("a", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" })]);
    // The user's jobs as the scheduler shows them: ours, and two submitted by hand.
    const seen = snap(
      "5.s\ta\tR\t\t\tR",
      "6.s\thand1\tQ\t\t\tQ",
      "7.s\thand2\tR\t\t\tR",
      "2.s\told\tF\t0\t\tF",
    );
    await sync(h, new FakeCluster([() => ({ snapshot: seen, waiting: 4 })]), 10);
    expect((await openStore(h).read()).last_report).toEqual({
      at: new Date(t0.getTime() + 10_000).toISOString(),
      error: null,
      exit_code: null,
      queued: 3,
      running: 2,
      waiting: 4,
    });
    const silent = parseSchedulerSnapshot("#error=qstat: cannot connect\n#rc=255\n", "pbs");
    await sync(h, new FakeCluster([() => ({ snapshot: silent, waiting: 4 })]), 20);
    expect((await openStore(h).read()).last_report).toMatchObject({
      error: "the scheduler did not answer: qstat: cannot connect",
      exit_code: 1,
      queued: null,
    });
    // A sync that failed after the state request (its download cut) keeps what it saw.
    const cut = new FakeCluster([() => ({ snapshot: seen, waiting: 1 })]);
    cut.download = async () => {
      throw new Error("download failed: the connection was cut");
    };
    await openStore(h).update((d) => {
      d.jobs = d.jobs.map((j) => ({ ...j, state: "DONE" as const }));
    });
    const downloading = runSync(h, {
      dryRun: false,
      download: true,
      acceptNewHostKey: false,
      prompter: { interactive: false, ask: async () => "", confirm: async () => false, info: () => {} },
      now: () => new Date(t0.getTime() + 25_000),
      openCluster: async () => cut,
    });
    await expect(downloading).rejects.toThrow("connection was cut");
    expect((await openStore(h).read()).last_report).toMatchObject({
      error: "download failed: the connection was cut",
      queued: 3,
      waiting: 1,
    });
    // A sync that never got an answer says so too.
    const broken = new FakeCluster([]);
    broken.state = async () => {
      throw new Error("the cluster could not report its state: exit 1");
    };
    await expect(sync(h, broken, 30)).rejects.toThrow("could not report its state");
    expect((await openStore(h).read()).last_report).toMatchObject({
      error: "the cluster could not report its state: exit 1",
      exit_code: 1,
    });
    // A login that needs a person is kept as such (notifications tell it once, not every run).
    const login = runSync(h, {
      dryRun: false,
      acceptNewHostKey: false,
      prompter: { interactive: false, ask: async () => "", confirm: async () => false, info: () => {} },
      now: () => new Date(t0.getTime() + 40_000),
      openCluster: async () => {
        throw new NeedsPersonError("h asks for a one-time code and there is no terminal");
      },
    });
    await expect(login).rejects.toThrow("one-time code");
    expect((await openStore(h).read()).last_report).toMatchObject({ exit_code: 3, queued: null });
  });

  test("rm --remote: the ids go with the state request and are forgotten once removed", async () => {
    const h = await home([]);
    await openStore(h).update((d) => {
      d.remote_removals = ["old1", "old2"];
    });
    const cluster = new FakeCluster([
      (ask) => ({ removed: [...ask.remove].slice(0, 1), removeRefused: ["old2"] }),
    ]);
    const summary = await sync(h, cluster, 10);
    expect(cluster.asks[0]!.remove).toEqual(["old1", "old2"]);
    expect(summary.removed_remote).toEqual(["old1"]);
    expect(summary.warnings.join("\n")).toContain("old2: not removed on the cluster");
    expect((await openStore(h).read()).remote_removals).toEqual([]);
  });
});
