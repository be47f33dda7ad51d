// The fault soak: N trials (default 200) of test/e2e/faultTrial.ts, half connection cuts at random
// byte offsets, half SIGKILLs at random moments, 3 faulty syncs each, against the cluster-in-a-box.
// Prints the figures (and writes them with --out) for docs/RELIABILITY.md.
//   bun build.ts && bun bench/soak.ts [--trials 200] [--seed S] [--out FILE]

import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { loadCluster, resetRemote } from "../test/cluster/cluster.ts";
import { startProxy } from "../test/cluster/proxy.ts";
import { faultTrial, type TrialResult } from "../test/e2e/faultTrial.ts";

const { values: opt } = parseArgs({
  options: {
    trials: { type: "string", default: "200" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    out: { type: "string" },
  },
});
const trials = Number(opt.trials);
const seed = Number(opt.seed);
let a = seed >>> 0;
const rand = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const cluster = loadCluster();
resetRemote();
const proxy = await startProxy({ targetPort: cluster.keyPort });
const results: TrialResult[] = [];
const started = Date.now();
for (let t = 0; t < trials; t++) {
  const kind = t % 2 === 0 ? "cut" : "kill";
  const r = await faultTrial({ cluster, proxy, kind, name: `soak${seed}x${t}`, rand });
  results.push(r);
  process.stderr.write(
    `trial ${t + 1}/${trials} ${kind}: ${r.faults} fault(s), ${r.recoverySyncs} sync(s) to settle${r.problems.length ? `, PROBLEMS: ${r.problems.join("; ")}` : ""}\n`,
  );
  // Keep the scheduler's queue and the remote folders small over hundreds of trials.
  if (t % 20 === 19) resetRemote();
}
await proxy.close();
resetRemote();

const sum = (f: (r: TrialResult) => number, kind?: string) =>
  results.filter((r) => !kind || r.kind === kind).reduce((n, r) => n + f(r), 0);
const figures = {
  seed,
  trials: results.length,
  minutes: Math.round((Date.now() - started) / 60_000),
  faults_injected: { cut: sum((r) => r.faults, "cut"), kill: sum((r) => r.faults, "kill") },
  jobs: sum((r) => r.jobs),
  duplicates: sum((r) => r.duplicates),
  lost: sum((r) => r.lost),
  disagreements: sum((r) => r.disagreements),
  bad_files: sum((r) => r.badFiles),
  unparsable_stores: results.filter((r) => !r.storeParses).length,
  max_recovery_syncs: Math.max(...results.map((r) => r.recoverySyncs)),
  problems: results.flatMap((r) => r.problems),
};
const text = JSON.stringify(figures, null, 2);
console.log(text);
if (opt.out) fs.writeFileSync(opt.out, `${text}\n`);
