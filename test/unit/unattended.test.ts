// The pure parts of unattended use: the crontab line and its editing, durations, the events a
// sync tells notify_command (login_needed once), and the new config keys.
import { describe, expect, test } from "bun:test";
import { validateConfig } from "../../src/core/config.ts";
import { cronLine, findCronLine, parseEvery, withCronLine, withoutCronLine } from "../../src/core/crontab.ts";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";
import { failureEvent, finishedEvents, wanted } from "../../src/core/notifyEvents.ts";

const HOME = "/home/ana/.chasqui";
const line = (every = "30m", home = HOME) =>
  cronLine({ every: parseEvery(every)!, home, command: ["/usr/local/bin/chasqui"] });

describe("the crontab line", () => {
  test("every: minutes that divide an hour, hours that divide a day; nothing else", () => {
    for (const ok of ["5m", "10m", "15m", "20m", "30m", "1h", "2h", "6h", "12h", "24h", "60m"])
      expect(parseEvery(ok)).not.toBeNull();
    for (const bad of ["7m", "45m", "5h", "0m", "30", "half an hour", "90s", "-5m", "2d"])
      expect(parseEvery(bad)).toBeNull();
  });

  test("runs this chasqui's sync --cron on this home, appending to its sync.log; minutes spread per home", () => {
    const l = line();
    expect(l).toMatch(/^\d{1,2}-59\/30 \* \* \* \* /);
    expect(l).toContain("* umask 077; CHASQUI_HOME=/home/ana/.chasqui /usr/local/bin/chasqui sync --cron");
    expect(l).toContain(">>/home/ana/.chasqui/sync.log 2>&1");
    expect(l).toEndWith(`# chasqui sync for ${HOME}`);
    expect(line("2h")).toMatch(/^\d{1,2} \*\/2 \* \* \* /);
    expect(line("24h")).toMatch(/^\d{1,2} \d{1,2} \* \* \* /);
    // Two homes on one machine do not both log in at the same minute (for these two, at least).
    expect(line("30m", "/home/bo/.chasqui").split(" ")[0]).not.toBe(line().split(" ")[0]);
  });

  test("paths with spaces, quotes and % are quoted for sh and escaped for cron", () => {
    const l = line("30m", "/home/ana/my 100% 'jobs'");
    expect(l).toContain(String.raw`CHASQUI_HOME='/home/ana/my 100\% '\''jobs'\''' `);
    expect(l).toEndWith(String.raw`# chasqui sync for /home/ana/my 100\% 'jobs'`);
    expect(l.replace(/\\%/g, "")).not.toContain("%");
  });

  test("install is idempotent, replaces in place, and leaves every other line alone", () => {
    const mine = "MAILTO=ana@example.org\n0 3 * * * /usr/bin/backup --all\n# a comment\n";
    const once = withCronLine(mine, HOME, line());
    expect(once).toBe(`${mine}${line()}\n`);
    expect(withCronLine(once, HOME, line())).toBe(once);
    const every15 = withCronLine(`${once}@reboot /usr/bin/other\n`, HOME, line("15m"));
    expect(every15).toBe(`${mine}${line("15m")}\n@reboot /usr/bin/other\n`);
    expect(findCronLine(every15, HOME)).toBe(line("15m"));
    // Another home's line is another line.
    const two = withCronLine(every15, "/srv/other", line("30m", "/srv/other"));
    expect(two.split("\n").filter((l) => l.includes("chasqui sync for"))).toHaveLength(2);
    expect(withoutCronLine(two, "/srv/other")).toBe(every15);
    expect(withoutCronLine(once, HOME)).toBe(mine);
    expect(withCronLine("", HOME, line())).toBe(`${line()}\n`);
    // A crontab without a final newline keeps its last line whole.
    expect(withCronLine("0 1 * * * x", HOME, line())).toBe(`0 1 * * * x\n${line()}\n`);
  });
});

describe("durations", () => {
  test("parse and print", () => {
    expect(parseDuration("12h")).toBe(43_200);
    expect(parseDuration("90m")).toBe(5_400);
    expect(parseDuration("2d")).toBe(172_800);
    expect(parseDuration("45s")).toBe(45);
    for (const bad of ["", "12", "h", "1.5h", "-1h", "0h", "12 hours"]) expect(parseDuration(bad)).toBeNull();
    expect(formatDuration(43_200)).toBe("12 h");
    expect(formatDuration(5_400)).toBe("90 min");
    expect(formatDuration(172_800)).toBe("2 days");
  });
});

describe("notifications", () => {
  const at = "2026-12-07T10:00:00.000Z";
  test("one job_finished per job that reached a final state, with its energy", () => {
    const events = finishedEvents(
      at,
      "bebop",
      [
        { id: "a", from: "RUNNING", to: "DONE", reason: "flag DONE" },
        { id: "b", from: "QUEUED_LOCAL", to: "UPLOADED", reason: "uploaded" },
        { id: "c", from: "RUNNING", to: "TIMEOUT", reason: "walltime reached" },
      ],
      { a: { energy: -10.5 } as never, c: null },
    );
    expect(events).toEqual([
      {
        event: "job_finished",
        at,
        host: "bebop",
        id: "a",
        state: "DONE",
        reason: "flag DONE",
        energy: -10.5,
      },
      {
        event: "job_finished",
        at,
        host: "bebop",
        id: "c",
        state: "TIMEOUT",
        reason: "walltime reached",
        energy: null,
      },
    ]);
  });

  test("a login that needs a person is told once, until a sync gets through again", () => {
    const need = {
      message: "asks for a one-time code and there is no terminal",
      exitCode: 3,
      hint: "chasqui connect",
    };
    expect(failureEvent(at, "h", need, null)).toMatchObject({
      event: "login_needed",
      hint: "chasqui connect",
    });
    expect(failureEvent(at, "h", need, { error: null, exit_code: null })?.event).toBe("login_needed");
    expect(failureEvent(at, "h", need, { error: need.message, exit_code: 3 })).toBeNull();
    // A store from before exit codes were kept: told (once more at most).
    expect(failureEvent(at, "h", need, { error: "x" })?.event).toBe("login_needed");
  });

  test("another failure is told when it is not the same failure again; a busy lock never", () => {
    const down = { message: "cannot connect to h:22: connection refused", exitCode: 1 };
    expect(failureEvent(at, "h", down, null)).toMatchObject({ event: "sync_failed", exit_code: 1 });
    expect(failureEvent(at, "h", down, { error: down.message, exit_code: 1 })).toBeNull();
    expect(failureEvent(at, "h", down, { error: "other", exit_code: 1 })?.event).toBe("sync_failed");
    expect(failureEvent(at, "h", { message: "locked", exitCode: 4 }, null)).toBeNull();
  });

  test("notify_on picks the events", () => {
    const e = [
      { event: "login_needed", at, host: "h", error: "e", hint: null },
      { event: "sync_failed", at, host: "h", error: "e", exit_code: 1 },
    ] as const;
    expect(wanted(e, ["sync_failed"]).map((x) => x.event)).toEqual(["sync_failed"]);
  });
});

describe("config keys of unattended use", () => {
  test("defaults, and bad values named", () => {
    const ok = validateConfig({ host: "h" });
    expect(ok.config).toMatchObject({
      transport: "auto",
      control_path: null,
      notify_command: null,
      notify_on: ["job_finished", "login_needed", "sync_failed"],
      notify_timeout_seconds: 30,
    });
    const bad = validateConfig({
      host: "h",
      transport: "mosh",
      notify_on: ["job_finishd"],
      notify_timeout_seconds: 0,
      control_path: "",
    });
    expect(bad.config).toBeNull();
    expect(bad.errors).toEqual(
      expect.arrayContaining([
        'transport: must be one of "auto", "ssh2", "openssh"',
        'notify_on: must be a list of job_finished, login_needed, sync_failed; not "job_finishd" (did you mean job_finished?)',
        "notify_timeout_seconds: must be a whole number ≥ 1",
        "control_path: must be a non-empty string or null",
      ]),
    );
  });
});
