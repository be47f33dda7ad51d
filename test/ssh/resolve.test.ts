import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CommandResult,
  parseProxyJump,
  parseSshG,
  type ResolveDeps,
  resolveTarget,
} from "../../src/ssh/resolve.ts";

const fx = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
const CFG = join(import.meta.dirname, "fixtures", "ssh_config");

/** A runner that answers the `ssh -G` command lines the fixtures were captured with. */
function capturedSsh(): { deps: ResolveDeps; calls: string[][] } {
  const calls: string[][] = [];
  const outputs: Record<string, string> = {
    [`-F ${CFG} -G -- bebop`]: fx("G_bebop.out"),
    [`-F ${CFG} -G -- jump1`]: fx("G_jump1.out"),
    [`-F ${CFG} -G -p 2200 -l carol -- jump2.example.org`]: fx("G_jump2.out"),
    [`-F ${CFG} -G -- aliased`]: fx("G_aliased.out"),
    [`-F ${CFG} -G -p 2223 -l bob -- 127.0.0.1`]: fx("G_plain.out"),
  };
  const deps: ResolveDeps = {
    env: {},
    home: "/root",
    sshConfigFile: CFG,
    async run(cmd, args): Promise<CommandResult | null> {
      calls.push([cmd, ...args]);
      if (cmd !== "ssh") return null;
      const out = outputs[args.join(" ")];
      return out === undefined
        ? { code: 255, stdout: "", stderr: `no capture for ${args.join(" ")}` }
        : { code: 0, stdout: out, stderr: "" };
    },
  };
  return { deps, calls };
}

const noTarget = { port: null, user: null, identity: null, known_hosts: null };

describe("parseSshG", () => {
  test("keeps repeated keywords in order", () => {
    const g = parseSshG(fx("G_jump1.out"));
    expect(g.get("hostname")).toEqual(["logins.lcrc.anl.gov"]);
    expect(g.get("identityfile")?.slice(0, 2)).toEqual(["~/.ssh/id_rsa", "~/.ssh/id_ecdsa"]);
  });
});

describe("parseProxyJump", () => {
  test.each([
    ["none", []],
    ["jump", [{ user: null, host: "jump", port: null }]],
    [
      "a@b:2200,c",
      [
        { user: "a", host: "b", port: 2200 },
        { user: null, host: "c", port: null },
      ],
    ],
    ["ssh://u@h:22", [{ user: "u", host: "h", port: 22 }]],
    ["[::1]:2222", [{ user: null, host: "::1", port: 2222 }]],
  ] as const)("%s", (value, expected) => {
    expect(parseProxyJump(value)).toEqual(expected as never);
  });
  test("a bad port is bad input", () => {
    expect(() => parseProxyJump("h:99999")).toThrow(/ProxyJump/);
  });
});

describe("resolveTarget with ssh -G", () => {
  test("alias with a two-hop ProxyJump, config identity first, own known_hosts file", async () => {
    const { deps } = capturedSsh();
    const t = await resolveTarget({ ...noTarget, host: "bebop", identity: "/tmp/sshfx/id_test" }, deps);
    expect(t).toMatchObject({
      alias: "bebop",
      hostname: "bebop.lcrc.anl.gov",
      port: 22,
      user: "alice",
      identityFiles: ["/tmp/sshfx/id_test", "/root/.ssh/id_bebop"],
      knownHostsFiles: [
        "/root/.ssh/known_hosts_lcrc",
        "/etc/ssh/ssh_known_hosts",
        "/etc/ssh/ssh_known_hosts2",
      ],
      hostKeyAlias: null,
    });
    expect(t.proxyJump.map((h) => [h.alias, h.hostname, h.port, h.user])).toEqual([
      ["jump1", "logins.lcrc.anl.gov", 2022, "alice"],
      ["jump2.example.org", "jump2.example.org", 2200, "carol"],
    ]);
    // On hops the config identity comes after the hop's own files.
    expect(t.proxyJump[0]!.identityFiles[0]).toBe("/root/.ssh/id_rsa");
    expect(t.proxyJump[0]!.identityFiles.at(-1)).toBe("/tmp/sshfx/id_test");
  });

  test("port and user from the config go to ssh -G; known_hosts from the config replaces ssh's", async () => {
    const { deps, calls } = capturedSsh();
    const t = await resolveTarget(
      { host: "127.0.0.1", port: 2223, user: "bob", identity: null, known_hosts: "~/kh" },
      deps,
    );
    expect(calls).toEqual([["ssh", "-F", CFG, "-G", "-p", "2223", "-l", "bob", "--", "127.0.0.1"]]);
    expect(t).toMatchObject({
      hostname: "127.0.0.1",
      port: 2223,
      user: "bob",
      knownHostsFiles: ["/root/kh"],
    });
    expect(t.hashKnownHosts).toBe(true);
    expect(t.identityFiles).toContain("/root/.ssh/id_ed25519");
    expect(t.proxyJump).toEqual([]);
  });

  test("HostKeyAlias is kept", async () => {
    const t = await resolveTarget({ ...noTarget, host: "aliased" }, capturedSsh().deps);
    expect([t.hostname, t.hostKeyAlias]).toEqual(["10.1.2.3", "cluster-alias"]);
  });

  test("ssh -G failing is bad input with ssh's message", async () => {
    const p = resolveTarget({ ...noTarget, host: "nosuch" }, capturedSsh().deps);
    await expect(p).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining("no capture for"),
    });
  });
});

describe("resolveTarget without an OpenSSH client", () => {
  test("plain values; the user from id -un when $USER is unset", async () => {
    const calls: string[] = [];
    const deps: ResolveDeps = {
      env: {},
      home: "/home/u",
      async run(cmd, args) {
        calls.push(cmd);
        if (cmd === "id" && args[0] === "-un") return { code: 0, stdout: "realuser\n", stderr: "" };
        return null;
      },
    };
    const t = await resolveTarget(
      { host: "h.example", port: null, user: null, identity: "~/k", known_hosts: null },
      deps,
    );
    expect(t).toEqual({
      alias: "h.example",
      hostname: "h.example",
      port: 22,
      user: "realuser",
      identityFiles: ["/home/u/k"],
      knownHostsFiles: ["/home/u/.ssh/known_hosts"],
      hashKnownHosts: false,
      hostKeyAlias: null,
      proxyJump: [],
    });
    expect(calls).toEqual(["ssh", "id"]);
  });
});
