// The torque template through the test cluster's real qsub (Slurm behind PBS wrappers), as user chasqui.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultConfig } from "../../src/core/config.ts";
import { newJob } from "../../src/core/job.ts";
import { JOB_LIB_FILE, JOB_LIB_TEXT } from "../../src/core/jobLib.ts";
import { shellQuote } from "../../src/core/layout.ts";
import { renderBatchScript, templateVariables } from "../../src/core/render.ts";
import { EMBEDDED_PARTIALS, EMBEDDED_TEMPLATES } from "../../src/templates/embedded.ts";
import { SLOW, slowTest } from "../slow.ts";
import { type Flag, readFlag, waitFor } from "./harness.ts";

const CLUSTER_JSON = "/var/lib/chasqui-cluster/cluster.json";
const clusterUp = fs.existsSync(CLUSTER_JSON);

interface Cluster {
  user: string;
  home: string;
  slurmConf: string;
  partitions: string[];
}

const POSCAR = "Si\n5.43\n0 0.5 0.5\n0.5 0 0.5\n0.5 0.5 0\nSi\n2\nDirect\n0 0 0\n0.25 0.25 0.25\n";
const JOBS: Record<string, { incar: string; walltime: string }> = {
  normal: { incar: "ENCUT = 400\nFAKE_SECONDS = 0\n", walltime: "00:05:00" },
  failing: { incar: "ENCUT = 400\nFAKE_SECONDS = 0\nFAKE_FAIL = .TRUE.\n", walltime: "00:05:00" },
  // Slurm counts walltime in minutes: the shortest kill is a minute (plus its check interval),
  // so this one runs in the slow group only; epilogue.test.ts covers the TERM path in seconds.
  ...(SLOW ? { overrun: { incar: "ENCUT = 400\nFAKE_OVERRUN = .TRUE.\n", walltime: "00:01:00" } } : {}),
};

describe.skipIf(!clusterUp)("torque-vasp on the test cluster", () => {
  let cluster: Cluster;
  let remote: string;
  const submitted = new Map<string, string>();

  function asUser(command: string) {
    return spawnSync(
      "su",
      ["-", cluster.user, "-c", `export SLURM_CONF=${shellQuote(cluster.slurmConf)}; ${command}`],
      {
        encoding: "utf8",
      },
    );
  }

  const flagFile = (id: string) => path.join(remote, "completed", `${id}.flag`);

  async function flagOf(id: string, ms: number): Promise<Flag> {
    await waitFor(`the flag of ${id}`, () => fs.existsSync(flagFile(id)), ms, 250);
    return readFlag(flagFile(id));
  }

  beforeAll(() => {
    cluster = JSON.parse(fs.readFileSync(CLUSTER_JSON, "utf8")) as Cluster;
    remote = fs.mkdtempSync(path.join(cluster.home, "chasqui-tpl-test-"));
    const config = { ...defaultConfig("cluster"), remote_dir: remote };
    fs.writeFileSync(
      path.join(remote, "agent.sh"),
      '#!/bin/bash\necho "$CHASQUI_JOB_ID $*" >> "$(dirname "$0")/agent.triggered"\n',
    );
    fs.mkdirSync(path.join(remote, "lib"));
    fs.writeFileSync(path.join(remote, "lib", JOB_LIB_FILE), JOB_LIB_TEXT);
    for (const [id, spec] of Object.entries(JOBS)) {
      const work = path.join(remote, "jobs", id);
      fs.mkdirSync(work, { recursive: true });
      fs.writeFileSync(path.join(work, "INCAR"), spec.incar);
      fs.writeFileSync(path.join(work, "POSCAR"), POSCAR);
      const job = newJob({
        id,
        name: id,
        local_path: "/nowhere",
        template: "torque-vasp",
        vars: { queue: cluster.partitions[0] ?? "batch", ncpus: "1", walltime: spec.walltime },
        now: new Date(),
      });
      const script = renderBatchScript({
        name: "torque-vasp",
        source: EMBEDDED_TEMPLATES["torque-vasp"]!,
        partials: EMBEDDED_PARTIALS,
        vars: templateVariables(job, config),
      });
      fs.writeFileSync(path.join(remote, `${id}.sh`), script);
    }
    spawnSync("chown", ["-R", `${cluster.user}:`, remote]);
    for (const id of Object.keys(JOBS)) {
      // Submitted from $HOME, so the script must find its work folder by itself; the wrappers
      // ignore #PBS -o/-e/-j, so the job's own output goes where the command line says.
      const q = (f: string) => shellQuote(path.join(remote, f));
      const r = asUser(`qsub -o ${q(`${id}.out`)} -e ${q(`${id}.err`)} ${q(`${id}.sh`)}`);
      if (r.status !== 0) throw new Error(`qsub ${id} failed: ${r.stderr}`);
      submitted.set(id, r.stdout.trim());
    }
  });

  afterAll(() => {
    if (!cluster) return;
    for (const sid of submitted.values()) asUser(`qdel ${shellQuote(sid)} 2>/dev/null`);
    if (remote) fs.rmSync(remote, { recursive: true, force: true });
  });

  test("a normal run: DONE, outputs in the work folder, agent triggered", async () => {
    const flag = await flagOf("normal", 60_000);
    expect(flag).toMatchObject({
      status: "DONE",
      schedulerId: submitted.get("normal"),
      exitCode: "0",
    });
    // The fake VASP's run, summarized on the cluster: last F= of OSZICAR, steps, CONTCAR.
    expect(flag.extra).toEqual(
      expect.arrayContaining([
        "energy=-10.10010000",
        "ionic_steps=1",
        "electronic_steps=5",
        "nelm=60",
        "contcar=valid",
      ]),
    );
    const work = path.join(remote, "jobs", "normal");
    expect(fs.readFileSync(path.join(work, "OUTCAR"), "utf8")).toContain("General timing and accounting");
    expect(fs.readFileSync(path.join(work, "stdout"), "utf8")).toMatch(/^# chasqui job normal, attempt 0/);
    const agentLog = path.join(remote, "agent.triggered");
    await waitFor(
      "the agent trigger",
      () =>
        fs.existsSync(agentLog) && fs.readFileSync(agentLog, "utf8").includes("normal trigger --from-job"),
    );
  });

  test("FAKE_FAIL: FAIL with the exit code", async () => {
    const flag = await flagOf("failing", 60_000);
    expect(flag).toMatchObject({ status: "FAIL", schedulerId: submitted.get("failing"), exitCode: "1" });
  });

  slowTest(
    "FAKE_OVERRUN past a one-minute walltime: TIMEOUT",
    async () => {
      const flag = await flagOf("overrun", 170_000);
      expect(flag).toMatchObject({
        status: "TIMEOUT",
        schedulerId: submitted.get("overrun"),
        exitCode: "143",
      });
      expect(fs.readdirSync(path.join(remote, "completed")).sort()).toEqual([
        "failing.flag",
        "normal.flag",
        "overrun.flag",
      ]);
    },
    180_000,
  );
});
