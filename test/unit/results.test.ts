// The pure parts of results coming home: run summaries in flags, cancel marks, restarts, result
// patterns, what a download records, which jobs it picks.
import { describe, expect, test } from "bun:test";
import { formatEta, progressBar, progressLine } from "../../src/cli/progress.ts";
import { applyCancelAnswer, checkCancellable } from "../../src/core/cancel.ts";
import { defaultConfig, validateConfig } from "../../src/core/config.ts";
import { transition } from "../../src/core/job.ts";
import { parseCancelReply, parseFlags } from "../../src/core/protocol.ts";
import { reconcile } from "../../src/core/reconcile.ts";
import { checkRestartable, refuseRestart } from "../../src/core/restart.ts";
import { globToRegExp, resultGlobs } from "../../src/core/resultFiles.ts";
import { parseRunSummary, summaryWarnings } from "../../src/core/runSummary.ts";
import { ExitCode } from "../../src/errors.ts";
import { reviveStoreData } from "../../src/store/jobStore.ts";
import { needsDownload, pickDownloads, resultsRecord } from "../../src/sync/runDownload.ts";
import { jobIn, later, t0 } from "./jobFixtures.ts";

const FLAG_WITH_SUMMARY = [
  "@relax",
  "DONE",
  "12.pbshost",
  "0",
  "2026-12-01T11:00:00Z",
  "energy=-10.10030000",
  "energy_e0=-10.10020000",
  "ionic_steps=3",
  "electronic_steps=60",
  "nelm=60",
  "relaxation=reached",
  "elapsed=42",
  "contcar=valid",
  "",
].join("\n");

describe("run summary", () => {
  test("parsed from the flag's extra lines", () => {
    const flag = parseFlags(FLAG_WITH_SUMMARY).get("relax")!;
    expect(flag.summary).toEqual({
      energy: -10.1003,
      energy_e0: -10.1002,
      ionic_steps: 3,
      electronic_steps: 60,
      nelm: 60,
      electronic_converged: false,
      relaxation: "reached",
      elapsed_seconds: 42,
      contcar: "valid",
    });
    expect(summaryWarnings(flag.summary)).toEqual(["electronic steps hit NELM (60/60): not converged"]);
  });

  test("a four-line flag of an older script has none; junk values are dropped", () => {
    expect(parseFlags("@a\nDONE\n1\n0\n2026-12-01T11:00:00Z\n").get("a")!.summary).toBeNull();
    const s = parseRunSummary(["energy=abc", "ionic_steps=-1", "contcar=maybe", "relaxation=reached"])!;
    expect(s).toMatchObject({ energy: null, ionic_steps: null, contcar: null, relaxation: "reached" });
    expect(s.electronic_converged).toBeNull();
  });

  test("a DONE run that hit NELM stays DONE, flagged in its history and summary", () => {
    const job = jobIn("relax", ["UPLOADED", "SUBMITTED"], { scheduler_id: "12.pbshost" });
    const r = reconcile(
      [job],
      { events: [], flags: parseFlags(FLAG_WITH_SUMMARY), snapshot: null },
      later(99),
      600,
    );
    expect(r.jobs[0]!.state).toBe("DONE");
    expect(r.jobs[0]!.summary?.energy).toBe(-10.1003);
    expect(r.jobs[0]!.history.at(-1)!.reason).toContain("electronic steps hit NELM");
  });
});

describe("cancel marks", () => {
  const timeoutFlag = "@c\nTIMEOUT\n7\n143\n2026-12-01T11:00:00Z\nelapsed=3\n";
  test("a TIMEOUT flag with the job's cancel mark is CANCELLED, not TIMEOUT", () => {
    const job = jobIn("c", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "7" });
    const report = {
      events: [],
      flags: parseFlags(timeoutFlag),
      snapshot: null,
      cancelMarks: new Map([["c", "7"]]),
    };
    expect(reconcile([job], report, later(99), 600).jobs[0]!.state).toBe("CANCELLED");
  });
  test("a DONE flag stays DONE whatever the mark: the run did all its work", () => {
    const job = jobIn("c", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "7" });
    const flags = parseFlags("@c\nDONE\n7\n0\n2026-12-01T11:00:00Z\n");
    const report = { events: [], flags, snapshot: null, cancelMarks: new Map([["c", "7"]]) };
    expect(reconcile([job], report, later(99), 600).jobs[0]!.state).toBe("DONE");
  });
  test("a mark for another scheduler id (an earlier attempt) changes nothing", () => {
    const job = jobIn("c", ["UPLOADED", "SUBMITTED", "RUNNING"], { scheduler_id: "7" });
    const report = {
      events: [],
      flags: parseFlags(timeoutFlag),
      snapshot: new Map(),
      cancelMarks: new Map([["c", "3"]]),
    };
    expect(reconcile([job], report, later(99), 600).jobs[0]!.state).toBe("TIMEOUT");
  });
  test("deleted while queued (no flag will come): CANCELLED at once, not LOST later", () => {
    const job = jobIn("q", ["UPLOADED", "SUBMITTED"], { scheduler_id: "9" });
    const report = { events: [], flags: new Map(), snapshot: new Map(), cancelMarks: new Map([["q", "9"]]) };
    expect(reconcile([job], report, later(99), 600).jobs[0]!.state).toBe("CANCELLED");
  });
  test("agent answers: removed/deleted cancel, gone keeps the state, error changes nothing", () => {
    const job = jobIn("x", ["UPLOADED"], { cancel_requested: true });
    const answers = parseCancelReply(
      "@deployed=2\nx\tremoved\t\ny\tgone\t5: finished\nz\terror\t5: boom\nbad line\n",
    );
    expect([...answers.keys()]).toEqual(["x", "y", "z"]);
    expect(applyCancelAnswer(job, answers.get("x")!, t0)).toMatchObject({
      state: "CANCELLED",
      cancel_requested: false,
    });
    expect(applyCancelAnswer(job, answers.get("y")!, t0)).toMatchObject({
      state: "UPLOADED",
      cancel_requested: false,
    });
    expect(applyCancelAnswer(job, answers.get("z")!, t0)).toBe(job);
  });
  test("a finished job cannot be cancelled (exit 2)", () => {
    expect(() => checkCancellable([jobIn("d", ["UPLOADED", "DONE"])])).toThrow(
      expect.objectContaining({ exitCode: ExitCode.badInput }),
    );
  });
});

describe("restart", () => {
  test("refused at retry when the run's own summary says CONTCAR is empty or invalid", () => {
    const empty = jobIn("e", ["UPLOADED", "TIMEOUT"], { summary: parseRunSummary(["contcar=missing"]) });
    expect(() => checkRestartable([empty])).toThrow(/e \(its run left no CONTCAR/);
    const ok = jobIn("o", ["UPLOADED", "TIMEOUT"], { summary: parseRunSummary(["contcar=valid"]) });
    const lost = jobIn("l", ["UPLOADED", "LOST"]);
    expect(() => checkRestartable([ok, lost])).not.toThrow();
  });
  test("refused on the cluster: back to the state it was retried from, attempt given back", () => {
    const retried = {
      ...transition(jobIn("r", ["UPLOADED", "LOST"]), "QUEUED_LOCAL", "retry --restart", later(9)),
      attempt: 1,
      restart: true,
    };
    const back = refuseRestart(retried, "its CONTCAR is missing or empty", later(10));
    expect(back).toMatchObject({ state: "LOST", attempt: 0, restart: false });
    expect(back.history.at(-1)!.reason).toContain("chasqui retry r");
  });
});

describe("result files", () => {
  test("patterns match as bash does", () => {
    expect(globToRegExp("*.o[0-9]*").test("relax.o123")).toBe(true);
    expect(globToRegExp("*.o[0-9]*").test("relax.out")).toBe(false);
    expect(globToRegExp("vasprun.xml").test("vasprunXxml")).toBe(false);
    expect(globToRegExp("[!A]?CAR").test("OUTCAR")).toBe(false);
    expect(globToRegExp("[!A]UTCAR").test("OUTCAR")).toBe(true);
  });
  test("a job's own download_globs win over the config's", () => {
    const config = defaultConfig("h");
    expect(resultGlobs({ vars: { download_globs: "OUTCAR, *.dat" } }, config)).toEqual(["OUTCAR", "*.dat"]);
    expect(resultGlobs({ vars: {} }, config)).toEqual(config.download_globs);
  });
  test("config: download_results and download_globs are checked; the old key 'download' still reads", () => {
    expect(validateConfig({ host: "h", download_results: "yes" }).errors).toEqual([
      "download_results: must be true or false",
    ]);
    expect(validateConfig({ host: "h", download_globs: ["a/b"] }).errors[0]).toMatch(/^download_globs:/);
    const old = validateConfig({ host: "h", download: ["OUTCAR"] });
    expect(old.config?.download_globs).toEqual(["OUTCAR"]);
    expect(old.warnings).toEqual([]);
  });
  test("what came home is recorded with sizes; a job finished since needs a download again", () => {
    const done = jobIn("d", ["UPLOADED", "DONE"]);
    expect(needsDownload(done)).toBe(true);
    const rec = resultsRecord(
      {
        id: "d",
        dest: "/w/d",
        written: [{ name: "OUTCAR", size: 10 }],
        same: [{ name: "CONTCAR", size: 5 }],
        skipped: [],
        missing: false,
      },
      later(50).toISOString(),
    );
    expect(rec.files.map((f) => f.name)).toEqual(["CONTCAR", "OUTCAR"]);
    expect(needsDownload({ ...done, results: rec })).toBe(false);
    const running = jobIn("r", ["UPLOADED", "RUNNING"]);
    const queued = jobIn("q", []);
    expect(pickDownloads([done, running, queued], [], {}).map((j) => j.id)).toEqual(["d"]);
    expect(pickDownloads([done, running, queued], [], { all: true }).map((j) => j.id)).toEqual(["d", "r"]);
    expect(pickDownloads([{ ...done, results: rec }], [], {}).map((j) => j.id)).toEqual([]);
    expect(pickDownloads([{ ...done, results: rec }], [], { force: true }).map((j) => j.id)).toEqual(["d"]);
    expect(() => pickDownloads([queued], ["q"], {})).toThrow(/never sent to the cluster/);
  });
  test("a version-1 store gains results, summary and cancel_requested", () => {
    const v1 = {
      version: 1,
      jobs: [{ ...jobIn("a", []), downloaded_at: "2026-12-01T12:00:00Z" }],
      log_cursor: null,
      last_sync: null,
    };
    const data = reviveStoreData(JSON.parse(JSON.stringify(v1)), "jobs.json");
    expect(data.jobs[0]).toMatchObject({
      results: { at: "2026-12-01T12:00:00Z", files: [] },
      summary: null,
      cancel_requested: false,
    });
    expect("downloaded_at" in data.jobs[0]!).toBe(false);
  });
});

describe("progress bar", () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { isTTY, chunks, write: (s: string) => chunks.push(s) > 0 } as unknown as NodeJS.WritableStream & {
      isTTY: boolean;
      chunks: string[];
    };
  };
  test("a frame shows bytes, percent, rate and time left", () => {
    const mb = 1024 * 1024;
    expect(progressLine("download", 50 * mb, 200 * mb, 10_000)).toBe(
      "download [######                  ] 50.0/200 MB 25% 5.0 MB/s ETA 00:30",
    );
    expect(formatEta(3725)).toBe("1:02:05");
    expect(formatEta(Number.NaN)).toBe("--:--");
  });
  test("nothing on a pipe, with --json, or for small transfers; a final newline on a terminal", () => {
    let t = 0;
    const now = () => (t += 200);
    for (const [tty, enabled, total, drawn] of [
      [false, true, 50e6, false],
      [true, false, 50e6, false],
      [true, true, 1e6, false],
      [true, true, 50e6, true],
    ] as const) {
      const out = sink(tty);
      const bar = progressBar(out, "download", { enabled, now });
      bar.update(10e6, total);
      bar.update(total, total);
      bar.done();
      const chunks = (out as unknown as { chunks: string[] }).chunks;
      expect(chunks.length > 0).toBe(drawn);
      if (drawn) expect(chunks.at(-1)).toBe("\n");
    }
  });
});
