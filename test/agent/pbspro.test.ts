// The agent as PBS Professional really behaves: its snapshot read from real OpenPBS 23.06
// captures (deleted, walltime, can-never-run, server down), questions to the server that stay
// bounded whatever the user's history, temporary files that survive the job's end, and the
// trigger from inside a job (time-bounded, or run on trigger_host).
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseFlags } from "../../src/core/protocol.ts";
import { reconcile } from "../../src/core/reconcile.ts";
import { parseSchedulerSnapshot } from "../../src/core/schedulerView.ts";
import { jobIn, later } from "../unit/jobFixtures.ts";
import {
  addSchedJob,
  addWaiting,
  agent,
  events,
  jobEvents,
  ls,
  qsubCalls,
  readText,
  type Sandbox,
  sandboxesPerTest,
  setMode,
} from "./helpers.ts";

const box = sandboxesPerTest();

const REPLAY = path.join(import.meta.dir, "replaypbs.sh");

/** A sandbox whose qstat/qselect play back real captures of user pbsuser. */
function replayBox(lines: Record<string, string>): Sandbox {
  const sb = box({ commands: [] });
  for (const c of ["qstat", "qselect", "qsub"]) fs.symlinkSync(REPLAY, path.join(sb.bin, c));
  fs.writeFileSync(
    path.join(sb.sched, "replay"),
    Object.entries(lines)
      .map(([k, v]) => `${k}\t${v}\n`)
      .join(""),
  );
  sb.env.USER = "pbsuser";
  return sb;
}

const CAPTURED = {
  "qselect -u pbsuser": "qselect_u",
  "qselect -u pbsuser -s RE": "qselect_s_R",
  "qstat -f -x 13.pbshost": "qstat_xf_deleted_running",
  "qstat -f -x 16.pbshost": "qstat_xf_deleted_queued",
  "qstat -f -x 2.pbshost": "qstat_xf_wtdef",
  "qstat -f -x 18.pbshost": "qstat_f_toobig",
  "qstat -f -x 4.pbshost": "qstat_xf_okjob",
  "qstat -f -x 5.pbshost": "qstat_xf_failjob",
};

function connections(sb: Sandbox): string[] {
  return readText(path.join(sb.sched, "connections")).split("\n").filter(Boolean);
}

describe("the snapshot, from real PBS Professional captures", () => {
  const ids = ["13.pbshost", "16.pbshost", "2.pbshost", "18.pbshost", "4.pbshost", "5.pbshost"];

  test("state, Exit_status and comment of each job asked about; the user's other jobs by id", () => {
    const sb = replayBox(CAPTURED);
    const r = agent(sb, ["snapshot", ...ids]);
    expect(r.stdout).toEndWith("#rc=0\n");
    const snap = parseSchedulerSnapshot(r.stdout, "pbs");
    expect(snap.error).toBeNull();
    const jobs = snap.jobs!;
    expect(jobs.get("13.pbshost")!.ending).toMatchObject({ how: "deleted", exit: 271, neverRan: false });
    expect(jobs.get("13.pbshost")!.ending!.words).toContain("terminated by pbsuser@pbshost");
    expect(jobs.get("16.pbshost")!.ending).toMatchObject({ how: "deleted", exit: null, neverRan: true });
    expect(jobs.get("2.pbshost")!.ending).toMatchObject({ how: "walltime", exit: -29 });
    expect(jobs.get("4.pbshost")!.ending).toMatchObject({ how: "exit", exit: 0 });
    expect(jobs.get("5.pbshost")!.ending).toMatchObject({ how: "exit", exit: 3 });
    const toobig = jobs.get("18.pbshost")!;
    expect(toobig).toMatchObject({ active: true, running: false, neverRuns: true, ending: null });
    expect(toobig.comment).toStartWith("Can Never Run: Insufficient amount of resource: ncpus");
    // The user's other unfinished jobs come from qselect: running or not, no names needed.
    expect(jobs.get("12.pbshost")).toMatchObject({ state: "R", running: true });
    expect(jobs.get("14.pbshost")).toMatchObject({ state: "Q", active: true, running: false });
  });

  test("what the sync makes of them: qdel'd running → CANCELLED, queued → CANCELLED at once, -29 → TIMEOUT", () => {
    const sb = replayBox(CAPTURED);
    const snap = parseSchedulerSnapshot(agent(sb, ["snapshot", ...ids]).stdout, "pbs");
    const running = (id: string, sid: string) =>
      jobIn(id, ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: sid });
    const jobs = [
      running("qdeleted", "13.pbshost"),
      jobIn("qdel_queued", ["UPLOADED", "SUBMITTED"], { scheduler_id: "16.pbshost" }),
      running("walltime", "2.pbshost"),
      jobIn("toobig", ["UPLOADED", "SUBMITTED"], { scheduler_id: "18.pbshost" }),
    ];
    const flags = parseFlags(
      "@qdeleted\nTIMEOUT\n13.pbshost\n143\n2026-11-29T08:24:13Z\n@walltime\nTIMEOUT\n2.pbshost\n143\n2026-11-29T08:24:00Z\n",
    );
    const r = reconcile(jobs, { events: [], flags, snapshot: snap.jobs }, later(60), 600);
    const by = new Map(r.jobs.map((j) => [j.id, j]));
    expect(by.get("qdeleted")!.state).toBe("CANCELLED");
    expect(by.get("qdeleted")!.history.at(-1)!.reason).toContain("deleted in the scheduler outside chasqui");
    expect(by.get("qdeleted")!.history.at(-1)!.reason).toContain("Exit_status 271");
    expect(by.get("qdel_queued")!.state).toBe("CANCELLED");
    expect(by.get("qdel_queued")!.history.at(-1)!.reason).toContain("before it started");
    expect(by.get("walltime")!.state).toBe("TIMEOUT");
    expect(by.get("walltime")!.history.at(-1)!.reason).toContain(
      "walltime reached (job_state F, Exit_status -29",
    );
    expect(by.get("toobig")!.state).toBe("SUBMITTED");
    expect(by.get("toobig")!.scheduler_note).toStartWith("Can Never Run: Insufficient amount of resource");
  });

  test("a TIMEOUT flag while the scheduler still runs the job, or cannot be asked: no verdict yet", () => {
    const job = jobIn("ending", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "12.pbshost" });
    const flags = parseFlags("@ending\nTIMEOUT\n12.pbshost\n143\n2026-11-29T08:24:13Z\n");
    const sb = replayBox(CAPTURED);
    const snap = parseSchedulerSnapshot(agent(sb, ["snapshot"]).stdout, "pbs");
    expect(reconcile([job], { events: [], flags, snapshot: snap.jobs }, later(60), 600).jobs[0]!.state).toBe(
      "RUNNING",
    );
    expect(reconcile([job], { events: [], flags, snapshot: null }, later(60), 600).jobs[0]!.state).toBe(
      "RUNNING",
    );
  });

  test("the server down: the snapshot says so (#error, rc 162) and means no information", () => {
    const sb = replayBox({ ...CAPTURED, "qselect -u pbsuser": "qselect_server_down" });
    const r = agent(sb, ["snapshot", "13.pbshost"]);
    expect(r.stdout).toContain(
      "#error=Connection refused qselect: cannot connect to server pbshost (errno=15010)",
    );
    expect(r.stdout).toEndWith("#rc=162\n");
    const snap = parseSchedulerSnapshot(r.stdout, "pbs");
    expect(snap.jobs).toBeNull();
    expect(snap.error).toContain("cannot connect to server pbshost");
  });

  test("the server down during a run: nothing submitted, END names the error", () => {
    const sb = replayBox({ "qselect -u pbsuser": "qselect_server_down" });
    addWaiting(sb, "w1");
    agent(sb, ["run"]);
    expect(ls(sb, "waiting")).toEqual(["w1"]);
    const end = events(sb).find((e) => e.event === "END");
    expect(end?.detail).toBe(
      "scheduler query failed (rc=162): Connection refused qselect: cannot connect to server pbshost (errno=15010)",
    );
  });
});

describe("questions to the server stay bounded whatever the history", () => {
  /** A fake PBS that remembers `history` finished jobs of the user (and some of others). */
  function withHistory(history: number): Sandbox {
    const sb = box({ conf: { MAX_QUEUED: 40 } });
    const lines: string[] = [];
    for (let i = 0; i < history; i++)
      lines.push(`${i}\told${i}\tF\t${i % 5 === 0 ? "other" : "tester"}\t0\n`);
    fs.writeFileSync(path.join(sb.sched, "jobs"), lines.join(""));
    fs.writeFileSync(path.join(sb.sched, "seq"), `${history}\n`);
    addSchedJob(sb, "mine_running", "R");
    addSchedJob(sb, "mine_queued", "Q");
    return sb;
  }

  test("an agent run: 2 connections for the limits + 1 name check per submission, for 10 or 5,000 old jobs", () => {
    const counts: number[] = [];
    for (const history of [10, 5000]) {
      const sb = withHistory(history);
      for (const id of ["a", "b", "c"]) addWaiting(sb, id);
      agent(sb, ["run"]);
      expect(qsubCalls(sb)).toEqual(["a", "b", "c"]);
      // qsub itself is not recorded as a query; the fake counts qstat/qselect connections.
      counts.push(connections(sb).length);
      expect(connections(sb).filter((c) => c.startsWith("qstat"))).toEqual([]);
    }
    expect(counts).toEqual([2 + 3, 2 + 3]);
  });

  test("without qselect (Slurm's PBS wrappers): one listing of every job per round, not one per submission", () => {
    const sb = box({ conf: { MAX_QUEUED: 40 }, commands: ["qsub", "qstat"] });
    addSchedJob(sb, "mine_running", "R");
    for (const id of ["a", "b", "c", "d"]) addWaiting(sb, id);
    agent(sb, ["run"]);
    expect(qsubCalls(sb)).toEqual(["a", "b", "c", "d"]);
    // Two listings of every job: the limits, then the names known before the first qsub (the
    // fake records both as "all"); one per submission before.
    expect(connections(sb)).toEqual(["qstat\tall", "qstat\tall"]);
    // A qsub in doubt is still looked up afresh (by name, history included), never from that list.
    const doubt = box({ conf: { MAX_QUEUED: 40 }, commands: ["qsub", "qstat"] });
    setMode(doubt, "submitted-then-fail", "e");
    addWaiting(doubt, "e");
    agent(doubt, ["run"]);
    expect(jobEvents(doubt)[0]).toStartWith("RECOVER e");
    expect(connections(doubt)).toEqual(["qstat\tall", "qstat\tall", "qstat\tall"]);
  });

  test("a snapshot: 2 connections + one per open job asked about, never one per old job", () => {
    const counts: number[] = [];
    for (const history of [10, 5000]) {
      const sb = withHistory(history);
      const running = `${history}.fakehost`;
      const r = agent(sb, ["snapshot", running, "3.fakehost"]);
      expect(r.stdout).toContain(`${running}\tmine_running\tR\t`);
      expect(r.stdout).toContain("3.fakehost\told3\tF\t0\t");
      expect(r.stdout).toEndWith("#rc=0\n");
      counts.push(connections(sb).length);
    }
    expect(counts).toEqual([4, 4]);
  });

  test("ids that are not scheduler ids never reach qstat", () => {
    const sb = withHistory(3);
    agent(sb, ["snapshot", "-x", "--help", "$(id)", "a b"]);
    expect(connections(sb)).toEqual(["qselect\t-u tester", "qselect\t-u tester -s RE"]);
  });
});

describe("inside a batch job", () => {
  test("temporary files live under the remote folder: the job's $TMPDIR vanishing mid-run changes nothing", () => {
    const sb = box();
    const jobTmp = path.join(sb.root, "pbs.42");
    fs.mkdirSync(jobTmp);
    // PBS removes /var/tmp/pbs.<jobid> when the job ends, while the trigger may still run.
    fs.writeFileSync(path.join(sb.sched, "on_qsub"), `rm -rf '${jobTmp}'\n`);
    for (const id of ["t1", "t2"]) addWaiting(sb, id);
    const r = agent(sb, ["trigger", "--from-job"], { TMPDIR: jobTmp, PBS_JOBID: "42.fakehost" });
    expect(r.code).toBe(0);
    expect(jobEvents(sb)).toEqual(["SUBMIT t1 0.fakehost", "SUBMIT t2 1.fakehost"]);
    expect(fs.readdirSync(sb.R).filter((f) => f.startsWith(".tmp."))).toEqual([]);
  });

  test("--within: no qsub starts once the job's time for the trigger is up; the rest waits", () => {
    const sb = box();
    fs.writeFileSync(path.join(sb.sched, "on_qsub"), "sleep 1.5\n");
    for (const id of ["s1", "s2", "s3", "s4"])
      addWaiting(sb, id, { mtime: 1_800_000_000 + id.charCodeAt(1) });
    agent(sb, ["trigger", "--from-job", "--within", "4"], { PBS_JOBID: "7.fakehost" });
    const submitted = qsubCalls(sb);
    expect(submitted.length).toBeGreaterThanOrEqual(1);
    expect(submitted.length).toBeLessThan(4);
    const defer = events(sb).find((e) => e.event === "DEFER");
    expect(defer?.detail).toContain("the job's time for this trigger is up");
    expect(ls(sb, "waiting").length).toBe(4 - submitted.length);
  });

  test("trigger_host: the run happens there by ssh, for the calling job; an unreachable host submits nothing", () => {
    const sb = box({ conf: { TRIGGER_HOST: "login1", MAX_QUEUED: 1 } });
    // The cluster's own ssh, played by a script that runs the remote command here.
    const sshLog = path.join(sb.root, "ssh.log");
    fs.writeFileSync(
      path.join(sb.bin, "ssh"),
      `#!/bin/bash\nprintf '%s\\n' "$*" >>'${sshLog}'\nfor last; do :; done\n[ -e '${sb.root}/down' ] && { echo "ssh: connect to host login1 port 22: No route to host" >&2; exit 255; }\nSSH_CONNECTION="10.0.0.9 5 10.0.0.1 22" exec bash -c "$last"\n`,
      { mode: 0o755 },
    );
    const self = addSchedJob(sb, "caller", "R");
    addWaiting(sb, "next");
    let r = agent(sb, ["trigger", "--from-job"], { PBS_JOBID: self });
    expect(r.code).toBe(0);
    expect(qsubCalls(sb)).toEqual(["next"]);
    const call = readText(sshLog);
    expect(call).toContain("-o BatchMode=yes");
    expect(call).toContain("login1");
    expect(call).toContain(`trigger --from-job --here --within 58 --job ${self}`);
    expect(events(sb).find((e) => e.event === "START")?.detail).toContain(`from job ${self} via 10.0.0.9`);

    fs.writeFileSync(path.join(sb.root, "down"), "");
    addWaiting(sb, "later");
    r = agent(sb, ["trigger", "--from-job"], { PBS_JOBID: self });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      "could not run the agent on trigger_host login1 (exit 255): ssh: connect to host",
    );
    expect(qsubCalls(sb)).toEqual(["next"]);
    expect(ls(sb, "waiting")).toEqual(["later"]);
  });
});
