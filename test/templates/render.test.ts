// Rendering: the default templates (snapshots, bash -n, shellcheck), variables, paths, strict errors.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Config, DEFAULT_VARS, defaultConfig } from "../../src/core/config.ts";
import { newJob } from "../../src/core/job.ts";
import { remotePaths, shellQuote } from "../../src/core/layout.ts";
import { renderBatchScript, templateNeedsPotcar, templateVariables } from "../../src/core/render.ts";
import { InputError } from "../../src/errors.ts";
import { EMBEDDED_PARTIALS, EMBEDDED_TEMPLATES } from "../../src/templates/embedded.ts";

const FIXED_JOB = {
  ...newJob({
    id: "si-bulk_relax-2024",
    name: "Si bulk relax",
    local_path: "/home/me/si",
    template: "pbspro-vasp",
    vars: { walltime: "04:00:00", modules: "vasp/6.4.2 intel-mpi" },
    now: new Date(0),
  }),
  attempt: 1,
};
const FIXED_CONFIG: Config = {
  ...defaultConfig("bebop"),
  vars: { ...DEFAULT_VARS, account: "MYPROJ", queue: "bdwall" },
};

function renderDefault(name: string, config: Config = FIXED_CONFIG): string {
  return renderBatchScript({
    name,
    source: EMBEDDED_TEMPLATES[name]!,
    partials: EMBEDDED_PARTIALS,
    vars: templateVariables({ ...FIXED_JOB, template: name }, config),
  });
}

function catchInputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error("expected an InputError");
}

const hasShellcheck = spawnSync("sh", ["-c", "command -v shellcheck"]).status === 0;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-render-"));

describe.each(Object.keys(EMBEDDED_TEMPLATES))("default template %s", (name) => {
  const script = renderDefault(name);

  test("matches its snapshot", () => {
    expect(script).toMatchSnapshot();
  });

  test("is valid bash, starts with its shebang, sources the job helper, ends by running the job", () => {
    expect(script.startsWith("#!/bin/bash\n")).toBe(true);
    expect(script).toMatch(
      /^\. "\$HOME"\/chasqui_remote\/lib\/job-[0-9a-f]{12}\.sh si-bulk_relax-2024 \d+ /m,
    );
    expect(script.trimEnd().endsWith("chasqui_run")).toBe(true);
    const file = path.join(scratch, `${name}.sh`);
    fs.writeFileSync(file, script);
    const r = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  // test/run.sh installs shellcheck; only a run by hand without it skips this.
  test.skipIf(!hasShellcheck && process.env.CI !== "true")("passes shellcheck", () => {
    const file = path.join(scratch, `${name}.sh`);
    fs.writeFileSync(file, script);
    const r = spawnSync("shellcheck", ["-s", "bash", "-S", "warning", file], { encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  test("scheduler directives come before the first command", () => {
    const lines = script.split("\n");
    const firstCommand = lines.findIndex((l, i) => i > 0 && l.trim() !== "" && !l.startsWith("#"));
    const lastDirective = lines.findLastIndex((l) => /^#(PBS|SBATCH) /.test(l));
    expect(lastDirective).toBeGreaterThan(0);
    expect(lastDirective).toBeLessThan(firstCommand);
  });

  test("names the job by schedulerJobName; the helper gets the work folder and modules; job() runs the command", () => {
    expect(script).toMatch(/^#(PBS -N |SBATCH --job-name=)csibulkr_[0-9a-f]{6}$/m);
    expect(script).toContain(
      ' "$HOME"/chasqui_remote "$HOME"/chasqui_remote/jobs/si-bulk_relax-2024 \'vasp/6.4.2 intel-mpi\' || exit 1\n',
    );
    expect(script).toContain("\njob() {\nmpirun vasp_std\n}\n");
    expect(script).toContain(
      'succeeded() { grep -qF "General timing and accounting informations for this job" OUTCAR; }',
    );
  });

  test("is short enough to read: the directives, the helper, job(), the success rule", () => {
    expect(script.split("\n").filter((l) => l.trim() !== "").length).toBeLessThanOrEqual(17);
  });
});

describe("template directives", () => {
  test("pbspro-vasp: Bebop's select, account, queue, walltime, no rerun, joined output", () => {
    const script = renderDefault("pbspro-vasp");
    for (const line of [
      "#PBS -A MYPROJ",
      "#PBS -q bdwall",
      "#PBS -l select=1:ncpus=36:mpiprocs=36",
      "#PBS -l walltime=04:00:00",
      "#PBS -r n",
      "#PBS -j oe",
    ]) {
      expect(script).toContain(`\n${line}\n`);
    }
  });

  test("torque-vasp and slurm-vasp leave the account out when it is empty", () => {
    const config = { ...FIXED_CONFIG, vars: { ...FIXED_CONFIG.vars, account: "" } };
    const torque = renderDefault("torque-vasp", config);
    expect(torque).toContain("\n#PBS -l nodes=1:ppn=36\n");
    expect(torque).not.toContain("#PBS -A");
    expect(renderDefault("torque-vasp")).toContain("\n#PBS -A MYPROJ\n");
    const slurm = renderDefault("slurm-vasp", config);
    expect(slurm).toContain(
      "\n#SBATCH --ntasks-per-node=36\n#SBATCH --time=04:00:00\n#SBATCH --partition=bdwall\n",
    );
    expect(slurm).not.toContain("--account");
    expect(renderDefault("slurm-vasp")).toContain("\n#SBATCH --account=MYPROJ\n");
  });

  test("a value is inserted as is: no HTML escaping", () => {
    const script = renderBatchScript({
      source: "{{command}}\n",
      vars: { command: "mpirun -np 4 vasp_std > out 2>&1 && echo '<ok>'" },
    });
    expect(script).toBe("mpirun -np 4 vasp_std > out 2>&1 && echo '<ok>'\n");
  });

  test("NAME_sh is the value as one shell word, even with quotes and $", () => {
    const value = `it's $HOME; \`x\``;
    const script = renderBatchScript({ source: "printf '%s' {{v_sh}}", vars: { v: value } });
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    expect(r.stdout).toBe(value);
  });
});

describe("templateNeedsPotcar", () => {
  test.each([
    ["#!/bin/bash\n#PBS -N x\n", true],
    ["#!/bin/bash\n# chasqui: no-potcar\n", false],
    ["#!/bin/bash\n  #chasqui:no-potcar  \n", false],
    ["#!/bin/bash\n# say `# chasqui: no-potcar` to skip POTCAR\n", true],
    ["#!/bin/bash\n# chasqui: no-potcar-please\n", true],
  ])("%j → %p", (source, needs) => {
    expect(templateNeedsPotcar(source)).toBe(needs);
  });

  test("the defaults all need a POTCAR", () => {
    for (const source of Object.values(EMBEDDED_TEMPLATES)) expect(templateNeedsPotcar(source)).toBe(true);
  });
});

describe("templateVariables", () => {
  test("DEFAULT_VARS < config.vars < job.vars < what chasqui provides", () => {
    const config: Config = {
      ...defaultConfig("h"),
      scheduler: "slurm",
      vars: { queue: "cfgq", walltime: "02:00:00", extra: "from-config" },
    };
    const job = {
      ...newJob({
        id: "a",
        name: "A",
        local_path: "/a",
        template: "slurm-vasp",
        vars: { walltime: "03:00:00", id: "sneaky", attempt: "9" },
        now: new Date(0),
      }),
      attempt: 2,
    };
    const vars = templateVariables(job, config);
    expect(vars).toMatchObject({
      command: "mpirun vasp_std",
      ncpus: "36",
      queue: "cfgq",
      walltime: "03:00:00",
      extra: "from-config",
      id: "a",
      name: "A",
      job_name: "a",
      attempt: "2",
      scheduler: "slurm",
      template: "slurm-vasp",
      remote_dir_sh: '"$HOME"/chasqui_remote',
      work_dir_sh: '"$HOME"/chasqui_remote/jobs/a',
    });
  });
});

describe("remotePaths", () => {
  test.each([
    ["chasqui_remote", null, '"$HOME"/chasqui_remote', '"$HOME"/chasqui_remote/jobs/j1'],
    ["~/runs/chasqui/", null, '"$HOME"/runs/chasqui', '"$HOME"/runs/chasqui/jobs/j1'],
    ["./x", null, '"$HOME"/x', '"$HOME"/x/jobs/j1'],
    ["/lcrc/project/p/me", null, "/lcrc/project/p/me", "/lcrc/project/p/me/jobs/j1"],
    ["chasqui_remote", "/scratch/me/", '"$HOME"/chasqui_remote', "/scratch/me/j1"],
    ["my runs", "scratch space", "\"$HOME\"/'my runs'", "\"$HOME\"/'scratch space/j1'"],
    ["it's", null, `"$HOME"/'it'\\''s'`, `"$HOME"/'it'\\''s/jobs/j1'`],
  ])("remote_dir %j, work_root %j", (remote_dir, work_root, remoteWord, workWord) => {
    const p = remotePaths({ remote_dir, work_root }, "j1");
    expect(p.remote_dir_sh).toBe(remoteWord);
    expect(p.work_dir_sh).toBe(workWord);
  });

  test("the words expand in a shell to the intended folders", () => {
    const p = remotePaths({ remote_dir: "it's here", work_root: "/tmp/a b" }, "j.1");
    const r = spawnSync("bash", ["-c", `printf '%s\\n' ${p.remote_dir_sh} ${p.work_dir_sh}`], {
      encoding: "utf8",
      env: { HOME: "/home/u" },
    });
    expect(r.stdout).toBe("/home/u/it's here\n/tmp/a b/j.1\n");
  });

  test("one quoter: plain words alone, the rest single-quoted (NAME_sh in templates too)", () => {
    expect(shellQuote("vasp/6.4")).toBe("vasp/6.4");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("a=b")).toBe("'a=b'");
  });
});

describe("strict rendering errors", () => {
  test("a missing variable names the variable, the template and the line", () => {
    const err = catchInputError(() =>
      renderBatchScript({
        name: "mine",
        source: "#!/bin/bash\n#PBS -q {{queue}}\n#PBS -A {{acount}}\n",
        vars: { queue: "q" },
      }),
    );
    expect(err.message).toBe('template "mine" uses the variable "acount", which is not set (line 3)');
    expect(err.hint).toContain("--set acount=");
    expect(err.exitCode).toBe(2);
  });

  test("a missing variable used as NAME_sh is reported by its own name", () => {
    const err = catchInputError(() =>
      renderBatchScript({ name: "t", source: "x={{modules_sh}}\n", vars: {} }),
    );
    expect(err.message).toContain('"modules" (used as modules_sh)');
  });

  test("a missing variable inside a partial names the partial and its template", () => {
    const err = catchInputError(() =>
      renderBatchScript({
        name: "outer",
        source: "a\n{{> inner}}\n",
        partials: { inner: "line 1\nline 2 {{gone}}\n" },
        vars: {},
      }),
    );
    expect(err.message).toBe(
      'partial "inner" (used by template "outer") uses the variable "gone", which is not set (line 2)',
    );
  });

  test("a syntax error names the template and the line", () => {
    const err = catchInputError(() =>
      renderBatchScript({ name: "broken", source: "#!/bin/bash\n\n{{#if account}}\n#PBS -A x\n", vars: {} }),
    );
    expect(err.message).toMatch(/^template "broken" has a syntax error \(line \d+\): /);
    const mismatch = catchInputError(() =>
      renderBatchScript({ name: "b2", source: "a\nb\n{{#if x}}y{{/each}}\n", vars: { x: "1" } }),
    );
    expect(mismatch.message).toBe('template "b2" has a syntax error (line 3): if doesn\'t match each');
  });

  test("a syntax error in a partial is reported against the partial", () => {
    const err = catchInputError(() =>
      renderBatchScript({ name: "t", source: "{{> p}}", partials: { p: "ok\n{{oops" }, vars: {} }),
    );
    expect(err.message).toMatch(/^partial "p" \(used by template "t"\) has a syntax error \(line 2\)/);
  });

  test("an unknown partial is named", () => {
    const err = catchInputError(() => renderBatchScript({ name: "t", source: "{{> nowhere}}\n", vars: {} }));
    expect(err.message).toContain('includes the partial "nowhere", which does not exist');
  });

  test("environments are isolated: a partial given to one render is unknown to the next", () => {
    expect(renderBatchScript({ source: "{{> p}}", partials: { p: "P" }, vars: {} })).toBe("P");
    expect(() => renderBatchScript({ source: "{{> p}}", vars: {} })).toThrow(InputError);
  });
});
