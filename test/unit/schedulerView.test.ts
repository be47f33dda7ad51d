// The scheduler's words, read once: state letters, PBS Professional's and Torque's Exit_status,
// Slurm's final states, comments, and a reply that failed or was cut.
import { describe, expect, test } from "bun:test";
import { neverRuns, schedulerNote } from "../../src/cli/jobView.ts";
import { needsAccount } from "../../src/core/render.ts";
import { isActiveState, parseSchedulerSnapshot } from "../../src/core/schedulerView.ts";
import { jobIn } from "./jobFixtures.ts";

const line = (...cols: string[]) => `${cols.join("\t")}\n`;

describe("parseSchedulerSnapshot", () => {
  test("a reply without #rc=0 (failed, or cut short) is no information", () => {
    expect(parseSchedulerSnapshot(line("1", "a", "R") + "#rc=0\n", "pbs").jobs?.size).toBe(1);
    expect(parseSchedulerSnapshot(line("1", "a", "R"), "pbs")).toEqual({ jobs: null, error: "no answer" });
    const down = parseSchedulerSnapshot("#error=qstat: cannot connect to server\n#rc=255\n", "pbs");
    expect(down).toEqual({ jobs: null, error: "qstat: cannot connect to server" });
  });

  test("M (moved) and U (suspended) still wait; C, F and X are finished", () => {
    for (const s of ["Q", "H", "W", "T", "S", "M", "U", "R", "E", "B"]) expect(isActiveState(s)).toBe(true);
    for (const s of ["C", "F", "X", "?"]) expect(isActiveState(s)).toBe(false);
  });

  test.each([
    ["F", "271", "deleted"],
    ["F", "-29", "walltime"],
    ["F", "0", "exit"],
    ["F", "-27", "unknown"],
    ["C", "-11", "walltime"],
    ["C", "271", "unknown"], // Torque: any SIGTERM, walltime included on older versions
    ["C", "", "unknown"], // Slurm's PBS wrappers: C and no exit status at all
  ])("PBS family: state %s, Exit_status %j → %s", (state, exit, how) => {
    const snap = parseSchedulerSnapshot(line("7", "j", state, exit, "", state) + "#rc=0\n", "pbs");
    expect(snap.jobs!.get("7")!.ending!.how as string).toBe(how);
  });

  test("PBS Professional's F with no Exit_status: deleted before it ever ran", () => {
    const snap = parseSchedulerSnapshot(
      line("16", "q", "F", "", "Not Running: x and terminated", "F") + "#rc=0\n",
      "pbs",
    );
    expect(snap.jobs!.get("16")!.ending).toMatchObject({ how: "deleted", neverRan: true });
  });

  test.each([
    ["CA", "deleted"],
    ["TO", "walltime"],
    ["CD", "exit"],
    ["OOM", "unknown"],
  ])("Slurm %s → %s, in Slurm's words", (code, how) => {
    const snap = parseSchedulerSnapshot(line("9", "j", "F", "", "", code) + "#rc=0\n", "slurm");
    expect(snap.jobs!.get("9")!.ending!.how as string).toBe(how);
    expect(snap.jobs!.get("9")!.ending!.words).toStartWith("Slurm: ");
  });

  test("a waiting job's comment is kept; Can Never Run is recognised", () => {
    const snap = parseSchedulerSnapshot(
      line(
        "18",
        "big",
        "Q",
        "",
        "Can Never Run: Insufficient amount of resource: ncpus (R: 4 A: 2 T: 2)",
        "Q",
      ) +
        line("19", "ok", "Q", "", "Not Running: Not enough free nodes available", "Q") +
        "#rc=0\n",
      "pbs",
    );
    expect(snap.jobs!.get("18")).toMatchObject({ neverRuns: true, active: true, ending: null });
    expect(snap.jobs!.get("19")).toMatchObject({
      neverRuns: false,
      comment: "Not Running: Not enough free nodes available",
    });
  });
});

describe("what list and show say about a waiting job", () => {
  test("Can Never Run is flagged with what to do; an ordinary comment is passed on; none once final", () => {
    const big = jobIn("big", ["UPLOADED", "SUBMITTED"], {
      scheduler_note: "Can Never Run: Insufficient amount of resource: ncpus (R: 4 A: 2 T: 2)",
    });
    expect(neverRuns(big)).toBe(true);
    expect(schedulerNote(big)).toContain("it will never start: `chasqui cancel big`");
    const waiting = jobIn("w", ["UPLOADED", "SUBMITTED"], {
      scheduler_note: "Not Running: Not enough free nodes",
    });
    expect(neverRuns(waiting)).toBe(false);
    expect(schedulerNote(waiting)).toBe("Not Running: Not enough free nodes");
    expect(schedulerNote({ ...big, state: "CANCELLED" })).toBe("");
  });
});

describe("templates that need an account", () => {
  test("#PBS -A {{account}} always: yes; inside {{#if account}}: no", () => {
    expect(needsAccount("#!/bin/bash\n#PBS -A {{account}}\n")).toBe(true);
    expect(needsAccount("#!/bin/bash\n{{#if account}}\n#PBS -A {{account}}\n{{/if}}\n")).toBe(false);
    expect(needsAccount("#!/bin/bash\n#SBATCH --account={{account}}\n")).toBe(false);
  });
});
