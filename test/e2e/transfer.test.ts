// Job inputs to the real cluster over the key-only port: 300 files across 100 folders that share
// one 1 MB POTCAR. Two requests, the shared file sent once, every file intact, links on the cluster.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type UploadJob, uploadJobs } from "../../src/cluster/upload.ts";
import { remotePaths } from "../../src/core/layout.ts";
import { noPrompter } from "../../src/ssh/prompter.ts";
import { defaultResolveDeps, resolveTarget } from "../../src/ssh/resolve.ts";
import { openSession, type Session } from "../../src/ssh/session.ts";

const STATE = process.env.CHASQUI_CLUSTER_DIR ?? "/var/lib/chasqui-cluster";
const REMOTE_DIR = "chasqui_remote_transfer";
let session: Session;
let root: string;

beforeAll(async () => {
  const c = JSON.parse(fs.readFileSync(path.join(STATE, "cluster.json"), "utf8"));
  const target = await resolveTarget(
    { host: c.host, port: c.keyPort, user: c.user, identity: c.identity, known_hosts: c.knownHosts },
    defaultResolveDeps(),
  );
  session = await openSession({ target, otpCommand: null, prompter: noPrompter, acceptNewHostKey: false });
  const wipe = await session.exec(`rm -rf ${REMOTE_DIR}`);
  expect(wipe.code).toBe(0);
  root = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-transfer-"));
});

afterAll(async () => {
  await session?.exec(`rm -rf ${REMOTE_DIR}`);
  await session?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe("uploading job inputs", () => {
  test("a shared POTCAR travels once; 300 files arrive whole", async () => {
    const potcar = randomBytes(1024 * 1024);
    const expected = new Map<string, string>();
    const jobs: UploadJob[] = [];
    for (let i = 0; i < 100; i++) {
      const id = `job-${String(i).padStart(3, "0")}`;
      const dir = path.join(root, id);
      fs.mkdirSync(dir);
      const files = { POSCAR: `structure ${i}\n1.0\n`, INCAR: `ENCUT = ${400 + i}\n`, POTCAR: potcar };
      for (const [name, body] of Object.entries(files)) {
        fs.writeFileSync(path.join(dir, name), body);
        expected.set(`${id}/${name}`, sha(body));
      }
      jobs.push({
        id,
        files: Object.keys(files).map((name) => ({ name, path: path.join(dir, name) })),
        script: `#!/bin/bash\necho ${id}\n`,
      });
    }
    const paths = remotePaths({ remote_dir: REMOTE_DIR, work_root: null }, "x");
    const before = session.stats();
    const result = await uploadJobs(
      session,
      { remoteDirSh: paths.remote_dir_sh, workRootSh: paths.work_root_sh },
      jobs,
    );
    const after = session.stats();
    expect(after.execRequests - before.execRequests).toBe(2);
    expect(result.files).toBe(300);
    expect(result.uniqueBodies).toBe(201);
    expect(result.bodiesSent).toBe(201);
    const sent = after.bytesSent - before.bytesSent;
    expect(sent).toBeLessThan(result.uniqueBytes * 1.05);
    expect(sent).toBeGreaterThan(potcar.length);
    // The job helper went with this first upload; it is not sent again.
    expect(result.helperSent).toBe(true);

    const sums = await session.exec(
      `cd ${REMOTE_DIR}/jobs && sha256sum */POSCAR */INCAR */POTCAR && stat -c '%h' job-000/POTCAR && ls ../waiting | wc -l`,
    );
    expect(sums.code).toBe(0);
    const lines = sums.stdout.toString().trim().split("\n");
    const got = new Map(lines.slice(0, 300).map((l) => [l.split("  ")[1]!, l.split("  ")[0]!]));
    expect(got).toEqual(expected);
    // One body in the store, linked from 100 job folders.
    expect(Number(lines[300])).toBe(101);
    expect(Number(lines[301])).toBe(100);

    // Again: nothing is missing, so no body travels; the previous run is kept under run.1/.
    const again = await uploadJobs(
      session,
      { remoteDirSh: paths.remote_dir_sh, workRootSh: paths.work_root_sh },
      jobs.slice(0, 1),
    );
    expect(again.bodiesSent).toBe(0);
    expect(again.helperSent).toBe(false);
    const kept = await session.exec(`ls ${REMOTE_DIR}/jobs/job-000/run.1`);
    expect(kept.stdout.toString().split("\n").sort().filter(Boolean)).toEqual(["INCAR", "POSCAR", "POTCAR"]);
  });
});
