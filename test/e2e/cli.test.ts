// The compiled binary end to end, as a new user would use it, on a temporary CHASQUI_HOME.
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { sandbox, VASP_FILES } from "./helpers.ts";

describe("chasqui binary", () => {
  test("--version and --help everywhere", () => {
    const s = sandbox();
    expect(s.run(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const args of [
      ["--help"],
      ["init", "--help"],
      ["add", "--help"],
      ["template", "render", "--help"],
    ]) {
      const r = s.run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage: chasqui");
    }
  });

  test("unknown command or option is bad usage (exit 2)", () => {
    const s = sandbox();
    expect(s.run(["frobnicate"]).code).toBe(2);
    expect(s.run(["list", "--bogus"]).code).toBe(2);
    expect(s.run(["init", "--host", "h", "--max-queued", "many"]).code).toBe(2);
  });

  test("init, add, list, show, render: the first steps of a new user", () => {
    const s = sandbox();
    const init = s.run([
      "init",
      "--host",
      "bebop.example.org",
      "--set",
      "account=PROJ",
      "--set",
      "walltime=02:00:00",
    ]);
    expect(init.code).toBe(0);
    expect(fs.statSync(s.home).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(s.home, "config.json")).mode & 0o777).toBe(0o600);
    const a = s.jobFolder("si-bulk");
    const b = s.jobFolder("ge bulk");
    const add = s.run(["add", a, b, "--json"]);
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout);
    expect(added.map((j: { id: string }) => j.id)).toEqual(["si-bulk", "ge_bulk"]);
    const list = JSON.parse(s.run(["list", "--json"]).stdout);
    expect(list).toHaveLength(2);
    for (const job of list) {
      expect(job.state).toBe("QUEUED_LOCAL");
      expect(job.scheduler_id).toBeNull();
      expect(job.history[0].to).toBe("QUEUED_LOCAL");
    }
    const plain = s.run(["list"]);
    expect(plain.stdout.trim().split("\n")).toHaveLength(2);
    expect(plain.stdout).toContain("si-bulk\tQUEUED_LOCAL\t-\t");
    expect(s.run(["list", "--state", "done", "--json"]).stdout.trim()).toBe("[]");
    expect(s.run(["list", "--state", "nope"]).code).toBe(2);
    const show = s.run(["show", "si-bulk"]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("history:");
    expect(s.run(["show", "nosuch"]).code).toBe(2);
    const script = s.run(["template", "render", "si-bulk"]);
    expect(script.code).toBe(0);
    expect(script.stdout).toContain("#PBS -A PROJ");
    expect(script.stdout).toContain("walltime=02:00:00");
  });

  test("a bad walltime is refused at init and at add: exit 2, the variable named, nothing written", () => {
    const s = sandbox();
    const init = s.run(["init", "--host", "h", "--set", "walltime=banana"]);
    expect(init.code).toBe(2);
    expect(init.stderr).toContain('walltime="banana": walltime must be [[H]H:]MM:SS');
    expect(s.snapshot().size).toBe(0);
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    const before = s.snapshot();
    const add = s.run(["add", s.jobFolder("w"), "--set", "ncpus=many"]);
    expect(add.code).toBe(2);
    expect(add.stderr).toContain("ncpus must be a positive whole number");
    expect(s.snapshot()).toEqual(before);
  });

  test("add refuses the whole batch when one folder is bad, and writes nothing", () => {
    const s = sandbox();
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    const good = s.jobFolder("good");
    const { KPOINTS: _k, ...noKpoints } = VASP_FILES;
    const bad = s.jobFolder("bad", noKpoints);
    const emptyIncar = s.jobFolder("empty-incar", { ...VASP_FILES, INCAR: "" });
    const binary = s.jobFolder("binary-incar", { ...VASP_FILES, INCAR: Buffer.from([0, 1, 2, 255, 0]) });
    const before = s.snapshot();
    const r = s.run(["add", good, bad, emptyIncar, binary, path.join(s.root, "missing")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing KPOINTS");
    expect(r.stderr).toContain("INCAR is empty");
    expect(r.stderr).toContain("INCAR is not a text file");
    expect(r.stderr).toContain("no such folder");
    expect(s.snapshot()).toEqual(before);
    expect(s.run(["add", good]).code).toBe(0);
    const again = s.run(["add", good]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already added");
  });

  test("a user template overrides the built-in one without rebuilding", () => {
    const s = sandbox();
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    expect(s.run(["add", s.jobFolder("j1")]).code).toBe(0);
    const init = s.run(["template", "init", "pbspro-vasp"]);
    expect(init.code).toBe(0);
    const file = path.join(s.home, "templates", "pbspro-vasp.sh.hbs");
    fs.writeFileSync(file, `${fs.readFileSync(file, "utf8")}\n# my site tweak {{id}}\n`);
    const r = s.run(["template", "render", "j1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("# my site tweak j1");
    expect(s.run(["template", "list"]).stdout).toContain("user file");
    fs.writeFileSync(file, "#!/bin/bash\n{{#if}}broken\n");
    const broken = s.run(["template", "render", "j1"]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("pbspro-vasp");
  });

  test("retry and cancel follow the transition table", () => {
    const s = sandbox();
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    expect(s.run(["add", s.jobFolder("j1"), s.jobFolder("j2")]).code).toBe(0);
    const retry = s.run(["retry", "j1"]);
    expect(retry.code).toBe(2);
    expect(retry.stderr).toContain("QUEUED_LOCAL");
    const cancel = s.run(["cancel", "j2", "--json"]);
    expect(cancel.code).toBe(0);
    expect(JSON.parse(cancel.stdout)[0].state).toBe("CANCELLED");
    const again = JSON.parse(s.run(["retry", "j2", "--json"]).stdout);
    expect(again[0].state).toBe("QUEUED_LOCAL");
    expect(again[0].history.map((h: { to: string }) => h.to)).toEqual([
      "QUEUED_LOCAL",
      "CANCELLED",
      "QUEUED_LOCAL",
    ]);
  });

  test("a corrupt or newer store is refused and left byte-for-byte untouched", () => {
    const s = sandbox();
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    const store = path.join(s.home, "jobs.json");
    for (const content of ['{"version": 1, "jobs": [', '{"version": 999, "jobs": []}\n']) {
      fs.writeFileSync(store, content);
      const list = s.run(["list"]);
      expect(list.code).not.toBe(0);
      expect(list.stderr).toContain("jobs.json");
      expect(s.run(["add", s.jobFolder("x")]).code).not.toBe(0);
      expect(fs.readFileSync(store, "utf8")).toBe(content);
    }
  });

  test("a broken config value is named, and nothing runs", () => {
    const s = sandbox();
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(0);
    const file = path.join(s.home, "config.json");
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    fs.writeFileSync(file, JSON.stringify({ ...config, max_queued: -3 }));
    const r = s.run(["add", s.jobFolder("j")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("max_queued");
    expect(s.run(["init", "--host", "h", "--set", "account=PROJ"]).code).toBe(2);
    expect(s.run(["init", "--host", "h", "--force"]).code).toBe(0);
  });
});
