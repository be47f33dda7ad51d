import { describe, expect, test } from "bun:test";
import { newJob } from "../../src/core/job.ts";
import { type FolderScan, planAdd } from "../../src/core/planAdd.ts";

const now = new Date("2026-01-01T00:00:00Z");
const text = { size: 10, text: true, blank: false };
const folder = (
  p: string,
  names = ["POSCAR", "INCAR", "KPOINTS", "POTCAR"],
  problem: string | null = null,
): FolderScan => ({
  arg: p,
  path: p,
  problem,
  files: new Map(names.map((n) => [n, text])),
  special: new Map(),
  names,
});
const req = (folders: FolderScan[], extra: Partial<Parameters<typeof planAdd>[0]> = {}) =>
  planAdd({
    folders,
    name: undefined,
    template: "t",
    needsPotcar: true,
    vars: {},
    existing: [],
    now,
    maxInputMb: 200,
    force: false,
    ...extra,
  });

describe("planAdd", () => {
  test("good folders become QUEUED_LOCAL jobs with unique ids", () => {
    const plan = req([folder("/a/run"), folder("/b/run")]);
    expect(plan.errors).toEqual([]);
    expect(plan.jobs.map((j) => j.id)).toEqual(["run", "run-2"]);
  });
  test("POTCAR is optional when the template says so", () => {
    expect(req([folder("/a", ["POSCAR", "INCAR", "KPOINTS"])]).errors[0]).toContain("POTCAR");
    expect(req([folder("/a", ["POSCAR", "INCAR", "KPOINTS"])], { needsPotcar: false }).errors).toEqual([]);
  });
  test("one bad folder: no jobs at all, every problem listed", () => {
    const plan = req([folder("/ok"), folder("/bad", ["POSCAR"]), folder("/gone", [], "no such folder")]);
    expect(plan.jobs).toEqual([]);
    expect(plan.errors).toHaveLength(2);
    expect(plan.errors[0]).toContain("missing INCAR, KPOINTS, POTCAR");
  });
  test("duplicates: given twice, or already in the store", () => {
    const existing = [newJob({ id: "x", name: "x", local_path: "/x", template: "t", vars: {}, now })];
    expect(req([folder("/a"), folder("/a")]).errors[0]).toContain("given twice");
    expect(req([folder("/x")], { existing }).errors[0]).toContain("already added as job x");
  });
  test("--name: one folder only, and a safe id", () => {
    expect(req([folder("/a"), folder("/b")], { name: "n" }).errors[0]).toContain("one job");
    expect(req([folder("/a")], { name: "has space" }).errors[0]).toContain("--name");
    expect(req([folder("/a")], { name: "ok-name" }).jobs[0]!.id).toBe("ok-name");
  });
  test("folder names with control characters or over 200 characters are refused", () => {
    expect(req([folder("/a\nb")]).errors[0]).toContain("control characters");
    expect(req([folder(`/${"x".repeat(201)}`)]).errors[0]).toContain("200");
  });
  test("names with quotes, $() and unicode get safe ids but keep their names", () => {
    const plan = req([folder("/it's $(x) ünï")]);
    expect(plan.errors).toEqual([]);
    expect(plan.jobs[0]!.name).toBe("it's $(x) ünï");
    expect(plan.jobs[0]!.id).toMatch(/^[A-Za-z0-9._-]+$/);
  });
});
