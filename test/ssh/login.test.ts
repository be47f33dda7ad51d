import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NeedsPersonError, RemoteError } from "../../src/errors.ts";
import { defaultResolveDeps, resolveTarget } from "../../src/ssh/resolve.ts";
import { openSession, type SessionEvent } from "../../src/ssh/session.ts";
import { cluster, freshTotp, nobody, otpCommand, sshdLogFromNow, targetFor, waitFor } from "./helpers.ts";

const c = cluster();
const dir = mkdtempSync(join(tmpdir(), "chasqui-login-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DRIVER = join(import.meta.dirname, "driver.ts");
const PTY = join(import.meta.dirname, "pty_drive.py");

/** Run the driver on a real pseudo-terminal, answering prompts like a person. */
function withoutCi(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CI;
  return env;
}

function onTerminal(steps: [string, string][], args: object): { status: number | null; out: string } {
  const r = spawnSync(
    "python3",
    [PTY, JSON.stringify(steps), "--", process.execPath, DRIVER, JSON.stringify(args)],
    {
      encoding: "utf8",
      timeout: 90_000,
      // A person at a terminal is not CI: chasqui rightly never prompts under CI=true.
      env: withoutCi(),
    },
  );
  return { status: r.status, out: r.stdout + r.stderr };
}

const targetConfig = (port: number, identity = c.identity) => ({
  host: c.host,
  port,
  user: c.user,
  identity,
  known_hosts: c.knownHosts,
});

/** The client's source port, from the session events, to find its lines in sshd's log. */
function localPortOf(events: SessionEvent[]): number {
  const e = events.find((x) => x.type === "connected");
  if (e?.type !== "connected" || e.localPort === null) throw new Error("no connected event");
  return e.localPort;
}

describe("key + TOTP (port 2223)", () => {
  test("otp_command answers the prompt; both methods are recorded", async () => {
    const s = await openSession({
      target: targetFor(c, c.totpPort),
      otpCommand: otpCommand(),
      prompter: nobody,
      acceptNewHostKey: false,
      agentSocket: undefined,
    });
    try {
      expect(s.authMethods.map((m) => [m.method, m.via])).toEqual([
        ["publickey", c.identity],
        ["keyboard-interactive", "otp_command"],
      ]);
      expect((await s.exec("id -un")).stdout.toString().trim()).toBe(c.user);
    } finally {
      await s.close();
    }
  }, 120_000);

  test("a wrong code reaches the server exactly once, then one clear error (exit 1)", async () => {
    const counter = join(dir, "otp-runs");
    const events: SessionEvent[] = [];
    const log = sshdLogFromNow(c);
    const p = openSession({
      target: targetFor(c, c.totpPort),
      otpCommand: `echo run >> ${counter}; echo 000000`,
      prompter: nobody,
      acceptNewHostKey: false,
      agentSocket: undefined,
      events: (e) => events.push(e),
    });
    const err = (await p.catch((e) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.exitCode).toBe(1);
    expect(err.message).toContain("Refused: keyboard-interactive (otp_command)");
    expect(err.message).not.toContain("000000");
    expect(readFileSync(counter, "utf8")).toBe("run\n");
    const port = localPortOf(events);
    const lines = await waitFor("sshd to log the end of the connection", () => {
      const l = log.lines(port);
      return l.some((x) => /Connection closed|Disconnected/.test(x)) ? l : undefined;
    });
    expect(lines.filter((l) => l.includes("Failed keyboard-interactive")).length).toBe(1);
  });

  test("no terminal and no otp_command: NeedsPersonError (exit 3) and no keyboard-interactive request", async () => {
    const events: SessionEvent[] = [];
    const log = sshdLogFromNow(c);
    const err = await openSession({
      target: targetFor(c, c.totpPort),
      otpCommand: null,
      prompter: nobody,
      acceptNewHostKey: false,
      agentSocket: undefined,
      events: (e) => events.push(e),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NeedsPersonError);
    expect(err.exitCode).toBe(3);
    const port = localPortOf(events);
    const lines = await waitFor("sshd to log the end of the connection", () => {
      const l = log.lines(port);
      return l.some((x) => /Connection closed|Disconnected/.test(x)) ? l : undefined;
    });
    expect(lines.some((l) => l.includes("Partial publickey"))).toBe(true);
    expect(lines.filter((l) => l.includes("keyboard-interactive"))).toEqual([]);
  });

  test("a person types the code on a real terminal (hidden)", async () => {
    const code = await freshTotp();
    const r = onTerminal([["Verification code: ", `${code}\r`]], { target: targetConfig(c.totpPort) });
    expect(r.out).toContain("RESULT:chasqui");
    expect(r.out).toContain("METHODS:publickey,keyboard-interactive");
    expect(r.out).not.toContain(code);
    expect(r.status).toBe(0);
  }, 120_000);

  test("Ctrl-C at the prompt is a clean error, nothing sent", () => {
    const r = onTerminal([["Verification code: ", "12\u0003"]], { target: targetConfig(c.totpPort) });
    expect(r.out).toContain("ERROR:1:Interrupted (Ctrl-C) at the prompt");
    expect(r.status).toBe(1);
  });
});

describe("while a person types", () => {
  test("the network timer does not run: a slow answer still reaches the server", async () => {
    const slowPerson = {
      ...nobody,
      interactive: true,
      ask: () => new Promise<string>((r) => setTimeout(() => r("000000"), 1_000)),
    };
    const err = await openSession({
      target: targetFor(c, c.totpPort),
      otpCommand: null,
      prompter: slowPerson,
      acceptNewHostKey: false,
      agentSocket: undefined,
      handshakeTimeoutMs: 300,
    }).catch((e) => e);
    // A login refused by the server, not "no answer from the server": the answer was sent.
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.message).toContain("Refused: keyboard-interactive (terminal)");
  });

  test("cancelling the login releases the question and rejects", async () => {
    const ac = new AbortController();
    let askSignal: AbortSignal | undefined;
    const waiting = {
      ...nobody,
      interactive: true,
      ask: (_t: string, o: { echo: boolean; signal?: AbortSignal }) =>
        new Promise<string>((_r, reject) => {
          askSignal = o.signal;
          o.signal?.addEventListener("abort", () => reject(new Error("released")));
        }),
    };
    const p = openSession({
      target: targetFor(c, c.totpPort),
      otpCommand: null,
      prompter: waiting,
      acceptNewHostKey: false,
      agentSocket: undefined,
      signal: ac.signal,
    });
    await waitFor("the code to be asked", () => askSignal);
    ac.abort();
    await expect(p).rejects.toThrow("cancelled");
    expect(askSignal?.aborted).toBe(true);
  });
});

describe("identities", () => {
  test("an encrypted identity: the passphrase is typed on a terminal", () => {
    const r = onTerminal([["Enter passphrase for key", `${c.passphrase}\r`]], {
      target: targetConfig(c.keyPort, c.encryptedIdentity),
    });
    expect(r.out).toContain(`Enter passphrase for key '${c.encryptedIdentity}': `);
    expect(r.out).toContain("RESULT:chasqui");
    expect(r.status).toBe(0);
  });

  test("an encrypted identity without a terminal: exit 3", async () => {
    const err = await openSession({
      target: targetFor(c, c.keyPort, { identityFiles: [c.encryptedIdentity] }),
      otpCommand: null,
      prompter: nobody,
      acceptNewHostKey: false,
      agentSocket: undefined,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NeedsPersonError);
    expect(err.message).toContain(c.encryptedIdentity);
  });

  test("ssh-agent keys are tried before identity files", async () => {
    const agent = startAgent();
    try {
      const s1 = await openSession({
        target: targetFor(c, c.keyPort),
        otpCommand: null,
        prompter: nobody,
        acceptNewHostKey: false,
        agentSocket: agent.sock,
      });
      expect(s1.authMethods.map((m) => m.method)).toEqual(["agent"]);
      await s1.close();
    } finally {
      agent.stop();
    }
  });
});

/** An ssh-agent of our own, holding the cluster identity. */
function startAgent(): { sock: string; stop: () => void } {
  const sock = join(dir, `agent-${process.pid}-${Date.now()}.sock`);
  const out = execFileSync("ssh-agent", ["-s", "-a", sock]).toString();
  const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)?.[1]);
  const stop = () => {
    if (pid > 0) process.kill(pid);
  };
  try {
    execFileSync("ssh-add", ["-q", c.identity], {
      env: { ...process.env, SSH_AUTH_SOCK: sock },
      stdio: "ignore",
    });
  } catch (e) {
    stop();
    throw e;
  }
  return { sock, stop };
}

describe("ProxyJump", () => {
  test("through port 2222 to port 2223, from an ssh config file, keys from ssh-agent", async () => {
    const agent = startAgent();
    const config = join(dir, "ssh_config");
    writeFileSync(
      config,
      [
        "Host jump",
        `  HostName ${c.host}`,
        `  Port ${c.keyPort}`,
        "Host cluster",
        `  HostName ${c.host}`,
        `  Port ${c.totpPort}`,
        "  ProxyJump jump",
        "Host *",
        `  User ${c.user}`,
        `  UserKnownHostsFile ${c.knownHosts}`,
        "",
      ].join("\n"),
    );
    const target = await resolveTarget(
      { host: "cluster", port: null, user: null, identity: null, known_hosts: null },
      defaultResolveDeps({ sshConfigFile: config }),
    );
    expect(target.proxyJump.map((h) => [h.alias, h.port, h.user])).toEqual([["jump", c.keyPort, c.user]]);
    const events: SessionEvent[] = [];
    const s = await openSession({
      target,
      otpCommand: otpCommand(),
      prompter: nobody,
      acceptNewHostKey: false,
      events: (e) => events.push(e),
      agentSocket: agent.sock,
    }).finally(() => agent.stop());
    try {
      expect(s.route.map((r) => [r.port, r.authMethods.map((m) => m.method)])).toEqual([
        [c.keyPort, ["agent"]],
        [c.totpPort, ["agent", "keyboard-interactive"]],
      ]);
      expect(
        events.filter((e) => e.type === "connecting").map((e) => e.type === "connecting" && e.via),
      ).toEqual([null, c.host]);
      const r = await s.exec("echo $SSH_CONNECTION");
      // The last hop reaches the cluster's sshd from inside: its own port 2223 on the far end.
      expect(r.stdout.toString().trim().split(" ")[3]).toBe(String(c.totpPort));
      expect(s.stats().execRequests).toBe(1);
    } finally {
      await s.close();
    }
  }, 120_000);
});

describe("host keys against the real sshd", () => {
  const hostKey = (type: "ed25519" | "rsa") =>
    readFileSync(`${c.stateDir}/ssh/ssh_host_${type}_key.pub`, "utf8").split(" ").slice(0, 2).join(" ");
  const open = (knownHosts: string, acceptNewHostKey: boolean, prompter = nobody) =>
    openSession({
      target: targetFor(c, c.keyPort, { knownHostsFiles: [knownHosts] }),
      otpCommand: null,
      prompter,
      acceptNewHostKey,
      agentSocket: undefined,
    });

  test("unknown host without a terminal: exit 3, before any authentication", async () => {
    const events: SessionEvent[] = [];
    const log = sshdLogFromNow(c);
    const err = await openSession({
      target: targetFor(c, c.keyPort, { knownHostsFiles: [join(dir, "empty_known_hosts")] }),
      otpCommand: null,
      prompter: nobody,
      acceptNewHostKey: false,
      agentSocket: undefined,
      events: (e) => events.push(e),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NeedsPersonError);
    expect(err.message).toMatch(/key fingerprint is SHA256:/);
    const port = localPortOf(events);
    const lines = await waitFor("sshd to log the connection", () => {
      const l = log.lines(port);
      return l.length > 0 ? l : undefined;
    });
    expect(lines.some((l) => /publickey/.test(l))).toBe(false);
  });

  test("a changed key is refused even with acceptNewHostKey, naming the file and line", async () => {
    const kh = join(dir, "changed_known_hosts");
    const other = join(dir, "other_host_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const otherPub = readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    writeFileSync(kh, `# first line\n[${c.host}]:${c.keyPort} ${otherPub}\n`);
    const err = await open(kh, true).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.message).toContain("REMOTE HOST IDENTIFICATION HAS CHANGED");
    expect(err.message).toContain(`Offending ED25519 key in ${kh}:2`);
    expect(readFileSync(kh, "utf8")).toBe(`# first line\n[${c.host}]:${c.keyPort} ${otherPub}\n`);
  });

  test("accepting a new key records it; the next login needs nobody", async () => {
    const kh = join(dir, "new_known_hosts");
    const s = await open(kh, true);
    await s.close();
    expect(readFileSync(kh, "utf8")).toContain(`[${c.host}]:${c.keyPort} ssh-ed25519 `);
    const again = await open(kh, false);
    expect((await again.exec("true")).code).toBe(0);
    await again.close();
  });

  test("a person confirms an unknown key on the terminal prompter", async () => {
    const kh = join(dir, "asked_known_hosts");
    const asked: string[] = [];
    const s = await open(kh, false, {
      ...nobody,
      interactive: true,
      confirm: async (t) => {
        asked.push(t);
        return true;
      },
    });
    await s.close();
    expect(asked[0]).toContain(`The authenticity of host '[${c.host}]:${c.keyPort}' can't be established.`);
    expect(readFileSync(kh, "utf8").split("\n").length).toBe(2);
  });

  test("only an RSA key known: the RSA key is asked for and verified", async () => {
    const kh = join(dir, "rsa_known_hosts");
    writeFileSync(kh, `[${c.host}]:${c.keyPort} ${hostKey("rsa")}\n`);
    const s = await open(kh, false);
    expect((await s.exec("true")).code).toBe(0);
    await s.close();
  });
});
