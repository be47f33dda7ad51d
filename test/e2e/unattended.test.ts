// Unattended use against the cluster-in-a-box: an OpenSSH master opened once through the 2FA port
// and ridden by syncs with no terminal, the crontab line (installed, run as cron would and by the
// cron daemon itself, removed), a cron sync that finds another at work, and notify_command's events.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { schedulerJobName } from "../../src/core/jobName.ts";
import { type Cluster, loadCluster, resetRemote, runAsUser, totpCode, waitFor } from "../cluster/cluster.ts";
import { slowTest } from "../slow.ts";
import { BINARY, BOX_JOBS, clusterLogin, editJson, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

let cluster: Cluster;
const tag = Math.random().toString(36).slice(2, 6);
const PTY = path.resolve(import.meta.dir, "../ssh/pty_drive.py");
const HOLD_LOCK = path.resolve(import.meta.dir, "../store/helpers/holdLock.ts");
// test/run.sh installs cron; a machine without it skips the one test of the real crontab command.
const hasCrontab = spawnSync("sh", ["-c", "command -v crontab"]).status === 0;
// The cron daemon (in /usr/sbin, which a PATH may lack), for the one test that lets it run the line.
const cronDaemon = spawnSync("sh", ["-c", "PATH=$PATH:/usr/sbin:/sbin command -v cron"], {
  encoding: "utf8",
}).stdout.trim();

beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});

/** Successful logins (any method) in the test sshd's log since this was called. */
function loginCounter(): () => number {
  const log = path.join(cluster.stateDir, "log/sshd.log");
  const count = () =>
    (fs.readFileSync(log, "utf8").match(/Accepted (keyboard-interactive|publickey|password)/g) ?? []).length;
  const start = count();
  return () => count() - start;
}

function setUp(port: number, remote: string, extra: string[] = []): Sandbox {
  const s = sandbox();
  const r = s.run(["init", ...clusterLogin(cluster, port), ...BOX_JOBS, "--remote-dir", remote, ...extra]);
  expect(r.code).toBe(0);
  return s;
}

function addJobs(s: Sandbox, prefix: string, n: number): string[] {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${tag}${i}`);
  const folders = ids.map((id) => s.jobFolder(id, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\n" }));
  expect(s.run(["add", ...folders]).code).toBe(0);
  return ids;
}

function syncJson(s: Sandbox): { ssh_requests: number; submitted: string[]; completed: string[] } {
  const r = s.run(["sync", "--json"]);
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function flagsOf(remote: string, n: number): Promise<void> {
  await waitFor(
    async () => {
      const r = await runAsUser(`ls ${remote}/completed 2>/dev/null`);
      return r.stdout.split(/\s+/).filter((f) => f.endsWith(".flag")).length === n;
    },
    { timeoutMs: 90_000, intervalMs: 250, what: `${n} flags in ${remote}` },
  );
}

/** `chasqui connect` on a pseudo-terminal, typing a fresh TOTP code at OpenSSH's prompt. */
async function connect(s: Sandbox, args: string[] = []): Promise<{ code: number; transcript: string }> {
  const code = await totpCode();
  const r = spawnSync(
    "python3",
    [PTY, JSON.stringify([["Verification code", `${code}\r`]]), "--", BINARY, "connect", ...args],
    {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.root, CHASQUI_HOME: s.home, TERM: "dumb" },
      timeout: 90_000,
    },
  );
  return { code: r.status ?? -1, transcript: r.stdout };
}

describe("riding an OpenSSH master", () => {
  // A master outlives a failed test by its ControlPersist: closed here whatever happened.
  const opened: Sandbox[] = [];
  afterAll(() => {
    for (const s of opened) s.run(["disconnect"]);
  });

  test("one 2FA login at connect; syncs with no terminal ride it with the ssh2 request counts; after disconnect, exit 3", async () => {
    const viaMaster = setUp(cluster.totpPort, "chasqui_remote_master");
    // The same work over chasqui's own ssh2 login, for the request counts (the key-only port: the
    // counts do not depend on the second factor, and the suite's TOTP codes are few).
    const viaSsh2 = setUp(cluster.keyPort, "chasqui_remote_ssh2");
    editJson(path.join(viaSsh2.home, "config.json"), (o) => {
      o.transport = "ssh2";
    });
    const ids = addJobs(viaMaster, "m", 2);
    addJobs(viaSsh2, "n", 2);

    const logins = loginCounter();
    opened.push(viaMaster);
    const c = await connect(viaMaster, ["--for", "10m"]);
    expect(c.code).toBe(0);
    expect(c.transcript).toContain("Verification code");
    expect(c.transcript).toContain("connected: 127.0.0.1 until");
    expect(logins()).toBe(1);
    const status = JSON.parse(viaMaster.run(["status", "--json"]).stdout);
    expect(status.master).toMatchObject({ live: true, source: "chasqui" });
    expect(Date.parse(status.master.until) - Date.now()).toBeGreaterThan(8 * 60_000);
    expect(fs.statSync(path.join(viaMaster.home, "ssh")).mode & 0o777).toBe(0o700);

    // No terminal and no otp_command: only the master can get this sync in.
    const first = syncJson(viaMaster);
    expect(first.submitted.sort()).toEqual([...ids].sort());
    expect(logins()).toBe(1);
    const firstSsh2 = syncJson(viaSsh2);
    expect(logins()).toBe(2);
    expect(first.ssh_requests).toBe(firstSsh2.ssh_requests);

    await flagsOf("chasqui_remote_master", 2);
    await flagsOf("chasqui_remote_ssh2", 2);
    const second = syncJson(viaMaster);
    // A job that ends within the first sync's own request is DONE from that one already.
    expect([...first.completed, ...second.completed].sort()).toEqual([...ids].sort());
    expect(second.ssh_requests).toBe(syncJson(viaSsh2).ssh_requests);
    expect(logins()).toBe(3);

    // Results come home through the master too (one streamed request).
    const download = viaMaster.run(["download", "--json"]);
    expect(download.code).toBe(0);
    expect((JSON.parse(download.stdout) as { id: string }[]).map((d) => d.id).sort()).toEqual(
      [...ids].sort(),
    );
    expect(fs.existsSync(path.join(viaMaster.root, "jobs", ids[0]!, "OUTCAR"))).toBe(true);
    expect(logins()).toBe(3);

    const doctor = viaMaster.run(["doctor"]);
    expect(doctor.code).toBe(0);
    expect(doctor.stdout).toContain("host keys are checked by OpenSSH on this path");
    expect(logins()).toBe(3);

    const d = viaMaster.run(["disconnect"]);
    expect(d.stdout).toContain("closed the master connection");
    const after = viaMaster.run(["sync"]);
    expect(after.code).toBe(3);
    expect(after.stderr).toContain("chasqui connect");
    expect(JSON.parse(viaMaster.run(["status", "--json"]).stdout).master.live).toBe(false);
  }, 180_000);

  test('transport "openssh" with no master and no terminal: exit 3 naming chasqui connect, nothing sent', () => {
    const s = setUp(cluster.totpPort, "chasqui_remote_nomaster");
    editJson(path.join(s.home, "config.json"), (o) => {
      o.transport = "openssh";
    });
    addJobs(s, "o", 1);
    const logins = loginCounter();
    const r = s.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no live OpenSSH master connection to 127.0.0.1 (transport is "openssh")');
    expect(r.stderr).toContain("`chasqui connect`");
    expect(logins()).toBe(0);
    expect(JSON.parse(s.run(["list", "--json"]).stdout)[0].state).toBe("QUEUED_LOCAL");
    // connect itself needs a person.
    const c = s.run(["connect"]);
    expect(c.code).toBe(3);
    expect(c.stderr).toContain("needs a person at a terminal");
  });
});

describe("cron", () => {
  test("install is idempotent and leaves other lines alone; the line runs a sync with cron's environment; remove restores", () => {
    const s = setUp(cluster.keyPort, "chasqui_remote_cron");
    const crontab = path.join(s.root, "crontab");
    const others = "MAILTO=ana@example.org\n0 3 * * * /usr/bin/backup --all\n";
    fs.writeFileSync(crontab, others);
    const env = { CHASQUI_CRONTAB: crontab };
    const ids = addJobs(s, "c", 1);

    expect(s.run(["cron", "install"], { env }).code).toBe(0);
    const once = fs.readFileSync(crontab, "utf8");
    expect(s.run(["cron", "install"], { env }).stdout).toContain("already in");
    expect(fs.readFileSync(crontab, "utf8")).toBe(once);
    expect(s.run(["cron", "install", "--every", "15m"], { env }).code).toBe(0);
    const lines = fs.readFileSync(crontab, "utf8").split("\n");
    expect(lines.filter((l) => l.includes("chasqui sync for"))).toHaveLength(1);
    expect(lines.slice(0, 2).join("\n")).toBe(others.trimEnd());
    const bad = s.run(["cron", "install", "--every", "7m"], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--every "7m"');
    const line = s.run(["cron", "show"], { env }).stdout.trim();
    expect(line).toMatch(/^\d+-59\/15 \* \* \* \* umask 077; CHASQUI_HOME=/);
    expect(JSON.parse(s.run(["status", "--json"], { env }).stdout).cron.installed).toBe(true);

    // As cron runs it: the command after the five time fields, `\%` back to `%`, by sh, with
    // cron's bare environment.
    const command = line.split(" ").slice(5).join(" ").replaceAll("\\%", "%");
    const ran = spawnSync(
      "env",
      ["-i", "PATH=/usr/bin:/bin", `HOME=${s.root}`, "SHELL=/bin/sh", "sh", "-c", command],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(ran.status).toBe(0);
    const logFile = path.join(s.home, "sync.log");
    const log = fs.readFileSync(logFile, "utf8");
    expect(log).toMatch(/^== \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC chasqui sync\n/);
    expect(log).toContain(`submitted  1: ${ids[0]}`);
    expect(fs.statSync(logFile).mode & 0o777).toBe(0o600);
    // Past 1 MB, the log that holds this run becomes sync.log.1 and the next run starts afresh.
    fs.appendFileSync(logFile, `${"x".repeat(1 << 20)}\n`);
    expect(spawnSync("env", ["-i", "PATH=/usr/bin:/bin", `HOME=${s.root}`, "sh", "-c", command]).status).toBe(
      0,
    );
    expect(fs.existsSync(logFile)).toBe(false);
    expect(fs.readFileSync(`${logFile}.1`, "utf8")).toMatch(/x\n== .* UTC chasqui sync\n[\s\S]*now: /);

    expect(s.run(["cron", "remove"], { env }).stdout).toContain("removed from");
    expect(fs.readFileSync(crontab, "utf8")).toBe(others);
    expect(s.run(["cron", "remove"], { env }).stdout).toContain("no chasqui line");
  }, 90_000);

  /**
   * chasqui as the cluster's test user, the way a person has it: the binary in a folder anyone can
   * read, a CHASQUI_HOME of their own, and their own crontab (saved first, put back by restore).
   */
  function asTestUser() {
    const user = cluster.user;
    const dir = fs.mkdtempSync("/tmp/chasqui-crontab-");
    fs.chmodSync(dir, 0o755);
    const bin = path.join(dir, "chasqui");
    fs.copyFileSync(BINARY, bin);
    fs.chmodSync(bin, 0o755);
    const home = path.join(dir, "home");
    const own = path.join(dir, "own");
    for (const d of [home, own]) fs.mkdirSync(d);
    const run = (args: string[]) =>
      spawnSync(
        "runuser",
        [
          "-u",
          user,
          "--",
          "env",
          `HOME=${cluster.home}`,
          `CHASQUI_HOME=${home}`,
          "PATH=/usr/bin:/bin",
          bin,
          ...args,
        ],
        { encoding: "utf8" },
      );
    const crontab = (args: string[], input?: string) =>
      spawnSync("crontab", ["-u", user, ...args], {
        encoding: "utf8",
        ...(input === undefined ? {} : { input }),
      });
    const saved = crontab(["-l"]);
    return {
      bin,
      home,
      /** A folder the user owns, for their key, known_hosts and job folders. */
      own,
      run,
      crontab,
      /** Files and folders made by root for the user become the user's. */
      give: () => spawnSync("chown", ["-R", `${user}:${user}`, home, own]),
      restore() {
        if (saved.status === 0) crontab(["-"], saved.stdout);
        else crontab(["-r"]);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  test.skipIf(!hasCrontab)(
    "the real crontab command, as the test user: install twice, the other lines kept, remove",
    () => {
      const u = asTestUser();
      u.give();
      const others = "MAILTO=ana@example.org\n0 3 * * * /usr/bin/true\n";
      try {
        expect(u.crontab(["-"], others).status).toBe(0);
        expect(u.run(["init", "--host", "h", "--set", "account=P"]).status).toBe(0);
        const installed = u.run(["cron", "install"]);
        expect(installed.status).toBe(0);
        expect(installed.stdout).toContain("installed in your crontab (crontab -l)");
        expect(u.run(["cron", "install", "--every", "15m"]).status).toBe(0);
        const text = u.crontab(["-l"]).stdout;
        expect(text.startsWith(others)).toBe(true);
        const mine = text.split("\n").filter((l) => l.includes("chasqui sync for"));
        expect(mine).toHaveLength(1);
        expect(mine[0]).toContain(`${u.bin} sync --cron`);
        expect(mine[0]).toMatch(/^\d+-59\/15 /);
        expect(JSON.parse(u.run(["status", "--json"]).stdout).cron).toMatchObject({ installed: true });
        expect(u.run(["cron", "remove"]).status).toBe(0);
        expect(u.crontab(["-l"]).stdout).toBe(others);
      } finally {
        u.restore();
      }
    },
  );

  // The cron daemon itself (Debian's, installed by test/run.sh) runs the installed line: up to a
  // minute's wait for cron's next turn, so in the slow group.
  (hasCrontab && cronDaemon !== "" ? slowTest : test.skip)(
    "the cron daemon runs the installed line: at its next minute a sync sends the job",
    async () => {
      const u = asTestUser();
      const key = path.join(u.own, "id");
      const knownHosts = path.join(u.own, "known_hosts");
      fs.copyFileSync(cluster.identity, key);
      fs.copyFileSync(cluster.knownHosts, knownHosts);
      fs.chmodSync(key, 0o600);
      const job = path.join(u.own, `cron${tag}`);
      fs.mkdirSync(job);
      for (const [f, text] of Object.entries({ ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\n" })) {
        fs.writeFileSync(path.join(job, f), text);
      }
      u.give();
      const login = clusterLogin({ ...cluster, identity: key, knownHosts }, cluster.keyPort);
      const remote = "chasqui_remote_crond";
      expect(u.run(["init", ...login, ...BOX_JOBS, "--remote-dir", remote]).status).toBe(0);
      expect(u.run(["add", job]).status).toBe(0);
      // A daemon already running (a machine that has one) is used as it is; ours is stopped after.
      const ours = spawnSync("pgrep", ["-x", "cron"]).status !== 0;
      try {
        expect(u.run(["cron", "install", "--every", "1m"]).status).toBe(0);
        if (ours) expect(spawnSync(cronDaemon, []).status).toBe(0);
        // The dated line is written once the sync is over (its store commits made).
        const syncLog = path.join(u.home, "sync.log");
        const header = /^== \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC chasqui sync$/m;
        const log = await waitFor(
          () => {
            const text = fs.existsSync(syncLog) ? fs.readFileSync(syncLog, "utf8") : "";
            return header.test(text) ? text : undefined;
          },
          { timeoutMs: 150_000, intervalMs: 1000, what: "a sync run by cron" },
        );
        const state = JSON.parse(fs.readFileSync(path.join(u.home, "jobs.json"), "utf8")).jobs[0].state;
        expect({ state, log }).not.toMatchObject({ state: "QUEUED_LOCAL" });
        expect(fs.statSync(syncLog).mode & 0o777).toBe(0o600);
        expect(u.run(["cron", "remove"]).status).toBe(0);
      } finally {
        if (ours) spawnSync("pkill", ["-x", "cron"]);
        u.restore();
        // Nothing of this test left in the queue for the limits of the tests after it.
        await runAsUser(`scancel -n ${schedulerJobName(`cron${tag}`)}; rm -rf ${remote}`);
      }
    },
    240_000,
  );

  test("a cron sync that finds another chasqui at work exits 4 without a word", async () => {
    const s = setUp(cluster.keyPort, "chasqui_remote_busy");
    addJobs(s, "b", 1);
    const holder = spawn(process.execPath, [HOLD_LOCK, path.join(s.home, "jobs.lock")], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
      const r = s.run(["sync", "--cron"]);
      expect(r.code).toBe(4);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe("");
    } finally {
      holder.stdin.end();
    }
    expect(JSON.parse(s.run(["list", "--json"]).stdout)[0].state).toBe("QUEUED_LOCAL");
  });
});

describe("notify_command", () => {
  interface Event {
    event: string;
    id?: string;
    state?: string;
  }
  const readEvents = (file: string): Event[] =>
    fs.existsSync(file)
      ? fs
          .readFileSync(file, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l))
      : [];

  test("exactly one job_finished per finished job across several syncs", async () => {
    const s = setUp(cluster.keyPort, "chasqui_remote_notify");
    const events = path.join(s.root, "events.jsonl");
    editJson(path.join(s.home, "config.json"), (o) => {
      o.notify_command = `cat >> '${events}'`;
    });
    const ids = addJobs(s, "f", 3);
    syncJson(s);
    await flagsOf("chasqui_remote_notify", 3);
    syncJson(s);
    syncJson(s);
    const got = readEvents(events);
    expect(got.map((e) => e.event)).toEqual(["job_finished", "job_finished", "job_finished"]);
    expect(got.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(got.every((e) => e.state === "DONE")).toBe(true);

    // A notify command that fails: told as a warning, the sync still ends well.
    editJson(path.join(s.home, "config.json"), (o) => {
      o.notify_command = "exit 7";
    });
    const [late] = addJobs(s, "g", 1);
    const runs = [s.run(["sync"])];
    await flagsOf("chasqui_remote_notify", 4);
    runs.push(s.run(["sync"]));
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    // The job ends in one of the two syncs (within the first one's own request, or after it).
    expect(runs.map((r) => r.stdout).join("")).toContain(`done       ${late}`);
    expect(runs.map((r) => r.stderr).join("")).toContain(
      "warning: notify_command failed (1 event(s) not told): exit 7",
    );
  }, 120_000);

  test("one login_needed across repeated cron runs; a failing or hanging notify never changes the outcome", () => {
    const s = setUp(cluster.totpPort, "chasqui_remote_login");
    const events = path.join(s.root, "events.jsonl");
    const notify = (command: string) =>
      editJson(path.join(s.home, "config.json"), (o) => {
        o.notify_command = command;
        o.notify_timeout_seconds = 1;
      });
    notify(`cat >> '${events}'`);
    addJobs(s, "l", 1);
    for (let i = 0; i < 3; i++) {
      const r = s.run(["sync", "--cron"]);
      expect(r.code).toBe(3);
      // One line per run in sync.log: the error and what to do.
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("chasqui connect");
    }
    const got = readEvents(events);
    expect(got.map((e) => e.event)).toEqual(["login_needed"]);

    for (const [command, why] of [
      ["echo broken >&2; exit 1", "exit 1: broken"],
      ["sleep 600", "still running after 1 s (notify_timeout_seconds), stopped"],
    ] as const) {
      notify(command);
      editJson(path.join(s.home, "jobs.json"), (o) => {
        o.last_report = null; // as if this were the first failure: it is told
      });
      const r = s.run(["sync"]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`warning: notify_command failed (1 event(s) not told): ${why}`);
    }
    expect(JSON.parse(s.run(["list", "--json"]).stdout)[0].state).toBe("QUEUED_LOCAL");
  }, 60_000);
});
