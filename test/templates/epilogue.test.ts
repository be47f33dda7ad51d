// The completion epilogue, run for real with bash: DONE / FAIL / TIMEOUT flags, written once and atomically.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { JOB_LIB_FILE } from "../../src/core/jobLib.ts";
import {
  fakeCommand,
  flagWrites,
  type Layout,
  makeLayout,
  processAlive,
  readFlag,
  renderFor,
  renderSource,
  runScript,
  waitFor,
} from "./harness.ts";

const layouts: Layout[] = [];
afterAll(() => {
  for (const l of layouts) fs.rmSync(path.dirname(l.root), { recursive: true, force: true });
});

function setup(mode: string, vars: Record<string, string> = {}, attempt = 0) {
  const layout = makeLayout();
  layouts.push(layout);
  const script = renderFor(
    layout,
    "torque-vasp",
    { command: fakeCommand(layout, mode), ...vars },
    { attempt },
  );
  return { layout, script };
}

/** What the agent was run with: it must have finished before the script exited, since the
 * scheduler kills whatever a job leaves behind. */
function agentTriggered(layout: Layout): string {
  const file = path.join(layout.remote, "agent.triggered");
  if (!fs.existsSync(file)) throw new Error("the agent was not run to its end before the script exited");
  return fs.readFileSync(file, "utf8");
}

function leftoverTempFiles(layout: Layout): string[] {
  return fs.readdirSync(path.dirname(layout.flag)).filter((f) => f !== `${layout.jobId}.flag`);
}

describe("a command that ends by itself", () => {
  test("exit 0 with VASP's timing section: DONE, stdout captured, the agent run to its end before exit", async () => {
    const { layout, script } = setup("ok", {}, 2);
    const result = await runScript(layout, script).done;
    expect(result.code).toBe(0);
    const flag = readFlag(layout.flag);
    expect(flag).toMatchObject({ status: "DONE", schedulerId: "77.pbshost", exitCode: "0" });
    // The summary follows the four lines: no OSZICAR or CONTCAR here, so wall time and "missing".
    expect(flag.extra).toContain("contcar=missing");
    expect(flag.extra.some((l) => /^elapsed=\d+$/.test(l))).toBe(true);
    expect(flag.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Math.abs(Date.parse(flag.time) - Date.now())).toBeLessThan(5 * 60_000);
    expect(flagWrites(layout)).toBe(1);
    expect(leftoverTempFiles(layout)).toEqual([]);
    const stdout = fs.readFileSync(path.join(layout.work, "stdout"), "utf8");
    expect(stdout).toContain("attempt 2");
    expect(stdout).toContain("fake vasp says hello");
    expect(agentTriggered(layout)).toBe("notty\ntrigger --from-job --within 60\n");
  });

  test("a template made from the earlier defaults (prologue, modules, epilogue partials) still runs to DONE", async () => {
    const layout = makeLayout();
    layouts.push(layout);
    const old = [
      "#!/bin/bash",
      "#PBS -N {{job_name}}",
      "{{> chasqui_prologue}}",
      "{{> chasqui_modules}}",
      "{{> chasqui_epilogue}}",
      "",
    ].join("\n");
    const script = renderSource(layout, old, { command: fakeCommand(layout, "ok"), modules: "vasp/6" });
    expect((await runScript(layout, script).done).code).toBe(0);
    expect(readFlag(layout.flag)).toMatchObject({ status: "DONE", exitCode: "0" });
    expect(fs.readFileSync(layout.moduleLog, "utf8")).toBe("load vasp/6\n");
  });

  test("the job helper missing on the cluster: exit 1 before the command runs", async () => {
    const { layout, script } = setup("ok");
    fs.rmSync(path.join(layout.remote, "lib"), { recursive: true });
    const result = await runScript(layout, script).done;
    expect(result.code).toBe(1);
    expect(fs.existsSync(path.join(layout.work, "cmd.pid"))).toBe(false);
  });

  test("exit 0 without the timing section: FAIL with exit code 0", async () => {
    const { layout, script } = setup("notiming");
    const result = await runScript(layout, script).done;
    expect(result.code).toBe(0);
    expect(readFlag(layout.flag)).toMatchObject({ status: "FAIL", exitCode: "0" });
  });

  test("a non-zero exit: FAIL, the exit code kept in the flag and as the script's own", async () => {
    const { layout, script } = setup("exit 3");
    const result = await runScript(layout, script).done;
    expect(result.code).toBe(3);
    expect(readFlag(layout.flag)).toMatchObject({ status: "FAIL", exitCode: "3" });
    expect(flagWrites(layout)).toBe(1);
    agentTriggered(layout);
  });

  test("a failing command that signals its own process group still ends FAIL, not TIMEOUT", async () => {
    // MPI launchers clean up after a failed rank by signalling their process group. When the
    // command shared the script's group, that SIGTERM reached the script's trap and a FAIL
    // became a TIMEOUT; the command now runs in a group of its own.
    const { layout, script } = setup("groupkill");
    const result = await runScript(layout, script).done;
    expect(readFlag(layout.flag).status).toBe("FAIL");
    expect(result.code).not.toBe(0);
    expect(flagWrites(layout)).toBe(1);
  });

  // A SIGTERM can reach the script after the command has ended (a scheduler's cleanup, another
  // process's kill): these inject one, deterministically, at the two places it can land.
  function injectTerm(layout: Layout, after: string, send = "kill -TERM $$"): void {
    const lib = path.join(layout.remote, "lib", JOB_LIB_FILE);
    const text = fs.readFileSync(lib, "utf8");
    expect(text).toContain(after);
    // A function, not a string: in a replacement string "$$" would become a lone "$".
    fs.writeFileSync(
      lib,
      text.replace(after, () => `${after}\n${send}`),
    );
  }

  // How the command ended, and whether (and when) a SIGTERM reached the script after it.
  test.each([
    [
      "a SIGTERM just after a failed command has ended: FAIL with its exit code, not TIMEOUT",
      "exit 3",
      "kill -TERM $$",
      "FAIL",
      3,
    ],
    // The scheduler signals each process of the job in turn: the command may die (143) and its
    // group note the exit code before the script's own SIGTERM arrives.
    [
      "the command killed by the job's SIGTERM before this script hears it: TIMEOUT, not FAIL 143",
      "exit 143",
      "kill -TERM $$",
      "TIMEOUT",
      143,
    ],
    // Seen under load with Slurm's scancel: the script's SIGTERM came after it stopped listening.
    [
      "the job's SIGTERM reaching the script 300 ms after the command died of it: TIMEOUT",
      "exit 143",
      "(sleep 0.3; kill -TERM $$) &",
      "TIMEOUT",
      143,
    ],
    // A segfault, a command that kills itself: no SIGTERM follows, and the short wait for one ends.
    [
      "the command dead of a signal no one sent the job: FAIL with its exit code",
      "exit 139",
      null,
      "FAIL",
      139,
    ],
  ] as const)("%s", async (_name, command, send, status, code) => {
    const { layout, script } = setup(command);
    if (send !== null) injectTerm(layout, "chasqui_rc=$?", send);
    const result = await runScript(layout, script).done;
    expect(readFlag(layout.flag)).toMatchObject({ status, exitCode: String(code) });
    expect(result.code).toBe(code);
    expect(flagWrites(layout)).toBe(1);
  });

  test("a SIGTERM after the flag is written changes nothing", async () => {
    const { layout, script } = setup("ok");
    injectTerm(layout, '  chasqui_write_flag "$1" "$2"');
    const result = await runScript(layout, script).done;
    expect(readFlag(layout.flag)).toMatchObject({ status: "DONE", exitCode: "0" });
    expect(result.code).toBe(0);
    expect(flagWrites(layout)).toBe(1);
    agentTriggered(layout);
  });

  test("modules are loaded, split on spaces", async () => {
    const { layout, script } = setup("ok", { modules: "vasp/6.4.2  intel-mpi/2021" });
    expect((await runScript(layout, script).done).code).toBe(0);
    expect(fs.readFileSync(layout.moduleLog, "utf8")).toBe("load vasp/6.4.2 intel-mpi/2021\n");
  });

  test("a module that fails to load: FAIL before the command runs", async () => {
    const { layout, script } = setup("ok", { modules: "broken" });
    expect((await runScript(layout, script).done).code).toBe(1);
    expect(readFlag(layout.flag)).toMatchObject({ status: "FAIL", exitCode: "1" });
    expect(fs.existsSync(path.join(layout.work, "cmd.pid"))).toBe(false);
  });

  test("no modules: module is not called", async () => {
    const { layout, script } = setup("ok", { modules: "" });
    expect((await runScript(layout, script).done).code).toBe(0);
    expect(fs.existsSync(layout.moduleLog)).toBe(false);
  });

  test("a missing work folder: FAIL, and the command never runs", async () => {
    const { layout, script } = setup("ok");
    fs.rmSync(layout.work, { recursive: true });
    const result = await runScript(layout, script).done;
    expect(result.code).toBe(1);
    expect(readFlag(layout.flag)).toMatchObject({ status: "FAIL", exitCode: "1" });
    expect(result.stderr).toContain("cannot enter the work folder");
  });

  test("Slurm's job id when there is no PBS_JOBID", async () => {
    const { layout, script } = setup("ok");
    const result = await runScript(layout, script, { PBS_JOBID: "", SLURM_JOB_ID: "4242" }).done;
    expect(result.code).toBe(0);
    expect(readFlag(layout.flag).schedulerId).toBe("4242");
  });
});

describe("a walltime kill", () => {
  async function startSleeping() {
    const { layout, script } = setup("sleep");
    const run = runScript(layout, script);
    await waitFor("the command to start", () => fs.existsSync(path.join(layout.work, "started")));
    const cmdPid = Number(fs.readFileSync(path.join(layout.work, "cmd.pid"), "utf8"));
    return { layout, run, cmdPid };
  }

  test("SIGTERM to the script alone: TIMEOUT at once, and the command is stopped too", async () => {
    const { layout, run, cmdPid } = await startSleeping();
    process.kill(run.child.pid!, "SIGTERM");
    const result = await run.done;
    expect(result.code).toBe(143);
    expect(readFlag(layout.flag)).toMatchObject({
      status: "TIMEOUT",
      schedulerId: "77.pbshost",
      exitCode: "143",
    });
    expect(flagWrites(layout)).toBe(1);
    expect(leftoverTempFiles(layout)).toEqual([]);
    await waitFor("the command to die", () => !processAlive(cmdPid));
    // SIGKILL is seconds away after a SIGTERM: a short turn only.
    expect(agentTriggered(layout)).toBe("notty\ntrigger --from-job --within 4\n");
  });

  test("SIGTERM to every process of the job at once (as PBS and Slurm do): TIMEOUT, written once", async () => {
    const { layout, run, cmdPid } = await startSleeping();
    const cmdGroup = -Number(fs.readFileSync(`/proc/${cmdPid}/stat`, "utf8").split(") ")[1]!.split(" ")[2]);
    expect(cmdGroup).not.toBe(-run.child.pid!);
    process.kill(cmdGroup, "SIGTERM");
    process.kill(-run.child.pid!, "SIGTERM");
    const result = await run.done;
    expect(result.code).toBe(143);
    expect(readFlag(layout.flag).status).toBe("TIMEOUT");
    expect(flagWrites(layout)).toBe(1);
  });

  test("a second SIGTERM while the script is finishing does not write another flag", async () => {
    const { layout, run } = await startSleeping();
    process.kill(run.child.pid!, "SIGTERM");
    process.kill(run.child.pid!, "SIGTERM");
    const result = await run.done;
    expect(result.code).toBe(143);
    expect(readFlag(layout.flag).status).toBe("TIMEOUT");
    expect(flagWrites(layout)).toBe(1);
  });
});
