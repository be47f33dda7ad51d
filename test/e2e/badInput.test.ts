// Bad input, catalogued, through the compiled binary: every case exits with the code of its kind
// (2 for bad input), says what is wrong in words (no errno codes, no stack), and leaves
// $CHASQUI_HOME (config, store, templates) byte for byte as it was.
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { editJson, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

interface Case {
  what: string;
  args: (s: World) => string[];
  /** Prepare the bad thing (a folder, a file in CHASQUI_HOME); runs before the snapshot. */
  setup?: (s: World) => void;
  code: number;
  says: string | RegExp;
}

interface World extends Sandbox {
  /** A job folder made of `files` (default: the four good inputs). */
  folder(name: string, files?: Record<string, string | Buffer>): string;
}

/** A home with a config (account set) and jobs in several states: a, b (RUNNING), c (DONE), d (FAILED). */
function world(opts: { account?: boolean } = {}): World {
  const s = sandbox();
  expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
  expect(s.run(["add", ...["a", "b", "c", "d"].map((id) => s.jobFolder(id))]).code).toBe(0);
  if (opts.account === false) {
    editJson(path.join(s.home, "config.json"), (o) => {
      (o.vars as Record<string, string>).account = "";
    });
  }
  const file = path.join(s.home, "jobs.json");
  const store = JSON.parse(fs.readFileSync(file, "utf8"));
  // As if they had been on the cluster: uploaded, then on to their state.
  const put = (id: string, state: string, extra: Record<string, unknown> = {}) => {
    const job = store.jobs.find((j: { id: string }) => j.id === id);
    job.history.push({ at: job.created_at, from: "QUEUED_LOCAL", to: "UPLOADED", reason: "test" });
    job.history.push({ at: job.created_at, from: "UPLOADED", to: state, reason: "test" });
    Object.assign(job, { state, ...extra });
  };
  put("b", "RUNNING", { scheduler_id: "12.pbshost" });
  put("c", "DONE", { scheduler_id: "13.pbshost", exit_code: 0 });
  put("d", "FAILED", {
    scheduler_id: "14.pbshost",
    exit_code: 1,
    summary: {
      energy: null,
      energy_e0: null,
      ionic_steps: null,
      electronic_steps: null,
      nelm: null,
      electronic_converged: null,
      relaxation: null,
      elapsed: 3,
      contcar: "missing",
    },
  });
  fs.writeFileSync(file, JSON.stringify(store, null, 2));
  return {
    ...s,
    folder(name, files = VASP_FILES) {
      return s.jobFolder(name, files);
    },
  };
}

const bin = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01, 0xff, 0xfe]);
const userTemplate = (w: World, name: string, source: string) => {
  fs.mkdirSync(path.join(w.home, "templates"), { recursive: true });
  fs.writeFileSync(path.join(w.home, "templates", `${name}.sh.hbs`), source);
};

const CASES: Case[] = [
  // init
  { what: "init: empty host", args: () => ["init", "--host", "", "--force"], code: 2, says: "host" },
  {
    what: "init: host with a space",
    args: () => ["init", "--host", "a b", "--force"],
    code: 2,
    says: "host",
  },
  {
    what: "init: port 0",
    args: () => ["init", "--host", "h", "--port", "0", "--force"],
    code: 2,
    says: "port",
  },
  {
    what: "init: port not a number",
    args: () => ["init", "--host", "h", "--port", "ssh", "--force"],
    code: 2,
    says: "--port must be a whole number",
  },
  {
    what: "init: max-queued 0",
    args: () => ["init", "--host", "h", "--max-queued", "0", "--force"],
    code: 2,
    says: "max_queued",
  },
  {
    what: "init: unknown scheduler",
    args: () => ["init", "--host", "h", "--scheduler", "lsf", "--force"],
    code: 2,
    says: /scheduler.*lsf|lsf.*scheduler/,
  },
  {
    what: "init: walltime=banana",
    args: () => ["init", "--host", "h", "--set", "walltime=banana", "--force"],
    code: 2,
    says: "walltime must be [[H]H:]MM:SS",
  },
  {
    what: "init: a line of shell in a directive value",
    args: () => ["init", "--host", "h", "--set", 'queue=bdwall\nrm -rf "$HOME"', "--force"],
    code: 2,
    says: "control character",
  },
  {
    what: "init: a variable no template reads",
    args: () => ["init", "--host", "h", "--set", "wallclock=01:00:00", "--force"],
    code: 2,
    says: "did you mean walltime",
  },
  {
    what: "init: unknown template",
    args: () => ["init", "--host", "h", "--template", "nosuch", "--force"],
    code: 2,
    says: 'unknown template "nosuch"',
  },
  { what: "init: config exists", args: () => ["init", "--host", "h"], code: 2, says: "exists already" },
  {
    what: "init: remote dir with ..",
    args: () => ["init", "--host", "h", "--remote-dir", "../x", "--force"],
    code: 2,
    says: "remote_dir",
  },
  {
    what: "init: trigger host with shell",
    args: () => ["init", "--host", "h", "--trigger-host", "a;b", "--force"],
    code: 2,
    says: "trigger_host",
  },
  // add: folders and inputs
  { what: "add: no folder", args: () => ["add"], code: 2, says: "missing required argument" },
  {
    what: "add: no such folder",
    args: (w) => ["add", path.join(w.root, "nope")],
    code: 2,
    says: "no such folder",
  },
  {
    what: "add: a file, not a folder",
    args: (w) => ["add", path.join(w.folder("f"), "INCAR")],
    code: 2,
    says: "is not a folder",
  },
  {
    what: "add: POSCAR missing",
    args: (w) => ["add", w.folder("m", { INCAR: "x=1\n", KPOINTS: "a\n0\nG\n1 1 1\n", POTCAR: "p\n" })],
    code: 2,
    says: "missing POSCAR",
  },
  {
    what: "add: empty INCAR",
    args: (w) => ["add", w.folder("e", { ...VASP_FILES, INCAR: "" })],
    code: 2,
    says: "INCAR is empty",
  },
  {
    what: "add: binary INCAR",
    args: (w) => ["add", w.folder("bi", { ...VASP_FILES, INCAR: bin })],
    code: 2,
    says: "INCAR is not a text file",
  },
  {
    what: "add: empty POTCAR",
    args: (w) => ["add", w.folder("ep", { ...VASP_FILES, POTCAR: "" })],
    code: 2,
    says: "POTCAR is empty",
  },
  {
    what: "add: binary POTCAR",
    args: (w) => ["add", w.folder("bp", { ...VASP_FILES, POTCAR: bin })],
    code: 2,
    says: "POTCAR is not a text file",
  },
  {
    what: "add: KPOINTS of blank lines",
    args: (w) => ["add", w.folder("k", { ...VASP_FILES, KPOINTS: "\n  \n\n" })],
    code: 2,
    says: "KPOINTS has only blank lines",
  },
  {
    what: "add: POSCAR is a folder",
    setup: (w) => {
      const { POSCAR: _, ...rest } = VASP_FILES;
      fs.mkdirSync(path.join(w.folder("pf", rest), "POSCAR"));
    },
    args: (w) => ["add", path.join(w.root, "jobs", "pf")],
    code: 2,
    says: "POSCAR is a folder, not a file",
  },
  {
    what: "add: POSCAR is a FIFO",
    setup: (w) => {
      const { POSCAR: _, ...rest } = VASP_FILES;
      spawnSync("mkfifo", [path.join(w.folder("fifo", rest), "POSCAR")]);
    },
    args: (w) => ["add", path.join(w.root, "jobs", "fifo")],
    code: 2,
    says: "POSCAR is a named pipe (FIFO), not a file",
  },
  {
    what: "add: lower-case poscar",
    args: (w) => {
      const { POSCAR, ...rest } = VASP_FILES;
      return ["add", w.folder("lc", { ...rest, poscar: POSCAR! })];
    },
    code: 2,
    says: "names are case-sensitive",
  },
  {
    what: "add: POSCAR a symlink loop",
    setup: (w) => {
      const { POSCAR: _, ...rest } = VASP_FILES;
      const dir = w.folder("loop", rest);
      fs.symlinkSync("POSCAR", path.join(dir, "POSCAR"));
    },
    args: (w) => ["add", path.join(w.root, "jobs", "loop")],
    code: 2,
    says: "symlink loop",
  },
  {
    what: "add: an input over max_input_mb",
    setup: (w) => {
      const dir = w.folder("big");
      fs.writeFileSync(path.join(dir, "WAVECAR"), "");
      fs.truncateSync(path.join(dir, "WAVECAR"), 201 * 1024 * 1024);
    },
    args: (w) => ["add", path.join(w.root, "jobs", "big")],
    code: 2,
    says: "over max_input_mb (200): add --force",
  },
  {
    what: "add: a folder added already (DONE)",
    args: (w) => ["add", path.join(w.root, "jobs", "c")],
    code: 2,
    says: "retry --force c",
  },
  {
    what: "add: the same folder twice",
    args: (w) => ["add", w.folder("tw"), w.folder("tw")],
    code: 2,
    says: "given twice",
  },
  {
    what: "add: --name with two folders",
    args: (w) => ["add", "--name", "x", w.folder("n1"), w.folder("n2")],
    code: 2,
    says: "--name names one job",
  },
  {
    what: "add: --name with a space",
    args: (w) => ["add", "--name", "a b", w.folder("n3")],
    code: 2,
    says: "--name",
  },
  {
    what: "add: --name starting with -",
    args: (w) => ["add", "--name=-rf", w.folder("n4")],
    code: 2,
    says: 'not starting with "-"',
  },
  {
    what: "add: --name taken",
    args: (w) => ["add", "--name", "a", w.folder("n5")],
    code: 2,
    says: "a job of that id exists already",
  },
  {
    what: "add: folder name with a newline",
    args: (w) => ["add", w.folder("bad\nname")],
    code: 2,
    says: "control characters",
  },
  {
    what: "add: folder name of 250 characters",
    args: (w) => ["add", w.folder("x".repeat(250))],
    code: 2,
    says: "longer than 200 characters",
  },
  // add: variables
  {
    what: "add: walltime 25:61:00",
    args: (w) => ["add", "--set", "walltime=25:61:00", w.folder("v1")],
    code: 2,
    says: "walltime must be",
  },
  {
    what: "add: nodes=0",
    args: (w) => ["add", "--set", "nodes=0", w.folder("v2")],
    code: 2,
    says: "nodes must be",
  },
  {
    what: "add: ncpus=x",
    args: (w) => ["add", "--set", "ncpus=x", w.folder("v3")],
    code: 2,
    says: "ncpus must be",
  },
  {
    what: "add: queue of two words",
    args: (w) => ["add", "--set", "queue=a b", w.folder("v4")],
    code: 2,
    says: "queue must be one word",
  },
  {
    what: "add: account with a line break",
    args: (w) => ["add", "--set", "account=P\nexit 0", w.folder("v5")],
    code: 2,
    says: "control character",
  },
  {
    what: "add: a misspelt variable",
    args: (w) => ["add", "--set", "wallclock=01:00:00", w.folder("v6")],
    code: 2,
    says: 'no variable "wallclock" (did you mean walltime?)',
  },
  {
    what: "add: --set without =",
    args: (w) => ["add", "--set", "walltime", w.folder("v7")],
    code: 2,
    says: "expected KEY=VALUE",
  },
  {
    what: "add: unknown template",
    args: (w) => ["add", "--template", "nosuch", w.folder("v8")],
    code: 2,
    says: 'unknown template "nosuch"',
  },
  {
    what: "add: a template with a syntax error",
    setup: (w) => userTemplate(w, "broken", "#!/bin/bash\n{{#if queue}}\n#PBS -q {{queue}}\n"),
    args: (w) => ["add", "--template", "broken", w.folder("t1")],
    code: 2,
    says: "syntax error",
  },
  {
    what: "add: a template reading a variable nobody sets",
    setup: (w) => userTemplate(w, "needs", "#!/bin/bash\n#PBS -l mem={{memory}}\n{{command}}\n"),
    args: (w) => ["add", "--template", "needs", w.folder("t2")],
    code: 2,
    says: 'uses the variable "memory", which is not set',
  },
  // other commands
  {
    what: "list: unknown state",
    args: () => ["list", "--state", "nope"],
    code: 2,
    says: 'unknown state "nope"',
  },
  {
    what: "list: unknown option",
    args: () => ["list", "--bogus"],
    code: 2,
    says: "unknown option '--bogus'",
  },
  { what: "show: no such job", args: () => ["show", "nosuch"], code: 2, says: "no such job: nosuch" },
  { what: "show: no job given", args: () => ["show"], code: 2, says: "missing required argument 'job'" },
  { what: "retry: no such job", args: () => ["retry", "nosuch"], code: 2, says: "no such job" },
  {
    what: "retry: a job still in the local queue",
    args: () => ["retry", "a"],
    code: 2,
    says: "waits in the local queue",
  },
  { what: "retry: a DONE job without --force", args: () => ["retry", "c"], code: 2, says: "retry --force c" },
  { what: "retry: a RUNNING job", args: () => ["retry", "b"], code: 2, says: "chasqui cancel b" },
  {
    what: "retry --restart: no CONTCAR",
    args: () => ["retry", "--restart", "d"],
    code: 2,
    says: "left no CONTCAR",
  },
  { what: "edit: nothing to change", args: () => ["edit", "a"], code: 2, says: "nothing to change" },
  {
    what: "edit: a RUNNING job",
    args: () => ["edit", "b", "--set", "nodes=2"],
    code: 2,
    says: "chasqui cancel b",
  },
  {
    what: "edit: bad walltime",
    args: () => ["edit", "a", "--set", "walltime=x"],
    code: 2,
    says: "walltime must be",
  },
  {
    what: "edit: a misspelt variable",
    args: () => ["edit", "a", "--set", "ncpu=4"],
    code: 2,
    says: "did you mean ncpus",
  },
  {
    what: "edit: no such job",
    args: () => ["edit", "nosuch", "--set", "nodes=2"],
    code: 2,
    says: "no such job",
  },
  { what: "rm: a RUNNING job", args: () => ["rm", "b"], code: 2, says: "chasqui cancel b" },
  { what: "rm: no such job", args: () => ["rm", "nosuch"], code: 2, says: "no such job" },
  { what: "cancel: no such job", args: () => ["cancel", "nosuch"], code: 2, says: "no such job" },
  { what: "download: no such job", args: () => ["download", "nosuch"], code: 2, says: "no such job" },
  {
    what: "template show: unknown",
    args: () => ["template", "show", "nosuch"],
    code: 2,
    says: "unknown template",
  },
  {
    what: "template render: unknown job",
    args: () => ["template", "render", "nosuch"],
    code: 2,
    says: "no such job",
  },
  { what: "an unknown command", args: () => ["frobnicate"], code: 2, says: "unknown command 'frobnicate'" },
  // files in CHASQUI_HOME
  {
    what: "config.json not JSON",
    setup: (w) => fs.writeFileSync(path.join(w.home, "config.json"), "{ host: h"),
    args: (w) => ["add", w.folder("cj")],
    code: 2,
    says: "config.json is corrupt",
  },
  {
    what: "config.json with a misspelt key",
    setup: (w) =>
      editJson(path.join(w.home, "config.json"), (o) => {
        o.max_queue = 5;
      }),
    args: (w) => ["add", w.folder("ck")],
    code: 2,
    says: 'unknown key "max_queue" (did you mean max_queued?)',
  },
  {
    what: "config.json with a bad value",
    setup: (w) =>
      editJson(path.join(w.home, "config.json"), (o) => {
        o.max_running = "many";
      }),
    args: (w) => ["add", w.folder("cv")],
    code: 2,
    says: "max_running",
  },
  {
    what: "config.json vars with a bad walltime",
    setup: (w) =>
      editJson(path.join(w.home, "config.json"), (o) => {
        (o.vars as Record<string, string>).walltime = "1h";
      }),
    args: (w) => ["add", w.folder("cw")],
    code: 2,
    says: "vars.walltime",
  },
  {
    what: "jobs.json corrupt",
    setup: (w) => fs.writeFileSync(path.join(w.home, "jobs.json"), '{"version": 3, "jobs": ['),
    args: () => ["list"],
    code: 2,
    says: "jobs.json is corrupt",
  },
  {
    what: "jobs.json from a newer chasqui",
    setup: (w) =>
      editJson(path.join(w.home, "jobs.json"), (o) => {
        o.version = 99;
      }),
    args: () => ["list"],
    code: 2,
    says: "newer chasqui (version 99)",
  },
  {
    what: "a dry run with a template broken after add",
    setup: (w) => userTemplate(w, "pbspro-vasp", "#!/bin/bash\n{{#if queue}}\n"),
    args: () => ["sync", "--dry-run"],
    code: 2,
    says: "not sent",
  },
];

let built = false;
beforeAll(() => {
  built = fs.existsSync(path.resolve(import.meta.dir, "../../dist/chasqui"));
});

describe("bad input, catalogued", () => {
  test("at least 60 cases", () => {
    expect(built).toBe(true);
    expect(CASES.length).toBeGreaterThanOrEqual(60);
  });

  test.each(CASES.map((c) => [c.what, c] as const))("%s", (_what, c) => {
    const w = world();
    c.setup?.(w);
    const args = c.args(w);
    const before = w.snapshot();
    const r = w.run(args);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: c.code });
    if (typeof c.says === "string") expect(r.stderr).toContain(c.says);
    else expect(r.stderr).toMatch(c.says);
    expect(r.stderr).toMatch(/^chasqui: /m);
    // Words, not internals (an errno name, a stack). The sandbox's own path is left out: its
    // random part can read like an errno name ("chasqui-e2e-EPLREK").
    expect(r.stderr.replaceAll(w.root, "<sandbox>")).not.toMatch(/\bE[A-Z]{3,}\b|unexpected error|\n\s+at /);
    expect(w.snapshot()).toEqual(before);
  });
});

describe("errors have one shape", () => {
  test("with --json, an error is JSON on stdout with the same exit code", () => {
    const w = world();
    const r = w.run(["show", "nosuch", "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { message: "no such job: nosuch", hint: "`chasqui list` shows the job ids.", exit_code: 2 },
    });
  });

  test("a file where CHASQUI_HOME's folder should be: a sentence and a hint, exit 1", () => {
    const w = world();
    const file = path.join(w.root, "plainfile");
    fs.writeFileSync(file, "x");
    const r = w.run(["init", "--host", "h"], { env: { CHASQUI_HOME: path.join(file, "home") } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("a file is where a folder should be");
    expect(r.stderr).toContain("hint:");
    expect(r.stderr).not.toMatch(/ENOTDIR|unexpected error/);
  });

  test("a host where nothing listens: the reason in words, exit 1, no job touched, status tells", () => {
    const w = world();
    const init = ["init", "--host", "127.0.0.1", "--port", "1", "--set", "account=P", "--force"];
    expect(w.run(init).code).toBe(0);
    const store = path.join(w.home, "jobs.json");
    const jobsBefore = JSON.parse(fs.readFileSync(store, "utf8")).jobs;
    const r = w.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot connect to 127.0.0.1:1: connection refused");
    expect(r.stderr).toContain("hint: Check the host and port");
    expect(r.stderr).not.toMatch(/ECONN/);
    const after = JSON.parse(fs.readFileSync(store, "utf8"));
    expect(after.jobs).toEqual(jobsBefore);
    // The one thing written: how this sync ended, for `chasqui status`.
    expect(after.last_report.error).toContain("connection refused");
    expect(w.run(["status"]).stdout).toContain("failed: cannot connect to 127.0.0.1:1: connection refused");
  });

  test("a PBS Professional template and no account: refused at add, nothing written", () => {
    const w = world({ account: false });
    const before = w.snapshot();
    const r = w.run(["add", w.folder("noacct")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('passes the project as "#PBS -A {{account}}", but account is not set');
    expect(w.snapshot()).toEqual(before);
  });
});

describe("closing the pipe is normal", () => {
  test.each([
    ["list", "list | head -1"],
    ["list --json", "list --json | head -1"],
    ["show", "show a | head -1"],
    ["template show", "template show pbspro-vasp | head -1"],
    ["sync --dry-run --scripts", "sync --dry-run --scripts | head -1"],
  ])("%s into a reader that stops early: exit 0, nothing on stderr", (_what, pipeline) => {
    const w = world();
    // Enough jobs that the output outgrows the pipe's buffer.
    const folders = Array.from({ length: 40 }, (_, i) => w.folder(`many${i}`));
    expect(w.run(["add", ...folders]).code).toBe(0);
    const [cmd, ...rest] = pipeline.split(" | ");
    const r = spawnSync(
      "bash",
      ["-c", `set -o pipefail; "$BIN" ${cmd} | ${rest.join(" | ")} >/dev/null; echo "rc=\${PIPESTATUS[0]}"`],
      {
        encoding: "utf8",
        env: {
          PATH: process.env.PATH ?? "",
          HOME: w.root,
          CHASQUI_HOME: w.home,
          BIN: path.resolve(import.meta.dir, "../../dist/chasqui"),
        },
      },
    );
    expect(r.stdout.trim()).toBe("rc=0");
    expect(r.stderr).toBe("");
  });
});

describe("status", () => {
  test("without connecting: never synced, then the last sync's numbers; --json too", () => {
    const w = world();
    let r = w.run(["status"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("last sync    never");
    expect(r.stdout).toContain("jobs         QUEUED_LOCAL 1, RUNNING 1, DONE 1, FAILED 1");
    const store = path.join(w.home, "jobs.json");
    editJson(store, (o) => {
      o.last_sync = "2026-12-01T10:00:00.000Z";
      o.last_report = { at: "2026-12-01T10:00:00.000Z", error: null, queued: 7, running: 3, waiting: 2 };
    });
    r = w.run(["status"]);
    expect(r.stdout).toContain("last sync    2026-12-01 10:00:00 UTC");
    expect(r.stdout).toContain(": complete");
    expect(r.stdout).toContain(
      "in scheduler 7 queued or running (max_queued 40), 3 running (max_running 30)",
    );
    expect(r.stdout).toContain("waiting      2 script(s)");
    const json = JSON.parse(w.run(["status", "--json"]).stdout);
    expect(json).toMatchObject({ last_attempt: { queued: 7, running: 3, waiting: 2 }, jobs: { DONE: 1 } });
  });

  test("the connection and cron lines: no master, cron installed or not, all read locally", () => {
    const w = world();
    const env = { CHASQUI_CRONTAB: path.join(w.root, "crontab") };
    let r = w.run(["status"], { env });
    expect(r.stdout).toContain("connection   no master (`chasqui connect` opens one");
    expect(r.stdout).toContain("cron         not installed (`chasqui cron install`)");
    expect(w.run(["cron", "install", "--every", "1h"], { env }).code).toBe(0);
    r = w.run(["status", "--json"], { env });
    expect(JSON.parse(r.stdout)).toMatchObject({
      transport: "auto",
      master: {
        live: false,
        until: null,
        source: "chasqui",
        control_path: path.join(w.home, "ssh", "master"),
      },
      cron: { installed: true, where: env.CHASQUI_CRONTAB },
    });
    editJson(path.join(w.home, "config.json"), (o) => {
      o.transport = "ssh2";
    });
    expect(w.run(["status"], { env }).stdout).toContain(
      'connection   transport "ssh2": every command logs in',
    );
  });
});

describe("unattended use, refused", () => {
  test("connect --for out of range, cron --every that cron cannot keep: exit 2, nothing written", () => {
    const w = world();
    const env = { CHASQUI_CRONTAB: path.join(w.root, "crontab") };
    const before = w.snapshot();
    for (const bad of ["0m", "8d", "soon", "12"]) {
      const r = w.run(["connect", "--for", bad], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--for "${bad}": expected a duration from 1m to 7d`);
    }
    const r = w.run(["cron", "install", "--every", "45m"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cron can run a sync every minutes dividing an hour");
    expect(fs.existsSync(env.CHASQUI_CRONTAB)).toBe(false);
    expect(w.snapshot()).toEqual(before);
  });

  test('connect with transport "ssh2" explains that nothing would use the connection', () => {
    const w = world();
    editJson(path.join(w.home, "config.json"), (o) => {
      o.transport = "ssh2";
    });
    const r = w.run(["connect"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'transport is "ssh2" in config.json: no command would use a master connection',
    );
  });

  test("a config with a bad transport or notify_on is refused by every command, named", () => {
    const w = world();
    editJson(path.join(w.home, "config.json"), (o) => {
      o.transport = "mosh";
      o.notify_on = ["job_done"];
    });
    const r = w.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('transport: must be one of "auto", "ssh2", "openssh"');
    expect(r.stderr).toContain(
      'notify_on: must be a list of job_finished, login_needed, sync_failed; not "job_done"',
    );
  });
});

describe("fixing a job", () => {
  test("edit changes a waiting job's variables; retry --force sends a DONE job again; rm forgets", () => {
    const w = world();
    const edit = w.run(["edit", "a", "--set", "walltime=08:00:00", "--set", "nodes=2"]);
    expect(edit.code).toBe(0);
    const script = w.run(["template", "render", "a"]).stdout;
    expect(script).toContain("walltime=08:00:00");
    expect(script).toContain("select=2:");
    expect(JSON.parse(w.run(["show", "a", "--json"]).stdout).history.at(-1).reason).toBe(
      "edited: walltime=08:00:00 nodes=2",
    );
    // A finished job can be edited for its next run, then sent again.
    expect(w.run(["edit", "c", "--set", "walltime=02:00:00"]).code).toBe(0);
    const again = w.run(["retry", "--force", "c", "--json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)[0]).toMatchObject({ id: "c", state: "QUEUED_LOCAL", attempt: 1 });
    // rm: never sent → gone; --remote on a job that was on the cluster → its folder goes at the next sync.
    expect(w.run(["rm", "a"]).code).toBe(0);
    const rm = w.run(["rm", "d", "--remote", "--json"]);
    expect(rm.code).toBe(0);
    const ids = (JSON.parse(w.run(["list", "--json"]).stdout) as { id: string }[]).map((j) => j.id);
    expect(ids).toEqual(["b", "c"]);
    expect(JSON.parse(rm.stdout)[0]).toMatchObject({ id: "d", remote: "removed at the next sync" });
    expect(JSON.parse(fs.readFileSync(path.join(w.home, "jobs.json"), "utf8")).remote_removals).toEqual([
      "d",
    ]);
  });
});
