// What a sync costs over a link with a real round trip, against the floor and the naive design.
// The cluster-in-a-box's key-only port behind the latency proxy (25 ms each way: 50 ms round
// trip). Jobs like VASP inputs: small POSCAR, INCAR, KPOINTS, and a ~1.5 MB POTCAR drawn from 3.
// For each N: chasqui's first sync (upload + submit) and a steady-state sync (nothing new, some
// finished), and the same work done
//   - at the floor: OpenSSH `tar c | ssh 'tar x'` of the same files, one `ssh` running the qsubs,
//     and for the steady state one `ssh` reading every flag;
//   - the naive way (ssh2): per job mkdir, one SFTP upload per file and for the script, a qsub;
//     per job an existence check and a read of its flag.
// Wall time (median of --runs), SSH requests (exec channels, SFTP operations, ssh processes) and
// bytes sent (client → server through the proxy, login included).
//   bun build.ts && bun bench/sync.ts [--sizes 1,10,100,500] [--runs 3] [--delay-ms 25]
//                                     [--ways chasqui,floor,naive] [--out FILE]
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import ssh2 from "ssh2";
import { loadCluster, resetRemote, runAsUser, waitFor } from "../test/cluster/cluster.ts";
import { startProxy } from "../test/cluster/proxy.ts";

const { values: opt } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,10,100,500" },
    runs: { type: "string", default: "3" },
    "delay-ms": { type: "string", default: "25" },
    "max-queued": { type: "string", default: "100" },
    ways: { type: "string", default: "chasqui,floor,naive" },
    out: { type: "string" },
  },
});
const WAYS = new Set(opt.ways.split(","));
const SIZES = opt.sizes.split(",").map(Number);
const RUNS = Number(opt.runs);
const DELAY = Number(opt["delay-ms"]);
const MAX_QUEUED = Number(opt["max-queued"]);
const BINARY = path.resolve(import.meta.dir, "../dist/chasqui");
if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun build.ts\` first`);

const cluster = loadCluster();
const root = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-bench-sync-"));

// ---------------------------------------------------------------------------------------------
// Inputs: three distinct POTCAR-like texts (numbers in columns, ~1.5 MB, compressible as real
// ones are), each job a copy of one of them.

function potcarText(seed: number, bytes: number): string {
  let x = seed * 2654435761;
  const lines: string[] = [`  PAW_PBE El${seed} 08Apr2002`];
  let size = 0;
  while (size < bytes) {
    const nums: string[] = [];
    for (let i = 0; i < 5; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      nums.push(((x / 2 ** 32 - 0.5) * 20).toExponential(8).padStart(16));
    }
    const line = nums.join("");
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join("\n")}\n`;
}

const POTCARS = [1, 2, 3].map((s) => potcarText(s, 1_500_000));
const POSCAR = "Si\n5.43\n0 0.5 0.5\n0.5 0 0.5\n0.5 0.5 0\nSi\n2\nDirect\n0 0 0\n0.25 0.25 0.25\n";
const KPOINTS = "Automatic\n0\nGamma\n4 4 4\n";

function makeJobs(n: number): { dir: string; ids: string[]; uniqueBytes: number } {
  const dir = fs.mkdtempSync(path.join(root, `jobs${n}-`));
  const ids: string[] = [];
  let unique = POTCARS.slice(0, Math.min(n, 3)).reduce((a, p) => a + p.length, 0);
  for (let i = 0; i < n; i++) {
    const id = `b${n}x${String(i).padStart(3, "0")}`;
    const d = path.join(dir, id);
    fs.mkdirSync(d);
    const incar = `ENCUT = ${400 + i}\nISMEAR = 0\nFAKE_SECONDS = 0\n`;
    fs.writeFileSync(path.join(d, "POSCAR"), POSCAR);
    fs.writeFileSync(path.join(d, "INCAR"), incar);
    fs.writeFileSync(path.join(d, "KPOINTS"), KPOINTS);
    fs.writeFileSync(path.join(d, "POTCAR"), POTCARS[i % 3]!);
    // POSCAR and KPOINTS are the same in every job: stored once on the cluster too.
    unique += incar.length + (i === 0 ? POSCAR.length + KPOINTS.length : 0);
    ids.push(id);
  }
  return { dir, ids, uniqueBytes: unique };
}

// ---------------------------------------------------------------------------------------------

interface Sample {
  ms: number;
  requests: number;
  bytes: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => {
      stdout += b;
    });
    child.stderr.on("data", (b) => {
      stderr += b;
    });
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function flagsAtLeast(remote: string, n: number): Promise<void> {
  await waitFor(
    async () => Number((await runAsUser(`ls ${remote}/completed 2>/dev/null | wc -l`)).stdout.trim()) >= n,
    { timeoutMs: 600_000, intervalMs: 500, what: `${n} flags in ${remote}` },
  );
}

// ---------------------------------------------------------------------------------------------
// chasqui

async function chasqui(
  n: number,
  port: number,
  proxyUp: () => number,
): Promise<{ first: Sample; steady: Sample; submitted: number }> {
  const { dir, ids } = makeJobs(n);
  const home = path.join(fs.mkdtempSync(path.join(root, "home-")), "home");
  const knownHosts = path.join(root, `known_hosts_${port}`);
  const keys = fs.readFileSync(cluster.knownHosts, "utf8");
  fs.writeFileSync(knownHosts, keys + keys.replaceAll(`]:${cluster.keyPort} `, `]:${port} `));
  const env = { CHASQUI_HOME: home, HOME: path.dirname(home) };
  const cli = (args: string[]) => run(BINARY, args, env);
  const init = await cli([
    "init",
    ...["--host", cluster.host, "--port", String(port), "--user", cluster.user],
    ...["--identity", cluster.identity, "--known-hosts", knownHosts],
    ...["--template", "torque-vasp", "--set", "queue=batch", "--set", "ncpus=1", "--set", "command=true"],
    ...["--max-queued", String(MAX_QUEUED), "--max-running", String(MAX_QUEUED)],
    ...["--remote-dir", "chasqui_remote_bench"],
  ]);
  if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
  const add = await cli(["add", ...ids.map((id) => path.join(dir, id))]);
  if (add.code !== 0) throw new Error(`add: ${add.stderr}`);
  const timed = async (): Promise<
    Sample & { summary: { ssh_requests: number; submitted: string[]; completed: string[] } }
  > => {
    const up0 = proxyUp();
    const t = performance.now();
    const r = await cli(["sync", "--json"]);
    const ms = performance.now() - t;
    if (r.code !== 0) throw new Error(`sync: ${r.stderr}`);
    const summary = JSON.parse(r.stdout);
    return { ms, requests: summary.ssh_requests, bytes: proxyUp() - up0, summary };
  };
  const first = await timed();
  // Steady state: some jobs finished since, nothing new to upload.
  await flagsAtLeast("chasqui_remote_bench", Math.min(n, 3));
  const steady = await timed();
  // What the steady sync did on the cluster besides reading: the agent submits into the room the
  // finished jobs left, and every finished job's flag and state come back.
  steadyWork.push({
    n,
    submitted: steady.summary.submitted.length,
    finished: steady.summary.completed.length,
  });
  return { first, steady, submitted: first.summary.submitted.length };
}

// ---------------------------------------------------------------------------------------------
// The floor: OpenSSH, the least a person could type.

function sshArgs(port: number): string[] {
  return [
    ...["-p", String(port), "-i", cluster.identity, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"],
    ...["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", `${cluster.user}@${cluster.host}`],
  ];
}

async function floor(
  n: number,
  port: number,
  submit: number,
  proxyUp: () => number,
): Promise<{ first: Sample; steady: Sample }> {
  const { dir, ids } = makeJobs(n);
  for (const id of ids) fs.writeFileSync(path.join(dir, id, "job.sh"), `#!/bin/bash\n#PBS -N ${id}\ntrue\n`);
  const up0 = proxyUp();
  const t = performance.now();
  const tar = await run("bash", [
    "-c",
    `tar cf - -C '${dir}' . | ssh ${sshArgs(port).join(" ")} 'mkdir -p chasqui_remote_floor && tar xf - -C chasqui_remote_floor'`,
  ]);
  if (tar.code !== 0) throw new Error(`floor tar: ${tar.stderr}`);
  const qsubs = ids
    .slice(0, submit)
    .map(
      (id) => `(cd chasqui_remote_floor/${id} && qsub -q batch -o /dev/null -e /dev/null job.sh >/dev/null)`,
    )
    .join("; ");
  const q = await run("ssh", [...sshArgs(port), qsubs || "true"]);
  if (q.code !== 0) throw new Error(`floor qsub: ${q.stderr}`);
  const first = { ms: performance.now() - t, requests: 2, bytes: proxyUp() - up0 };
  const up1 = proxyUp();
  const t1 = performance.now();
  const s = await run("ssh", [
    ...sshArgs(port),
    "cat chasqui_remote_bench/completed/*.flag 2>/dev/null; true",
  ]);
  if (s.code !== 0) throw new Error(`floor steady: ${s.stderr}`);
  return { first, steady: { ms: performance.now() - t1, requests: 1, bytes: proxyUp() - up1 } };
}

// ---------------------------------------------------------------------------------------------
// The naive per-job design over ssh2.

/** An ssh2 login and a counted exec (exit code and stdout), as the naive design did it. */
async function naiveLogin(port: number, count: () => void) {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.on("ready", () => resolve()).on("error", reject);
    client.connect({
      host: cluster.host,
      port,
      username: cluster.user,
      privateKey: fs.readFileSync(cluster.identity),
      hostVerifier: () => true,
    });
  });
  const exec = (cmd: string) =>
    new Promise<{ code: number; out: string }>((resolve, reject) => {
      count();
      client.exec(cmd, (err, ch) => {
        if (err) return reject(err);
        let out = "";
        let code = 0;
        ch.on("data", (b: Buffer) => {
          out += b;
        });
        ch.stderr.on("data", () => {});
        ch.on("exit", (c: number) => {
          code = c;
        });
        ch.on("close", () => resolve({ code, out }));
      });
    });
  return { client, exec };
}

async function naive(
  n: number,
  port: number,
  submit: number,
  proxyUp: () => number,
): Promise<{ first: Sample; steady: Sample }> {
  const { dir, ids } = makeJobs(n);
  let requests = 0;
  const count = () => {
    requests++;
  };
  const up0 = proxyUp();
  const t = performance.now();
  const { client, exec } = await naiveLogin(port, count);
  const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) =>
    client.sftp((err, s) => (err ? reject(err) : resolve(s))),
  );
  requests++;
  const put = (local: string, remote: string) =>
    new Promise<void>((resolve, reject) => {
      const size = fs.statSync(local).size;
      // open, the writes (32 KB each), close.
      requests += 2 + Math.max(1, Math.ceil(size / 32768));
      sftp.fastPut(local, remote, (err) => (err ? reject(err) : resolve()));
    });
  for (const [i, id] of ids.entries()) {
    const remote = `chasqui_remote_naive/${id}`;
    await exec(`mkdir -p ${remote}`);
    for (const f of ["POSCAR", "INCAR", "KPOINTS", "POTCAR"])
      await put(path.join(dir, id, f), `${remote}/${f}`);
    const script = path.join(dir, id, "job.sh");
    fs.writeFileSync(script, `#!/bin/bash\n#PBS -N ${id}\ntrue\n`);
    await put(script, `${remote}/job.sh`);
    if (i < submit) await exec(`cd ${remote} && qsub -q batch -o /dev/null -e /dev/null job.sh`);
  }
  const first = { ms: performance.now() - t, requests, bytes: proxyUp() - up0 };
  client.end();
  // Steady state: a new login, then per job: does its flag exist, and if so read it.
  requests = 0;
  const up1 = proxyUp();
  const t1 = performance.now();
  const again = await naiveLogin(port, count);
  for (const id of ids) {
    const flag = `chasqui_remote_bench/completed/${id}.flag`;
    if ((await again.exec(`test -f ${flag}`)).code === 0) await again.exec(`cat ${flag}`);
  }
  again.client.end();
  return { first, steady: { ms: performance.now() - t1, requests, bytes: proxyUp() - up1 } };
}

// ---------------------------------------------------------------------------------------------

interface Row {
  n: number;
  way: string;
  first: Sample;
  steady: Sample;
}

const rows: Row[] = [];
const steadyWork: { n: number; submitted: number; finished: number }[] = [];
const proxy = await startProxy({ targetPort: cluster.keyPort, delayMs: DELAY });
const proxyUp = () => proxy.stats().up;

// What a login alone costs over this link (TCP, key exchange, authentication): the part of every
// sync that no design avoids.
const loginMs: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  const { client } = await naiveLogin(proxy.port, () => {});
  loginMs.push(performance.now() - t);
  client.end();
}
const uniqueOf = new Map<number, number>();

for (const n of SIZES) {
  uniqueOf.set(n, makeJobs(n).uniqueBytes);
  const samples: Record<string, { first: Sample[]; steady: Sample[] }> = {};
  const add = (way: string, r: { first: Sample; steady: Sample }) => {
    samples[way] ??= { first: [], steady: [] };
    samples[way].first.push(r.first);
    samples[way].steady.push(r.steady);
  };
  // The naive way at 500 jobs takes minutes a run: once is enough to see it.
  const naiveRuns = n >= 500 ? 1 : RUNS;
  for (let r = 0; r < RUNS; r++) {
    resetRemote();
    const c = await chasqui(n, proxy.port, proxyUp);
    add("chasqui", c);
    if (WAYS.has("floor")) add("floor", await floor(n, proxy.port, c.submitted, proxyUp));
    if (WAYS.has("naive") && r < naiveRuns) add("naive", await naive(n, proxy.port, c.submitted, proxyUp));
    process.stderr.write(`N=${n} run ${r + 1}/${RUNS} done\n`);
  }
  for (const [way, s] of Object.entries(samples)) {
    const med = (xs: Sample[]): Sample => ({
      ms: median(xs.map((x) => x.ms)),
      requests: median(xs.map((x) => x.requests)),
      bytes: median(xs.map((x) => x.bytes)),
    });
    rows.push({ n, way, first: med(s.first), steady: med(s.steady) });
  }
}
await proxy.close();
resetRemote();

// ---------------------------------------------------------------------------------------------
// add of 1,000 folders with the compiled binary (median of 3).

const addMs: number[] = [];
{
  const { dir, ids } = makeJobs(1000);
  for (let r = 0; r < 3; r++) {
    const home = path.join(fs.mkdtempSync(path.join(root, "addhome-")), "home");
    const env = { ...process.env, CHASQUI_HOME: home };
    spawnSync(BINARY, ["init", "--host", "h", "--set", "account=P"], { env });
    const t = performance.now();
    const r2 = spawnSync(BINARY, ["add", ...ids.map((id) => path.join(dir, id))], { env, stdio: "ignore" });
    addMs.push(performance.now() - t);
    if (r2.status !== 0) throw new Error("add of 1,000 folders failed");
  }
}

const fmtMs = (ms: number) =>
  ms >= 10_000
    ? `${(ms / 1000).toFixed(0)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.round(ms)} ms`;
const fmtB = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(0)} KB`);
const lines: string[] = [];
lines.push(
  `| N | way | first sync | requests | bytes sent | × unique | steady sync | requests | × floor (first) |`,
);
lines.push("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  const fl = rows.find((x) => x.n === r.n && x.way === "floor");
  lines.push(
    `| ${r.n} | ${r.way} | ${fmtMs(r.first.ms)} | ${r.first.requests} | ${fmtB(r.first.bytes)} | ${(r.first.bytes / uniqueOf.get(r.n)!).toFixed(2)} | ${fmtMs(r.steady.ms)} | ${r.steady.requests} | ${fl ? (r.first.ms / fl.first.ms).toFixed(2) : "-"} |`,
  );
}
const cpu = os.cpus()[0]?.model ?? "?";
const text = [
  `Round trip ${2 * DELAY} ms (proxy ${DELAY} ms each way), max_queued ${MAX_QUEUED}, median of ${RUNS} run(s) (naive at N ≥ 500: 1 run); ${os.cpus().length} × ${cpu}.`,
  "",
  ...lines,
  "",
  `Unique input bytes: ${[...uniqueOf].map(([n, b]) => `N=${n} ${fmtB(b)}`).join(", ")}.`,
  `An ssh2 login alone over this link (median of 5): ${fmtMs(median(loginMs))}.`,
  `chasqui's steady syncs also submitted / saw finish: ${steadyWork.map((w) => `N=${w.n} ${w.submitted}/${w.finished}`).join(", ")}.`,
  `\`chasqui add\` of 1,000 folders (compiled binary, median of 3): ${fmtMs(median(addMs))}.`,
  "",
  "JSON:",
  JSON.stringify(
    { delayMs: DELAY, runs: RUNS, rows, unique: Object.fromEntries(uniqueOf), addMs, loginMs },
    null,
    1,
  ),
].join("\n");
console.log(text);
if (opt.out) fs.writeFileSync(opt.out, `${text}\n`);
fs.rmSync(root, { recursive: true, force: true });
