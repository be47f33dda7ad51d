// Secrets stay secret: a sync through the 2FA port with an encrypted key, typed on a terminal,
// leaves neither the passphrase nor the one-time code in $CHASQUI_HOME, its output, the cluster's
// files or the process list; a wrong code is not repeated back. Everything chasqui creates under
// $CHASQUI_HOME is 0600 (files) or 0700 (folders), whatever the umask.
import { beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Cluster, loadCluster, resetRemote, runAsUser, totpCode } from "../cluster/cluster.ts";
import { BINARY, BOX_JOBS, editJson, type Sandbox, sandbox } from "./helpers.ts";

let cluster: Cluster;
const PTY = path.resolve(import.meta.dir, "../ssh/pty_drive.py");
const tag = Math.random().toString(36).slice(2, 6);

beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});

function setUp(port: number, remote: string, identity: string): Sandbox {
  const s = sandbox();
  const r = s.run([
    "init",
    ...["--host", cluster.host, "--port", String(port), "--user", cluster.user],
    ...["--identity", identity, "--known-hosts", cluster.knownHosts],
    ...BOX_JOBS,
    ...["--remote-dir", remote],
  ]);
  expect(r.code).toBe(0);
  return s;
}

/** Every file under `dir` (sockets and the like skipped), as text. */
function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.lstatSync(p).isFile()) out.set(f, fs.readFileSync(p, "latin1"));
  }
  return out;
}

/** Run the binary on a pseudo-terminal (answers typed at prompts), sampling `ps` all along. */
async function onTerminal(
  s: Sandbox,
  steps: [string, string][],
  args: string[],
): Promise<{ code: number; transcript: string; processList: string }> {
  const child = spawn("python3", [PTY, JSON.stringify(steps), "--", BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.root, CHASQUI_HOME: s.home, TERM: "dumb" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let transcript = "";
  child.stdout.on("data", (b) => {
    transcript += b;
  });
  let processList = "";
  let done = false;
  const sampling = (async () => {
    while (!done) {
      processList += await new Promise<string>((resolve) => {
        const ps = spawn("ps", ["-eo", "args"], { stdio: ["ignore", "pipe", "ignore"] });
        let out = "";
        ps.stdout.on("data", (b) => {
          out += b;
        });
        ps.on("close", () => resolve(out));
      });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
  done = true;
  await sampling;
  return { code, transcript, processList };
}

describe("secrets", () => {
  test("the passphrase and the one-time code typed at a terminal are found nowhere afterwards", async () => {
    const remote = "chasqui_remote_secrets";
    const s = setUp(cluster.totpPort, remote, cluster.encryptedIdentity);
    const job = `sec${tag}`;
    expect(s.run(["add", s.jobFolder(job)]).code).toBe(0);
    const code = await totpCode();
    const r = await onTerminal(
      s,
      [
        ["Enter passphrase for key", `${cluster.passphrase}\r`],
        ["Verification code", `${code}\r`],
      ],
      ["sync"],
    );
    expect(r.transcript).toContain(`submitted  1: ${job}`);
    expect(r.code).toBe(0);
    // Typed without echo: not even the terminal shows them.
    for (const secret of [cluster.passphrase, code]) {
      expect(r.transcript).not.toContain(secret);
      // (The test's own terminal driver carries the answers in its arguments: not chasqui's.)
      const leaks = r.processList
        .split("\n")
        .filter((l) => l.includes(secret) && !l.includes("pty_drive.py"));
      expect(leaks).toEqual([]);
      for (const [file, text] of filesUnder(s.home))
        expect({ file, has: text.includes(secret) }).toEqual({ file, has: false });
      const onCluster = await runAsUser(`grep -rlF -- ${secret} ${remote} || true`);
      expect(onCluster.stdout.trim()).toBe("");
    }
    // The list did sample the run (the binary appears in it).
    expect(r.processList.split("\n").some((l) => l.startsWith(`${BINARY} sync`))).toBe(true);
    expect(r.processList).toContain("bash -s"); // and the remote side of it
  }, 90_000);

  test("a wrong code from otp_command is not repeated in the message, the store or status", () => {
    const s = setUp(cluster.totpPort, "chasqui_remote_wrongcode", cluster.identity);
    // Never a valid code (not six digits), and a string that cannot appear by chance.
    const wrong = "wrong-code-q7x9";
    editJson(path.join(s.home, "config.json"), (o) => {
      o.otp_command = `echo ${wrong}`;
    });
    expect(s.run(["add", s.jobFolder(`wc${tag}`)]).code).toBe(0);
    const r = s.run(["sync", "--json"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toContain(wrong);
    expect(r.stdout).not.toContain(wrong);
    expect(fs.readFileSync(path.join(s.home, "jobs.json"), "utf8")).not.toContain(wrong);
    expect(s.run(["status"]).stdout).not.toContain(wrong);
  });

  test("files under $CHASQUI_HOME are 0600 and folders 0700 after every kind of command, umask 022", () => {
    const s = setUp(cluster.keyPort, "chasqui_remote_modes", cluster.identity);
    const env = { CHASQUI_CRONTAB: path.join(s.root, "crontab") };
    const sh = (command: string) => {
      const r = spawnSync("sh", ["-c", `umask 022; ${command}`], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.root, CHASQUI_HOME: s.home, ...env },
        stdio: "ignore",
      });
      return r.status;
    };
    const bin = `'${BINARY}'`;
    expect(sh(`${bin} add '${s.jobFolder(`md${tag}`)}'`)).toBe(0);
    expect(sh(`${bin} template init`)).toBe(0);
    expect(sh(`${bin} sync`)).toBe(0);
    expect(sh(`${bin} cron install`)).toBe(0);
    // The crontab line itself, as cron runs it: sync.log comes from its redirection.
    const line = fs.readFileSync(env.CHASQUI_CRONTAB, "utf8").trim();
    expect(sh(line.split(" ").slice(5).join(" ").replaceAll("\\%", "%"))).toBe(0);
    expect(sh(`${bin} download --all`)).toBe(0);
    const modes: string[] = [];
    for (const f of ["", ...(fs.readdirSync(s.home, { recursive: true }) as string[])]) {
      const st = fs.lstatSync(path.join(s.home, f));
      const mode = st.mode & 0o777;
      if (st.isDirectory() && mode !== 0o700) modes.push(`${f || "."} ${mode.toString(8)}`);
      if (st.isFile() && mode !== 0o600) modes.push(`${f} ${mode.toString(8)}`);
    }
    expect(modes).toEqual([]);
    expect(fs.existsSync(path.join(s.home, "sync.log"))).toBe(true);
    expect(fs.existsSync(path.join(s.home, "templates"))).toBe(true);
  }, 60_000);
});
