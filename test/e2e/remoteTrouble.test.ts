// Bad input and trouble on the cluster's side, through the compiled binary and the real cluster:
// hostile folder names, a full remote disk, a remote folder that cannot be written, one deleted by
// hand. Each gets a message that names the problem, a non-zero exit where the sync failed, and no
// job state changed that should not be.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Cluster, loadCluster, resetRemote, runAsUser, waitFor } from "../cluster/cluster.ts";
import { BOX_JOBS, clusterLogin, type Sandbox, sandbox, VASP_FILES } from "./helpers.ts";

let cluster: Cluster;
const tag = Math.random().toString(36).slice(2, 6);
const mounts: string[] = [];

beforeAll(() => {
  cluster = loadCluster();
  resetRemote();
});
afterAll(() => {
  for (const m of mounts) spawnSync("umount", [m]);
});

function setUp(remote: string): Sandbox {
  const s = sandbox();
  const r = s.run([
    "init",
    ...clusterLogin(cluster, cluster.keyPort),
    ...BOX_JOBS,
    "--remote-dir",
    remote,
    "--max-queued",
    "10",
  ]);
  expect(r.code).toBe(0);
  return s;
}

const states = (s: Sandbox) =>
  Object.fromEntries(
    (JSON.parse(s.run(["list", "--json"]).stdout) as { id: string; state: string }[]).map((j) => [
      j.id,
      j.state,
    ]),
  );

describe("on the cluster's side", () => {
  test("folder names with quotes, ;, $(), spaces and unicode: safe ids, jobs run, nothing else is executed", async () => {
    const remote = "chasqui_remote_names";
    const s = setUp(remote);
    const canary = `pwned${tag}`;
    const names = [
      `it's ${tag}`,
      `a;touch ${canary};b${tag}`,
      `$(touch ${canary})${tag}`,
      `ünïcødé ${tag}`,
      `"q"${tag}`,
    ];
    const folders = names.map((n) => s.jobFolder(n, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\n" }));
    const add = s.run(["add", ...folders, "--json"]);
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout) as { id: string; name: string }[];
    expect(added.map((j) => j.name).sort()).toEqual([...names].sort());
    for (const j of added) expect(j.id).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(s.run(["sync"]).code).toBe(0);
    await waitFor(
      () => {
        s.run(["sync"]);
        return Object.values(states(s)).every((st) => st === "DONE");
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "every hostile-named job DONE" },
    );
    const found = await runAsUser(`find ~ /tmp -name '${canary}*' 2>/dev/null; true`);
    expect(found.stdout.trim()).toBe("");
    expect(fs.readdirSync(s.root).filter((f) => f.startsWith(canary))).toEqual([]);
  }, 90_000);

  test("a full remote disk: the upload fails saying so, the jobs stay queued here, the next sync sends them", async () => {
    const remote = `chasqui_remote_full${tag}`;
    const dir = path.join(cluster.home, remote);
    fs.mkdirSync(dir);
    spawnSync("chown", [`${cluster.user}:${cluster.user}`, dir]);
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", dir]).status).toBe(0);
    mounts.push(dir);
    spawnSync("chown", [`${cluster.user}:${cluster.user}`, dir]);
    const s = setUp(remote);
    const big = Buffer.alloc(2 * 1024 * 1024, "POTCAR line\n");
    const id = `full${tag}`;
    expect(s.run(["add", s.jobFolder(id, { ...VASP_FILES, POTCAR: big })]).code).toBe(0);
    const r = s.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("upload failed on the cluster: the disk is full (tar: ");
    expect(r.stderr).toContain("hint: Free some space on the cluster");
    expect(r.stderr).toContain("the jobs stay queued here");
    expect(states(s)).toEqual({ [id]: "QUEUED_LOCAL" });
    // Room again: the same sync sends it.
    spawnSync("umount", [dir]);
    mounts.pop();
    expect(s.run(["sync"]).code).toBe(0);
    expect(states(s)[id]).not.toBe("QUEUED_LOCAL");
  }, 60_000);

  test("a remote folder that cannot be written: the sync fails naming it, nothing changes here", async () => {
    const remote = `chasqui_remote_ro${tag}`;
    await runAsUser(`mkdir -p ${remote} && chmod 555 ${remote}`);
    const s = setUp(remote);
    const id = `ro${tag}`;
    expect(s.run(["add", s.jobFolder(id)]).code).toBe(0);
    const before = s.snapshot();
    const r = s.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(remote);
    expect(r.stderr).toContain("permission denied (mkdir: cannot create directory");
    expect(r.stderr).toContain("hint: Check the owner and mode of chasqui's folder on the cluster");
    expect(states(s)).toEqual({ [id]: "QUEUED_LOCAL" });
    // Only the outcome for `chasqui status` was written.
    const after = s.snapshot();
    expect(after.get("config.json")).toBe(before.get("config.json"));
    await runAsUser(`chmod 755 ${remote}`);
    expect(s.run(["sync"]).code).toBe(0);
  }, 60_000);

  test("a remote folder deleted by hand: the next sync says so, sets it up again and nothing is submitted twice", async () => {
    const remote = `chasqui_remote_gone${tag}`;
    const s = setUp(remote);
    const ids = [0, 1].map((i) => `gone${tag}${i}`);
    expect(
      s.run(["add", ...ids.map((id) => s.jobFolder(id, { ...VASP_FILES, INCAR: "FAKE_SECONDS = 0\n" }))])
        .code,
    ).toBe(0);
    expect(s.run(["sync"]).code).toBe(0);
    await waitFor(
      async () => (await runAsUser(`ls ${remote}/completed 2>/dev/null | wc -l`)).stdout.trim() === "2",
      {
        timeoutMs: 60_000,
        intervalMs: 250,
        what: "two flags",
      },
    );
    await runAsUser(`rm -rf ${remote}`);
    const r = s.run(["sync"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: the remote folder ${remote} was set up anew`);
    // The jobs' flags went with it: the scheduler's own word decides (after the grace period),
    // and no job is sent again.
    expect(
      Object.values(states(s)).every((st) => st === "SUBMITTED" || st === "RUNNING" || st === "DONE"),
    ).toBe(true);
    const again = s.run(["sync", "--json"]);
    expect(JSON.parse(again.stdout).submitted).toEqual([]);
  }, 90_000);
});
