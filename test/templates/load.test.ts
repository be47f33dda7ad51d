// Templates on disk: embedded defaults, user overrides (templates and partials), init without overwriting.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultConfig } from "../../src/core/config.ts";
import { newJob } from "../../src/core/job.ts";
import { InputError } from "../../src/errors.ts";
import { EMBEDDED_PARTIALS, EMBEDDED_TEMPLATES } from "../../src/templates/embedded.ts";
import { initTemplates, listTemplates, loadTemplate } from "../../src/templates/load.ts";
import { createJobRenderer, renderJobScript } from "../../src/templates/renderJob.ts";

const homes: string[] = [];
afterAll(() => {
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

function home(files: Record<string, string> = {}): string {
  const h = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-home-"));
  homes.push(h);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(h, rel)), { recursive: true });
    fs.writeFileSync(path.join(h, rel), content);
  }
  return h;
}

const job = (template: string) =>
  newJob({ id: "j1", name: "j1", local_path: "/j1", template, vars: {}, now: new Date(0) });

describe("listTemplates", () => {
  test("without a templates folder: the embedded defaults, sorted", async () => {
    expect(await listTemplates(home())).toEqual([
      { name: "pbspro-vasp", origin: "embedded", overrides: false },
      { name: "slurm-vasp", origin: "embedded", overrides: false },
      { name: "torque-vasp", origin: "embedded", overrides: false },
    ]);
  });

  test("user files are listed, and say which embedded template they replace", async () => {
    const h = home({
      "templates/pbspro-vasp.sh.hbs": "mine",
      "templates/cp2k.sh.hbs": "other",
      "templates/notes.txt": "not a template",
      "templates/partials/chasqui_epilogue.sh.hbs": "a partial, not a template",
    });
    const list = await listTemplates(h);
    expect(list.map((t) => [t.name, t.origin, t.overrides])).toEqual([
      ["cp2k", "user", false],
      ["pbspro-vasp", "user", true],
      ["slurm-vasp", "embedded", false],
      ["torque-vasp", "embedded", false],
    ]);
    expect(list[1]!.path).toBe(path.join(h, "templates", "pbspro-vasp.sh.hbs"));
  });
});

describe("loadTemplate", () => {
  test("the embedded default, with the embedded partials", async () => {
    const t = await loadTemplate(home(), "torque-vasp");
    expect(t).toMatchObject({
      name: "torque-vasp",
      origin: "embedded",
      source: EMBEDDED_TEMPLATES["torque-vasp"],
    });
    expect(t.path).toBeUndefined();
    expect(t.partials).toEqual({ ...EMBEDDED_PARTIALS });
  });

  test("a user file overrides the embedded template of that name, read fresh each time", async () => {
    const h = home({ "templates/pbspro-vasp.sh.hbs": "#!/bin/bash\n# v1 {{id}}\n" });
    const first = await loadTemplate(h, "pbspro-vasp");
    expect(first).toMatchObject({ origin: "user", source: "#!/bin/bash\n# v1 {{id}}\n" });
    fs.writeFileSync(path.join(h, "templates", "pbspro-vasp.sh.hbs"), "#!/bin/bash\n# v2 {{id}}\n");
    expect(await renderJobScript(h, job("pbspro-vasp"), defaultConfig("x"))).toBe("#!/bin/bash\n# v2 j1\n");
  });

  test("user partials override the embedded ones and add new ones", async () => {
    const h = home({
      "templates/partials/chasqui_epilogue.sh.hbs": "# my epilogue for {{id}}\n",
      "templates/partials/site.sh.hbs": "# site setup\n",
      "templates/mine.sh.hbs": "#!/bin/bash\n{{> site}}{{> chasqui_epilogue}}",
    });
    const t = await loadTemplate(h, "mine");
    expect(t.partials.chasqui_prologue).toBe(EMBEDDED_PARTIALS.chasqui_prologue!);
    expect(t.partials.chasqui_epilogue).toBe("# my epilogue for {{id}}\n");
    expect(await renderJobScript(h, job("mine"), defaultConfig("x"))).toBe(
      "#!/bin/bash\n# site setup\n# my epilogue for j1\n",
    );
    // Today's default templates include no partial: a user's old epilogue cannot change them.
    const pbs = await renderJobScript(h, job("pbspro-vasp"), defaultConfig("x"));
    expect(pbs.trimEnd().endsWith("chasqui_run")).toBe(true);
  });

  test.each(["nope", "../config", "a/b", ""])(
    "unknown or malformed name %j: InputError listing the names",
    async (name) => {
      const h = home({ "templates/cp2k.sh.hbs": "x" });
      const err = await loadTemplate(h, name).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toBe(
        `unknown template "${name}"; available: cp2k, pbspro-vasp, slurm-vasp, torque-vasp`,
      );
    },
  );
});

describe("initTemplates", () => {
  test("copies every default template out (never chasqui's machinery), then never overwrites", async () => {
    const h = home({ "templates/slurm-vasp.sh.hbs": "my edits" });
    const first = await initTemplates(h);
    const dir = path.join(h, "templates");
    expect(first.skipped).toEqual([path.join(dir, "slurm-vasp.sh.hbs")]);
    expect(first.written.sort()).toEqual(
      [path.join(dir, "pbspro-vasp.sh.hbs"), path.join(dir, "torque-vasp.sh.hbs")].sort(),
    );
    expect(fs.readFileSync(path.join(dir, "slurm-vasp.sh.hbs"), "utf8")).toBe("my edits");
    expect(fs.readFileSync(path.join(dir, "pbspro-vasp.sh.hbs"), "utf8")).toBe(
      EMBEDDED_TEMPLATES["pbspro-vasp"]!,
    );
    const again = await initTemplates(h);
    expect(again.written).toEqual([]);
    expect(again.skipped.length).toBe(first.written.length + 1);
    // The copies are what the loader now uses.
    expect((await loadTemplate(h, "pbspro-vasp")).origin).toBe("user");
  });

  test("one template by name; a partial of chasqui's is not a template to copy", async () => {
    const h = home();
    expect(await initTemplates(h, "torque-vasp")).toEqual({
      written: [path.join(h, "templates", "torque-vasp.sh.hbs")],
      skipped: [],
    });
    await expect(initTemplates(h, "chasqui_epilogue")).rejects.toThrow(
      'no built-in template "chasqui_epilogue"',
    );
    expect(fs.readdirSync(path.join(h, "templates")).sort()).toEqual(["torque-vasp.sh.hbs"]);
  });

  test("an unknown name is an InputError naming what exists", async () => {
    const err = await initTemplates(home(), "cp2k").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain("pbspro-vasp, torque-vasp, slurm-vasp");
  });
});

describe("createJobRenderer", () => {
  test("renders each job with its own variables, a missing template is an InputError", async () => {
    const h = home({ "templates/t.sh.hbs": "{{id}} {{walltime}} {{attempt}}\n" });
    const render = createJobRenderer(h, defaultConfig("x"));
    const a = { ...job("t"), id: "a", vars: { walltime: "00:10:00" } };
    const b = { ...job("t"), id: "b", attempt: 3 };
    expect(await render(a)).toBe("a 00:10:00 0\n");
    expect(await render(b)).toBe("b 01:00:00 3\n");
    await expect(render({ ...job("gone") })).rejects.toBeInstanceOf(InputError);
  });
});
