// The real agent.sh against a fake PBS Professional: order, limits, failure classes, recovery,
// the lock, and many triggers at once.
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  addSchedJob,
  addWaiting,
  agent,
  agentAsync,
  deadPid,
  events,
  finishJobs,
  jobEvents,
  logText,
  ls,
  qsubCallLines,
  qsubCalls,
  type Sandbox,
  sandboxesPerTest,
  schedJobs,
  setMode,
  violations,
} from "./helpers.ts";

const box = sandboxesPerTest();

const T0 = 1_800_000_000;

describe("submission order and the work folder", () => {
  test("oldest first by modification time, then by name", () => {
    const sb = box();
    addWaiting(sb, "late", { mtime: T0 + 50 });
    addWaiting(sb, "b-same", { mtime: T0 + 10 });
    addWaiting(sb, "a-same", { mtime: T0 + 10 });
    addWaiting(sb, "first", { mtime: T0 });
    const r = agent(sb, ["run"]);
    expect(r.code).toBe(0);
    expect(qsubCalls(sb)).toEqual(["first", "a-same", "b-same", "late"]);
    expect(ls(sb, "submitted")).toEqual(["a-same", "b-same", "first", "late"]);
    expect(ls(sb, "waiting")).toEqual([]);
    expect(jobEvents(sb)).toEqual([
      "SUBMIT first 0.fakehost",
      "SUBMIT a-same 1.fakehost",
      "SUBMIT b-same 2.fakehost",
      "SUBMIT late 3.fakehost",
    ]);
  });

  test("qsub runs in the job's work folder with -o/-e into it", () => {
    const sb = box();
    addWaiting(sb, "job1");
    agent(sb, ["run"]);
    const [call] = qsubCallLines(sb);
    const wd = path.join(sb.work, "job1");
    expect(call?.cwd).toBe(wd);
    expect(call?.args).toContain(`-o ${wd}/chasqui.out`);
    expect(call?.args).toContain(`-e ${wd}/chasqui.err`);
  });

  test("a missing work folder is a SUBMIT_ERROR, not a qsub", () => {
    const sb = box();
    addWaiting(sb, "nowork", { workDir: false });
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual([]);
    expect(ls(sb, "rejected")).toEqual(["nowork"]);
    expect(jobEvents(sb)[0]).toStartWith("SUBMIT_ERROR nowork work folder");
  });

  test("every log line is <UTC time>\\t<EVENT>\\t<job>\\t<detail>", () => {
    const sb = box();
    addWaiting(sb, "x1");
    addWaiting(sb, "x2", { queue: "nosuch" });
    agent(sb, ["run"]);
    const lines = logText(sb).split("\n").filter(Boolean);
    expect(lines.length).toBe(4);
    for (const l of lines)
      expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\t[A-Z_]+\t[A-Za-z0-9._-]+\t[^\t]*$/);
    expect(events(sb).map((e) => e.event)).toEqual(["START", "SUBMIT", "SUBMIT_ERROR", "END"]);
  });

  test("nothing waiting: no scheduler query and no log lines", () => {
    const sb = box({ commands: [] });
    expect(agent(sb, ["run"]).code).toBe(0);
    expect(logText(sb)).toBe("");
  });
});

describe("limits", () => {
  test("hand-submitted and running jobs count toward MAX_QUEUED; one DEFER line per round", () => {
    const sb = box({ conf: { MAX_QUEUED: 3 }, cap: 3 });
    addSchedJob(sb, "byhand1", "R");
    addSchedJob(sb, "byhand2", "Q");
    addSchedJob(sb, "other", "Q", "someoneelse");
    addSchedJob(sb, "old", "F");
    for (let i = 0; i < 4; i++) addWaiting(sb, `j${i}`, { mtime: T0 + i });
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["j0"]);
    const defers = jobEvents(sb).filter((e) => e.startsWith("DEFER"));
    expect(defers).toEqual(["DEFER j1 max_queued 3 reached (3 queued or running); 3 waiting"]);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["j0"]);
    expect(jobEvents(sb).filter((e) => e.startsWith("DEFER")).length).toBe(2);
    finishJobs(sb, ["byhand1", "byhand2"]);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["j0", "j1", "j2"]);
    expect(ls(sb, "waiting")).toEqual(["j3"]);
    expect(violations(sb)).toBe("");
  });

  test("MAX_RUNNING: no submission while that many of the user's jobs run", () => {
    const sb = box({ conf: { MAX_QUEUED: 10, MAX_RUNNING: 1 } });
    addSchedJob(sb, "busy", "R");
    addWaiting(sb, "w1");
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual([]);
    expect(jobEvents(sb)).toEqual(["DEFER w1 max_running 1 reached (1 running); 1 waiting"]);
  });

  test.each([
    ["limit", "qsub: would exceed complex's per-user limit"],
    ["limit-user", "qsub: Maximum number of jobs for user tester already in complex"],
  ])("PBS Pro limit message (%s) → DEFER, back to waiting, no more qsub this round", (mode, message) => {
    const sb = box();
    setMode(sb, mode);
    addWaiting(sb, "l1", { mtime: T0 });
    addWaiting(sb, "l2", { mtime: T0 + 1 });
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["l1"]);
    expect(ls(sb, "waiting")).toEqual(["l1", "l2"]);
    expect(jobEvents(sb)).toEqual([`DEFER l1 ${message.replace("tester", "pbsuser")}; 2 waiting`]);
  });
});

describe("failures", () => {
  test("Unknown queue → rejected/ with SUBMIT_ERROR and the scheduler's message; the next job goes on", () => {
    const sb = box();
    addWaiting(sb, "bad", { queue: "nosuch", mtime: T0 });
    addWaiting(sb, "good", { mtime: T0 + 1 });
    agent(sb, ["run"]);
    expect(ls(sb, "rejected")).toEqual(["bad"]);
    expect(ls(sb, "submitted")).toEqual(["good"]);
    expect(jobEvents(sb)).toEqual(["SUBMIT_ERROR bad qsub: Unknown queue", "SUBMIT good 0.fakehost"]);
  });

  test.each(["submitted-then-fail", "killed"])(
    "ambiguous failure (%s) but the job exists → RECOVER with its id, no second qsub",
    (mode) => {
      const sb = box();
      addSchedJob(sb, "amb", "F"); // an older job of the same name must not be taken for this one
      setMode(sb, `once-${mode}`, "amb");
      addWaiting(sb, "amb");
      agent(sb, ["run"]);
      agent(sb, ["run"]);
      expect(qsubCalls(sb)).toEqual(["amb"]);
      expect(ls(sb, "submitted")).toEqual(["amb"]);
      expect(jobEvents(sb)).toEqual(["RECOVER amb 1.fakehost"]);
    },
  );

  test("ambiguous failure and no such job → RETRY, back to waiting, round stops; next round submits", () => {
    const sb = box();
    setMode(sb, "once-fail", "r1");
    addWaiting(sb, "r1", { mtime: T0 });
    addWaiting(sb, "r2", { mtime: T0 + 1 });
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["r1"]);
    expect(ls(sb, "waiting")).toEqual(["r1", "r2"]);
    expect(jobEvents(sb)).toEqual([
      "RETRY r1 qsub: Error (15031) something unclear; no job named r1 in the scheduler",
    ]);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["r1", "r1", "r2"]);
    expect(ls(sb, "submitted")).toEqual(["r1", "r2"]);
  });

  test("after a RETRY the job is looked for by name again: a late arrival is RECOVERed, not resubmitted", () => {
    const sb = box();
    setMode(sb, "once-fail", "slow");
    addWaiting(sb, "slow");
    agent(sb, ["run"]);
    expect(jobEvents(sb)[0]).toStartWith("RETRY slow");
    const id = addSchedJob(sb, "slow", "Q"); // the server processed the first qsub after all
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["slow"]);
    expect(jobEvents(sb)[1]).toBe(`RECOVER slow ${id}`);
    expect(ls(sb, "submitted")).toEqual(["slow"]);
  });

  test("qsub exits 0 without an id → ambiguous, found by name", () => {
    const sb = box();
    setMode(sb, "once-noid", "quiet");
    addWaiting(sb, "quiet");
    agent(sb, ["run"]);
    expect(jobEvents(sb)[0]).toStartWith("RETRY quiet qsub exited 0 without a job id");
  });

  test("an ambiguous failure for a script without a job name is parked in rejected/, never resubmitted", () => {
    const sb = box();
    setMode(sb, "fail");
    addWaiting(sb, "anon", { name: null });
    agent(sb, ["run"]);
    expect(ls(sb, "rejected")).toEqual(["anon"]);
    expect(jobEvents(sb)[0]).toStartWith("SUBMIT_ERROR anon unclear qsub failure");
  });
});

describe("a dead agent's submitting/", () => {
  test("found by name → RECOVER; not found → RETRY then submitted; a fresh claim is left alone", () => {
    const sb = box();
    addWaiting(sb, "done-it", { dir: "submitting" });
    const id = addSchedJob(sb, "done-it", "R");
    addWaiting(sb, "lost-it", { dir: "submitting" });
    addWaiting(sb, "in-flight", { dir: "submitting" });
    fs.writeFileSync(path.join(sb.R, "submitting/in-flight.claim"), `${Math.floor(Date.now() / 1000)}\n`);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual([]);
    expect(ls(sb, "submitted")).toEqual(["done-it"]);
    expect(ls(sb, "waiting")).toEqual(["lost-it"]);
    expect(ls(sb, "submitting")).toEqual(["in-flight"]);
    expect(jobEvents(sb)).toEqual([
      `RECOVER done-it ${id}`,
      "RETRY lost-it left in submitting/ by an agent that died; no job named lost-it in the scheduler",
    ]);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["lost-it"]);
    expect(ls(sb, "submitted")).toEqual(["done-it", "lost-it"]);
  });

  test("an earlier run of the same job id (logged SUBMIT) is not taken for the lost submission", () => {
    const sb = box();
    const old = addSchedJob(sb, "again", "F");
    fs.writeFileSync(path.join(sb.R, "agent.log"), `2026-01-01T00:00:00Z\tSUBMIT\tagain\t${old}\n`);
    addWaiting(sb, "again", { dir: "submitting" });
    agent(sb, ["run"]);
    expect(jobEvents(sb).slice(1)).toEqual([
      "RETRY again left in submitting/ by an agent that died; no job named again in the scheduler",
    ]);
  });
});

describe("the lock", () => {
  const host = os.hostname();
  function writeLock(sb: Sandbox, owner: string, ageMinutes = 0): void {
    const dir = path.join(sb.R, "agent.lock");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "owner"), owner);
    if (ageMinutes) {
      const t = Date.now() / 1000 - ageMinutes * 60;
      fs.utimesSync(dir, t, t);
    }
  }

  test("a lock of a dead pid on this host is broken", () => {
    const sb = box();
    writeLock(sb, `${host} ${deadPid()} ${Math.floor(Date.now() / 1000)}\n`);
    addWaiting(sb, "s1");
    expect(agent(sb, ["run"]).code).toBe(0);
    expect(qsubCalls(sb)).toEqual(["s1"]);
    expect(fs.existsSync(path.join(sb.R, "agent.lock"))).toBe(false);
  });

  test("a lock from another host older than 10 minutes is broken; a fresh one is respected", () => {
    const sb = box();
    const now = Math.floor(Date.now() / 1000);
    writeLock(sb, `elsewhere 12345 ${now - 60}\n`);
    addWaiting(sb, "s2");
    const busy = agent(sb, ["run"]);
    expect(busy.code).toBe(75);
    expect(agent(sb, ["trigger"]).code).toBe(0);
    expect(qsubCalls(sb)).toEqual([]);
    expect(fs.existsSync(path.join(sb.R, "agent.pending"))).toBe(true);
    fs.writeFileSync(path.join(sb.R, "agent.lock/owner"), `elsewhere 12345 ${now - 700}\n`);
    expect(agent(sb, ["trigger"]).code).toBe(0);
    expect(qsubCalls(sb)).toEqual(["s2"]);
    expect(fs.existsSync(path.join(sb.R, "agent.pending"))).toBe(false);
  });

  test("a lock folder without an owner is stale only when old", () => {
    const sb = box();
    fs.mkdirSync(path.join(sb.R, "agent.lock"));
    addWaiting(sb, "s3");
    expect(agent(sb, ["run"]).code).toBe(75);
    const t = Date.now() / 1000 - 11 * 60;
    fs.utimesSync(path.join(sb.R, "agent.lock"), t, t);
    expect(agent(sb, ["run"]).code).toBe(0);
    expect(qsubCalls(sb)).toEqual(["s3"]);
  });

  test("agents breaking the same stale lock at once: exactly one runs at a time, each job once", async () => {
    const sb = box({ conf: { MAX_QUEUED: 100 } });
    writeLock(sb, `${host} ${deadPid()} ${Math.floor(Date.now() / 1000)}\n`);
    for (let i = 0; i < 10; i++) addWaiting(sb, `b${i}`, { mtime: T0 + i });
    const runs = await Promise.all(Array.from({ length: 8 }, () => agentAsync(sb, ["trigger"])));
    expect(runs.every((r) => r.code === 0)).toBe(true);
    expect(qsubCalls(sb).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`).sort());
    expect(violations(sb)).toBe("");
  });

  test("a trigger during a run makes the holder loop (agent.pending)", () => {
    const sb = box();
    addWaiting(sb, "p1");
    // While p1 is being submitted, a new job lands in waiting/ and its trigger finds the lock held.
    fs.writeFileSync(
      path.join(sb.sched, "on_qsub"),
      `rm -f "$FAKE_SCHED/on_qsub"
mkdir -p "${sb.work}/p2"
printf '#!/bin/bash\\n#PBS -N p2\\n' >"${sb.R}/waiting/p2.sh"
bash "${sb.R}/agent.sh" trigger
`,
    );
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["p1", "p2"]);
    expect(events(sb).filter((e) => e.event === "START").length).toBe(2);
  });

  test("without agent.pending the holder does not loop", () => {
    const sb = box();
    addWaiting(sb, "p1");
    fs.writeFileSync(
      path.join(sb.sched, "on_qsub"),
      `rm -f "$FAKE_SCHED/on_qsub"
mkdir -p "${sb.work}/p2"
printf '#!/bin/bash\\n#PBS -N p2\\n' >"${sb.R}/waiting/p2.sh"
`,
    );
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["p1"]);
    expect(ls(sb, "waiting")).toEqual(["p2"]);
  });
});

describe("many triggers at once", () => {
  test("two concurrent triggers: every job once", async () => {
    const sb = box({ conf: { MAX_QUEUED: 50 }, cap: 50 });
    for (let i = 0; i < 12; i++) addWaiting(sb, `t${i}`, { mtime: T0 + i });
    await Promise.all([agentAsync(sb, ["trigger"]), agentAsync(sb, ["trigger"])]);
    expect(qsubCalls(sb)).toEqual(Array.from({ length: 12 }, (_, i) => `t${i}`));
    expect(violations(sb)).toBe("");
  });

  test("a burst of 20 parallel triggers: each job exactly once, MAX_QUEUED never exceeded", async () => {
    const sb = box({ conf: { MAX_QUEUED: 7 }, cap: 7 });
    const names = Array.from({ length: 15 }, (_, i) => `burst${String(i).padStart(2, "0")}`);
    names.forEach((n, i) => {
      addWaiting(sb, n, { mtime: T0 + i });
    });
    const burst = () => Promise.all(Array.from({ length: 20 }, () => agentAsync(sb, ["trigger"])));
    let rounds = 0;
    while (ls(sb, "waiting").length > 0 && rounds < 5) {
      const runs = await burst();
      expect(runs.every((r) => r.code === 0)).toBe(true);
      const unfinished = schedJobs(sb).filter((j) => j.state !== "F").length;
      expect(unfinished).toBeLessThanOrEqual(7);
      finishJobs(sb);
      rounds++;
    }
    expect(rounds).toBe(3);
    expect(qsubCalls(sb)).toEqual(names);
    expect(ls(sb, "submitted")).toEqual(names);
    expect(violations(sb)).toBe("");
    expect(fs.existsSync(path.join(sb.R, "agent.lock"))).toBe(false);
  });
});

describe("trigger --from-job", () => {
  test("no qsub on the node: harmless, scripts stay in waiting/", () => {
    const sb = box({ commands: ["qstat", "qselect"] });
    addWaiting(sb, "f1");
    expect(agent(sb, ["trigger", "--from-job"]).code).toBe(0);
    expect(ls(sb, "waiting")).toEqual(["f1"]);
    expect(ls(sb, "rejected")).toEqual([]);
  });

  test("qsub refused inside a job: left in waiting/ for the next sync, never rejected", () => {
    const sb = box();
    setMode(sb, "reject-unauth");
    addWaiting(sb, "f2");
    expect(agent(sb, ["trigger", "--from-job"], { PBS_JOBID: "99.fakehost" }).code).toBe(0);
    expect(ls(sb, "waiting")).toEqual(["f2"]);
    expect(ls(sb, "rejected")).toEqual([]);
    expect(jobEvents(sb)).toEqual([
      "DEFER f2 refused from inside a job, left for the next sync: qsub: Unauthorized Request",
    ]);
    // The same refusal outside a job is a rejection.
    agent(sb, ["trigger"]);
    expect(ls(sb, "rejected")).toEqual(["f2"]);
  });

  test("the calling job, about to end, does not count toward the limit", () => {
    const sb = box({ conf: { MAX_QUEUED: 1 } });
    const self = addSchedJob(sb, "caller", "R");
    addWaiting(sb, "next");
    agent(sb, ["trigger", "--from-job"], { PBS_JOBID: self });
    expect(qsubCalls(sb)).toEqual(["next"]);
  });

  test("scheduler unreachable: no submission, END says why", () => {
    const sb = box();
    fs.writeFileSync(path.join(sb.sched, "qstat.fail"), "");
    addWaiting(sb, "f3");
    agent(sb, ["trigger", "--from-job"]);
    expect(qsubCalls(sb)).toEqual([]);
    const end = events(sb).find((e) => e.event === "END");
    expect(end?.detail).toStartWith(
      "scheduler query failed (rc=162): Connection refused qselect: cannot connect",
    );
  });
});

describe("agent.conf and commands", () => {
  test("KEY=VALUE lines are parsed, not sourced; comments, CRLF and junk are ignored", () => {
    const sb = box();
    const marker = path.join(sb.root, "sourced");
    fs.writeFileSync(
      path.join(sb.R, "agent.conf"),
      `# comment\r\nSCHEDULER=pbs\r\nMAX_QUEUED=1\r\nMAX_RUNNING=abc\r\nWORK_ROOT=${sb.work}\r\n$(touch ${marker})\r\ntouch ${marker}\r\n`,
    );
    addWaiting(sb, "c1", { mtime: T0 });
    addWaiting(sb, "c2", { mtime: T0 + 1 });
    agent(sb, ["run"]);
    expect(fs.existsSync(marker)).toBe(false);
    expect(qsubCalls(sb)).toEqual(["c1"]);
  });

  test("an unknown SCHEDULER is refused", () => {
    const sb = box();
    fs.writeFileSync(path.join(sb.R, "agent.conf"), "SCHEDULER=lsf\n");
    addWaiting(sb, "c3");
    const r = agent(sb, ["run"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("SCHEDULER must be pbs or slurm");
  });

  test("unknown command: usage, exit 2", () => {
    const sb = box();
    const r = agent(sb, ["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("usage:");
  });
});
