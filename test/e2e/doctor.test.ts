// `chasqui doctor` through the cluster-in-a-box: one login, every check OK; the 2FA port answered
// by otp_command; no terminal and no otp_command on the 2FA port: exit 3 without a prompt.
import { beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { clusterLogin, sandbox } from "./helpers.ts";

const STATE = process.env.CHASQUI_CLUSTER_DIR ?? "/var/lib/chasqui-cluster";
interface ClusterInfo {
  host: string;
  keyPort: number;
  totpPort: number;
  user: string;
  identity: string;
  knownHosts: string;
}
let cluster: ClusterInfo;

beforeAll(() => {
  cluster = JSON.parse(fs.readFileSync(path.join(STATE, "cluster.json"), "utf8"));
});

function initArgs(port: number, extra: string[] = []): string[] {
  return [
    "init",
    ...clusterLogin(cluster, port),
    "--remote-dir",
    "chasqui_remote_doctor",
    // The default template is PBS Professional's, which passes the project as #PBS -A.
    "--set",
    "account=chasqui-test",
    ...extra,
  ];
}

describe("chasqui doctor", () => {
  test("key-only port: every check OK, methods reported", () => {
    const s = sandbox();
    expect(s.run(initArgs(cluster.keyPort)).code).toBe(0);
    const r = s.run(["doctor", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const checks = JSON.parse(r.stdout) as { name: string; ok: boolean; detail: string }[];
    const byName = new Map(checks.map((c) => [c.name, c]));
    for (const name of [
      "config",
      "account",
      "host key",
      "login",
      "qsub",
      "qstat",
      "scheduler",
      "queue",
      "remote folder",
      "agent",
    ]) {
      expect(byName.get(name)?.ok).toBe(true);
    }
    expect(byName.get("login")!.detail).toContain("publickey");
    expect(byName.get("host key")!.detail).toContain("known_hosts");
  });

  test("OpenSSH is asked once whether a master is live, not once per step", () => {
    const s = sandbox();
    expect(s.run(initArgs(cluster.keyPort)).code).toBe(0);
    // An ssh that notes its arguments, then is the real one.
    const shim = path.join(s.root, "bin");
    const calls = path.join(s.root, "ssh-calls");
    fs.mkdirSync(shim);
    const ssh = Bun.which("ssh")!;
    fs.writeFileSync(path.join(shim, "ssh"), `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${ssh}' "$@"\n`, {
      mode: 0o755,
    });
    const r = s.run(["doctor"], { env: { PATH: `${shim}:${process.env.PATH}` } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK +connection +chasqui's own ssh2 login/);
    const lines = fs.readFileSync(calls, "utf8").trim().split("\n");
    expect(lines.filter((l) => l.includes("-O check"))).toHaveLength(1);
  });

  test("scheduler slurm: the Slurm commands are the ones checked", () => {
    const s = sandbox();
    expect(s.run(initArgs(cluster.keyPort, ["--scheduler", "slurm"])).code).toBe(0);
    const r = s.run(["doctor"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK {3}sbatch +\/\S+sbatch/);
    expect(r.stdout).toMatch(/OK {3}squeue/);
    expect(r.stdout).not.toMatch(/qsub/);
  });

  test("2FA port answered by otp_command", () => {
    const s = sandbox();
    const otp = `${process.execPath} ${path.resolve(import.meta.dir, "../cluster/totp-cli.ts")}`;
    expect(s.run(initArgs(cluster.totpPort, ["--otp-command", otp])).code).toBe(0);
    const r = s.run(["doctor"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("keyboard-interactive (otp_command)");
  });

  test("2FA port, no terminal, no otp_command: exit 3, nothing asked", () => {
    const s = sandbox();
    expect(s.run(initArgs(cluster.totpPort)).code).toBe(0);
    const r = s.run(["doctor"]);
    expect(r.code).toBe(3);
    expect(r.stdout).not.toContain("Verification code");
    expect(r.stderr).toContain("hint:");
  });

  test("unknown host key without a terminal: exit 3 and the fingerprint shown", () => {
    const s = sandbox();
    const empty = path.join(s.root, "known_hosts");
    fs.writeFileSync(empty, "");
    const args = initArgs(cluster.keyPort);
    args[args.indexOf("--known-hosts") + 1] = empty;
    expect(s.run(args).code).toBe(0);
    const r = s.run(["doctor"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("SHA256:");
    expect(fs.readFileSync(empty, "utf8")).toBe("");
    const accepted = s.run(["doctor", "--accept-new-host-key"]);
    expect(accepted.code).toBe(0);
    expect(fs.readFileSync(empty, "utf8")).toMatch(/ ssh-ed25519 AAAA/);
    const again = s.run(["doctor"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("matches known_hosts");
  });
});
