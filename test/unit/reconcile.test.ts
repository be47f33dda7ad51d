// The sync's pure heart, case by case: what a report from the cluster does to jobs. Each row
// runs in microseconds; the end-to-end tests prove the same paths against the real cluster.
import { describe, expect, test } from "bun:test";
import type { AgentEvent } from "../../src/core/agentLog.ts";
import { parseFlags } from "../../src/core/protocol.ts";
import { type RemoteReport, reconcile } from "../../src/core/reconcile.ts";
import { parseSchedulerSnapshot } from "../../src/core/schedulerView.ts";
import { jobIn, later } from "./jobFixtures.ts";

const GRACE = 600;
const snap = (lines: string[]) => parseSchedulerSnapshot(`${lines.join("\n")}\n#rc=0\n`, "pbs").jobs;
const event = (e: string, jobId: string, detail: string): AgentEvent =>
  ({ at: "2026-12-01T10:00:00Z", event: e, jobId, detail }) as AgentEvent;
const report = (r: Partial<RemoteReport>): RemoteReport => ({
  events: [],
  flags: new Map(),
  snapshot: null,
  ...r,
});

describe("reconcile, case by case", () => {
  test.each(["Q", "H", "W", "T", "S", "M", "U"])(
    "a submitted job in state %s still waits: no LOST clock",
    (letter) => {
      const job = jobIn("j", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" });
      const r = reconcile(
        [job],
        report({ snapshot: snap([`5.s\tj\t${letter}\t\t\t${letter}`]) }),
        later(99),
        GRACE,
      );
      expect(r.jobs[0]).toMatchObject({ state: "SUBMITTED", missing_since: null });
      expect(r.changes).toEqual([]);
    },
  );

  test.each(["R", "E", "B"])("state %s means running", (letter) => {
    const job = jobIn("j", ["UPLOADED", "SUBMITTED"], { scheduler_id: "5.s" });
    const r = reconcile(
      [job],
      report({ snapshot: snap([`5.s\tj\t${letter}\t\t\t${letter}`]) }),
      later(99),
      GRACE,
    );
    expect(r.jobs[0]!.state).toBe("RUNNING");
  });

  test("gone with no flag: the clock starts, LOST only after the grace period, a late flag still counts", () => {
    const job = jobIn("j", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "5.s" });
    const first = reconcile([job], report({ snapshot: snap([]) }), later(100), GRACE).jobs[0]!;
    expect(first).toMatchObject({ state: "RUNNING", missing_since: later(100).toISOString() });
    const early = reconcile([first], report({ snapshot: snap([]) }), later(100 + GRACE - 1), GRACE).jobs[0]!;
    expect(early.state).toBe("RUNNING");
    const lost = reconcile([early], report({ snapshot: snap([]) }), later(100 + GRACE), GRACE).jobs[0]!;
    expect(lost.state).toBe("LOST");
    const flags = parseFlags("@j\nDONE\n5.s\n0\n2026-12-01T11:00:00Z\n");
    expect(reconcile([lost], report({ flags, snapshot: snap([]) }), later(2000), GRACE).jobs[0]!.state).toBe(
      "DONE",
    );
  });

  test("a scheduler that cannot be asked starts no clock and ends nothing", () => {
    const job = jobIn("j", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "5.s" });
    const r = reconcile([job], report({ snapshot: null }), later(9999), GRACE);
    expect(r.jobs[0]).toEqual(job);
  });

  test("a flag with no SUBMIT event seen (the log read later): the job ends from UPLOADED", () => {
    const job = jobIn("j", ["UPLOADED"]);
    const flags = parseFlags("@j\nDONE\n5.s\n0\n2026-12-01T11:00:00Z\n");
    const r = reconcile([job], report({ flags, snapshot: snap([]) }), later(99), GRACE);
    expect(r.jobs[0]).toMatchObject({ state: "DONE", scheduler_id: "5.s", exit_code: 0 });
  });

  test("SUBMIT, then its flag, in one report: both steps, in order", () => {
    const job = jobIn("j", ["UPLOADED"]);
    const flags = parseFlags("@j\nFAIL\n5.s\n2\n2026-12-01T11:00:00Z\n");
    const r = reconcile(
      [job],
      report({ events: [event("SUBMIT", "j", "5.s")], flags, snapshot: snap([]) }),
      later(9),
      GRACE,
    );
    expect(r.changes.map((c) => c.to)).toEqual(["SUBMITTED", "FAILED"]);
  });

  test("the same SUBMIT read twice (a log re-read after a rotation) changes nothing the second time", () => {
    const job = jobIn("j", ["UPLOADED"]);
    const once = reconcile([job], report({ events: [event("SUBMIT", "j", "5.s")] }), later(9), GRACE)
      .jobs[0]!;
    const twice = reconcile([once], report({ events: [event("SUBMIT", "j", "5.s")] }), later(10), GRACE);
    expect(twice.changes).toEqual([]);
  });

  test("a flag of an earlier attempt (another scheduler id) is not this run's", () => {
    const job = jobIn("j", ["UPLOADED", "SUBMITTED"], { scheduler_id: "9.s", attempt: 1 });
    const flags = parseFlags("@j\nDONE\n5.s\n0\n2026-12-01T11:00:00Z\n");
    const r = reconcile([job], report({ flags, snapshot: snap(["9.s\tj\tQ\t\t\tQ"]) }), later(9), GRACE);
    expect(r.jobs[0]!.state).toBe("SUBMITTED");
  });

  test("SUBMIT_ERROR: FAILED with the scheduler's words", () => {
    const job = jobIn("j", ["UPLOADED"]);
    const r = reconcile(
      [job],
      report({ events: [event("SUBMIT_ERROR", "j", "qsub: Unknown queue")] }),
      later(9),
      GRACE,
    );
    expect(r.jobs[0]!.state).toBe("FAILED");
    expect(r.jobs[0]!.history.at(-1)!.reason).toBe("rejected by the scheduler: qsub: Unknown queue");
  });

  test("finished without a flag, after the grace period: the scheduler's verdict, not LOST", () => {
    const job = jobIn("j", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "5.s" });
    const finished = snap(["5.s\tj\tF\t3\t\tF"]);
    const clock = reconcile([job], report({ snapshot: finished }), later(10), GRACE).jobs[0]!;
    const r = reconcile([clock], report({ snapshot: finished }), later(10 + GRACE), GRACE);
    expect(r.jobs[0]!.state).toBe("FAILED");
    expect(r.jobs[0]!.history.at(-1)!.reason).toContain(
      "ended without writing its completion flag (job_state F, Exit_status 3",
    );
  });
});
