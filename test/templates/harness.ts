// Renders a default template for a throwaway cluster layout on this machine and runs it with bash.
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Config, defaultConfig } from "../../src/core/config.ts";
import { newJob } from "../../src/core/job.ts";
import { JOB_LIB_FILE, JOB_LIB_TEXT } from "../../src/core/jobLib.ts";
import { renderBatchScript, templateVariables } from "../../src/core/render.ts";
import { EMBEDDED_PARTIALS, EMBEDDED_TEMPLATES } from "../../src/templates/embedded.ts";

const TIMING_LINE = " General timing and accounting informations for this job:";

/**
 * The stand-in for `mpirun vasp_std`. Modes: ok (exit 0, full OUTCAR), notiming (exit 0, OUTCAR
 * cut short), exit N (full OUTCAR, exit N), sleep (waits to be killed), groupkill (signals its own
 * process group the way MPI launchers clean up after a failed rank, then exits 1).
 */
const FAKE_COMMAND = `#!/bin/bash
echo "fake vasp says hello"
echo "$$" > cmd.pid
case "$1" in
  ok) printf 'OUTCAR head\\n%s\\n' "${TIMING_LINE}" > OUTCAR; exit 0 ;;
  notiming) echo "OUTCAR head only" > OUTCAR; exit 0 ;;
  exit) printf 'OUTCAR head\\n%s\\n' "${TIMING_LINE}" > OUTCAR; exit "$2" ;;
  sleep) echo "OUTCAR head" > OUTCAR; touch started; sleep 60 & wait ;;
  groupkill) trap '' TERM; kill -TERM 0; echo "OUTCAR head" > OUTCAR; exit 1 ;;
esac
`;

/** Records every `mv` into completed/ so a test can count how often a flag was put in place. */
const MV_SHIM = `#!/bin/bash
for a in "$@"; do
  case "$a" in */completed/*.flag) echo "$a" >> "$CHASQUI_TEST_MVLOG" ;; esac
done
exec /bin/mv "$@"
`;

/** Stands in for the cluster's environment modules. */
const MODULE_SHIM = `#!/bin/bash
echo "$*" >> "$CHASQUI_TEST_MODULELOG"
[ "$2" != broken ] 
`;

/** The agent: notes that it was triggered, with its arguments and whether stdin was detached,
 * after a moment's work (a script that left it behind would exit before the note). */
const FAKE_AGENT = `#!/bin/bash
sleep 0.3
{ [ -t 0 ] && echo tty || echo notty; echo "$*"; } > "$(dirname "$0")/agent.triggered.tmp"
mv "$(dirname "$0")/agent.triggered.tmp" "$(dirname "$0")/agent.triggered"
`;

export interface Layout {
  /** Parent of everything; its name has a space and a quote, so quoting mistakes show. */
  root: string;
  remote: string;
  work: string;
  bin: string;
  jobId: string;
  flag: string;
  mvLog: string;
  moduleLog: string;
}

export function makeLayout(jobId = "job-1"): Layout {
  const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-tpl-")), "a b'c");
  const remote = path.join(root, "remote");
  const work = path.join(remote, "jobs", jobId);
  const bin = path.join(root, "bin");
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "fake-vasp"), FAKE_COMMAND, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, "mv"), MV_SHIM, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, "module"), MODULE_SHIM, { mode: 0o755 });
  fs.writeFileSync(path.join(remote, "agent.sh"), FAKE_AGENT, { mode: 0o755 });
  // The job helper, where an upload puts it.
  fs.mkdirSync(path.join(remote, "lib"));
  fs.writeFileSync(path.join(remote, "lib", JOB_LIB_FILE), JOB_LIB_TEXT);
  return {
    root,
    remote,
    work,
    bin,
    jobId,
    flag: path.join(remote, "completed", `${jobId}.flag`),
    mvLog: path.join(root, "mv.log"),
    moduleLog: path.join(root, "module.log"),
  };
}

export function renderFor(
  layout: Layout,
  template: string,
  vars: Record<string, string>,
  opts: { attempt?: number; config?: Partial<Config> } = {},
): string {
  const config: Config = { ...defaultConfig("cluster"), remote_dir: layout.remote, ...opts.config };
  const job = {
    ...newJob({
      id: layout.jobId,
      name: "test job",
      local_path: "/nowhere",
      template,
      vars,
      now: new Date(0),
    }),
    attempt: opts.attempt ?? 0,
  };
  const source = EMBEDDED_TEMPLATES[template];
  if (source === undefined) throw new Error(`no template ${template}`);
  return renderBatchScript({
    name: template,
    source,
    partials: EMBEDDED_PARTIALS,
    vars: templateVariables(job, config),
  });
}

/** A template source of one's own, rendered for the layout's job (partials as chasqui has them). */
export function renderSource(layout: Layout, source: string, vars: Record<string, string>): string {
  const config: Config = { ...defaultConfig("cluster"), remote_dir: layout.remote };
  const job = newJob({
    id: layout.jobId,
    name: "test job",
    local_path: "/nowhere",
    template: "mine",
    vars,
    now: new Date(0),
  });
  return renderBatchScript({
    name: "mine",
    source,
    partials: EMBEDDED_PARTIALS,
    vars: templateVariables(job, config),
  });
}

/** The command line that runs the fake VASP in `mode`, as a template's `command` value. */
export function fakeCommand(layout: Layout, mode: string): string {
  return `bash "${path.join(layout.bin, "fake-vasp").replaceAll('"', '\\"')}" ${mode}`;
}

export interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Run a rendered script with bash, as a scheduler would: in its own process group, from $HOME. */
export function runScript(layout: Layout, script: string, env: Record<string, string> = {}): Running {
  const file = path.join(layout.root, "job.sh");
  fs.writeFileSync(file, script);
  const child = spawn("bash", [file], {
    cwd: layout.root,
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      PATH: `${layout.bin}:/usr/bin:/bin`,
      HOME: layout.root,
      PBS_JOBID: "77.pbshost",
      CHASQUI_TEST_MVLOG: layout.mvLog,
      CHASQUI_TEST_MODULELOG: layout.moduleLog,
      ...env,
    },
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      child.on("close", (code, signal) => resolve({ code, signal, stderr }));
    },
  );
  return { child, done };
}

/** Poll until `check` holds; fail after the deadline (a condition, not a sleep). */
export async function waitFor(what: string, check: () => boolean, ms = 10_000, pollMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export interface Flag {
  status: string;
  schedulerId: string;
  exitCode: string;
  time: string;
  lines: number;
  /** Lines 5 and on: the run summary, KEY=VALUE. */
  extra: string[];
}

export function readFlag(file: string): Flag {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return {
    status: lines[0] ?? "",
    schedulerId: lines[1] ?? "",
    exitCode: lines[2] ?? "",
    time: lines[3] ?? "",
    lines: lines.length,
    extra: lines.slice(4),
  };
}

/** How many times a flag was moved into place (the mv shim's log). */
export function flagWrites(layout: Layout): number {
  if (!fs.existsSync(layout.mvLog)) return 0;
  return fs.readFileSync(layout.mvLog, "utf8").split("\n").filter(Boolean).length;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
