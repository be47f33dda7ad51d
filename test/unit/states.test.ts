import { describe, expect, test } from "bun:test";
import { isValidJobId, makeJobId, newJob, transition } from "../../src/core/job.ts";
import { schedulerJobName } from "../../src/core/jobName.ts";
import { canTransition, IllegalTransitionError, JOB_STATES } from "../../src/core/states.ts";

const now = new Date("2026-01-02T03:04:05Z");
const job = () => newJob({ id: "j", name: "j", local_path: "/x/j", template: "pbspro-vasp", vars: {}, now });

describe("transition table", () => {
  const legal: [string, string][] = [
    ["QUEUED_LOCAL", "UPLOADED"],
    ["QUEUED_LOCAL", "CANCELLED"],
    ["UPLOADED", "SUBMITTED"],
    ["UPLOADED", "DONE"],
    ["SUBMITTED", "RUNNING"],
    ["RUNNING", "TIMEOUT"],
    ["RUNNING", "LOST"],
    ["LOST", "DONE"],
    ["FAILED", "QUEUED_LOCAL"],
  ];
  const illegal: [string, string][] = [
    ["QUEUED_LOCAL", "RUNNING"],
    ["QUEUED_LOCAL", "DONE"],
    ["DONE", "RUNNING"],
    ["DONE", "FAILED"],
    ["RUNNING", "SUBMITTED"],
    ["CANCELLED", "RUNNING"],
    ["UPLOADED", "QUEUED_LOCAL"],
  ];
  test.each(legal)("%s → %s is legal", (from, to) => {
    expect(canTransition(from as never, to as never)).toBe(true);
  });
  test.each(illegal)("%s → %s is refused", (from, to) => {
    expect(canTransition(from as never, to as never)).toBe(false);
  });
  test("every state has an entry", () => {
    for (const s of JOB_STATES) expect(() => canTransition(s, "DONE")).not.toThrow();
  });
});

describe("transition()", () => {
  test("records time, from, to and why", () => {
    const later = new Date("2026-01-02T04:00:00Z");
    const j = transition(job(), "UPLOADED", "uploaded by sync", later);
    expect(j.state).toBe("UPLOADED");
    expect(j.updated_at).toBe(later.toISOString());
    expect(j.history.at(-1)).toEqual({
      at: later.toISOString(),
      from: "QUEUED_LOCAL",
      to: "UPLOADED",
      reason: "uploaded by sync",
    });
  });
  test("an illegal change throws and leaves the job as it was", () => {
    const j = job();
    expect(() => transition(j, "DONE", "x", now)).toThrow(IllegalTransitionError);
    expect(j.state).toBe("QUEUED_LOCAL");
    expect(j.history).toHaveLength(1);
  });
  test("the same state is no change", () => {
    const j = job();
    expect(transition(j, "QUEUED_LOCAL", "again", now)).toBe(j);
  });
});

describe("job ids", () => {
  test.each([
    ["si-bulk", "si-bulk"],
    ["ge bulk", "ge_bulk"],
    ["a;b$(rm -rf)", "a_b_rm_-rf"],
    ["naïve", "naive"],
    ["-rf", "rf"],
    ["кремний", "kremnii"],
    ["Σίδηρος bulk", "Sidiros_bulk"],
  ])("%j → %j", (name, id) => {
    const made = makeJobId(name, new Set());
    expect(made).toBe(id);
    expect(isValidJobId(made)).toBe(true);
  });
  test("a name with no Latin reading gets a short hash: readable, stable, distinct", () => {
    const a = makeJobId("日本", new Set());
    expect(a).toMatch(/^job-[0-9a-f]{6}$/);
    expect(makeJobId("日本", new Set())).toBe(a);
    expect(makeJobId("中国", new Set())).not.toBe(a);
    expect(makeJobId("...", new Set())).toMatch(/^job-[0-9a-f]{6}$/);
  });
  test("unique against taken ids, and at most 64 characters", () => {
    expect(makeJobId("a", new Set(["a", "a-2"]))).toBe("a-3");
    const long = makeJobId("x".repeat(200), new Set());
    expect(long.length).toBeLessThanOrEqual(64);
    expect(isValidJobId(long)).toBe(true);
  });
  test.each(["", ".", "..", "a b", "a/b", "x".repeat(65), "a\nb"])("%j is not a valid id", (id) => {
    expect(isValidJobId(id)).toBe(false);
  });
});

describe("scheduler job names", () => {
  test("short ids are kept, long ones are cut but stay unique", () => {
    expect(schedulerJobName("si-bulk")).toBe("si-bulk");
    const a = schedulerJobName("a-very-long-job-identifier-1");
    const b = schedulerJobName("a-very-long-job-identifier-2");
    expect(a.length).toBeLessThanOrEqual(15);
    expect(a).not.toBe(b);
    expect(schedulerJobName("9lives")).toMatch(/^[A-Za-z]/);
  });
});
