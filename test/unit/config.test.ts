import { describe, expect, test } from "bun:test";
import { defaultConfig, parseSetOptions, validateConfig } from "../../src/core/config.ts";

describe("validateConfig", () => {
  test("defaults follow the design", () => {
    const c = validateConfig({ host: "bebop" }).config!;
    expect(c.max_queued).toBe(40);
    expect(c.max_running).toBe(30);
    expect(c.remote_dir).toBe("chasqui_remote");
    expect(c.vars.command).toBe("mpirun vasp_std");
  });
  test("a round trip of the defaults is valid", () => {
    const check = validateConfig(JSON.parse(JSON.stringify(defaultConfig("h"))));
    expect(check.errors).toEqual([]);
    expect(check.warnings).toEqual([]);
  });
  test.each([
    [{ host: "" }, "host"],
    [{ host: "a b" }, "host"],
    [{ host: "h", port: 0 }, "port"],
    [{ host: "h", port: "22" }, "port"],
    [{ host: "h", max_queued: -3 }, "max_queued"],
    [{ host: "h", max_running: 1.5 }, "max_running"],
    [{ host: "h", scheduler: "lsf" }, "scheduler"],
    [{ host: "h", remote_dir: "../x" }, "remote_dir"],
    [{ host: "h", vars: { "bad-name": "x" } }, "vars.bad-name"],
    [{ host: "h", vars: { walltime: 5 } }, "vars.walltime"],
    [{ host: "h", download: "OUTCAR" }, "download"],
    [{ host: "h", template: "a/b" }, "template"],
    [{ host: "h", version: 2 }, "version"],
  ])("%j is refused naming %s", (raw, key) => {
    const check = validateConfig(raw);
    expect(check.config).toBeNull();
    expect(check.errors.join("\n")).toContain(key);
  });
  test("all problems are reported at once", () => {
    expect(validateConfig({ host: "", port: -1, max_queued: 0 }).errors).toHaveLength(3);
  });
  test("odd limits are a warning; an unknown key is an error naming it, with the closest key", () => {
    const check = validateConfig({ host: "h", max_queued: 5, max_running: 10 });
    expect(check.config).not.toBeNull();
    expect(check.warnings.join("\n")).toContain("max_running");
    const typo = validateConfig({ host: "h", max_queue: 5, colour: "blue" });
    expect(typo.config).toBeNull();
    expect(typo.errors).toEqual([
      'unknown key "max_queue" (did you mean max_queued?)',
      'unknown key "colour"',
    ]);
  });
  test.each([[null], [[]], ["x"], [3]])("%j is not a config", (raw) => {
    expect(validateConfig(raw).config).toBeNull();
  });
});

describe("parseSetOptions", () => {
  test("KEY=VALUE, values may hold = and spaces", () => {
    expect(parseSetOptions(["a=1", "cmd=mpirun -np 4 vasp_std", "x=a=b", "empty="]).vars).toEqual({
      a: "1",
      cmd: "mpirun -np 4 vasp_std",
      x: "a=b",
      empty: "",
    });
  });
  test.each(["novalue", "=x", "1a=b", "a-b=c"])("%j is refused", (item) => {
    expect(parseSetOptions([item]).errors).toHaveLength(1);
  });
});

describe("the well-known variables are checked where they are given", () => {
  test.each(["01:30:00", "1:30:00", "30:00", "120:00:00", "2-00:00:00"])("walltime=%s is accepted", (v) => {
    expect(parseSetOptions([`walltime=${v}`]).errors).toEqual([]);
  });
  test.each([
    ["walltime=banana", "walltime must be [[H]H:]MM:SS"],
    ["walltime=1:60:00", "walltime must be"],
    ["walltime=", "walltime must be"],
    ["nodes=0", "nodes must be a positive whole number"],
    ["ncpus=4.5", "ncpus must be a positive whole number"],
    ["ncpus=-2", "ncpus must be"],
  ])("--set %s is refused, naming the variable", (item, why) => {
    const r = parseSetOptions([item]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain(why);
    expect(r.vars).toEqual({});
  });
  test("a bad value in config.json vars is a config error naming it", () => {
    const check = validateConfig({ host: "h", vars: { walltime: "banana", nodes: "2" } });
    expect(check.config).toBeNull();
    expect(check.errors).toEqual(['vars.walltime="banana": walltime must be [[H]H:]MM:SS, e.g. 01:30:00']);
  });
  test("trigger_host is a host word or null", () => {
    expect(validateConfig({ host: "h", trigger_host: "login1" }).config?.trigger_host).toBe("login1");
    expect(validateConfig({ host: "h", trigger_host: "me@login1" }).config?.trigger_host).toBe("me@login1");
    expect(validateConfig({ host: "h", trigger_host: "login1; rm -rf ~" }).errors[0]).toContain(
      "trigger_host",
    );
  });
});
