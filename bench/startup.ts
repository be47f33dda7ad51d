// Start-up of the compiled binary: `--help`, and `list` / `list --json` / `show` over a store of
// N jobs (default 10,000). Median of R runs each (default 21), wall time per process.
//   bun bench/startup.ts [N] [R]      (run `bun build.ts` first)
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { newJob, transition } from "../src/core/job.ts";
import { emptyStore, storeText } from "../src/store/jobStore.ts";

const BINARY = path.resolve(import.meta.dir, "../dist/chasqui");
const n = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 21);

function storeOf(count: number): string {
  const now = new Date("2026-12-01T00:00:00Z");
  const data = emptyStore();
  for (let i = 0; i < count; i++) {
    let j = newJob({
      id: `job${i}`,
      name: `job${i}`,
      local_path: `/data/runs/batch${i % 50}/job${i}`,
      template: "pbspro-vasp",
      vars: {},
      now,
    });
    if (i % 3 === 0) {
      for (const s of ["UPLOADED", "SUBMITTED", "RUNNING", "DONE"] as const) j = transition(j, s, s, now);
    }
    data.jobs.push(j);
  }
  return storeText(data);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(args: string[], home: string): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(BINARY, args, { env: { ...process.env, CHASQUI_HOME: home }, stdio: "ignore" });
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 0) throw new Error(`chasqui ${args.join(" ")} exited ${r.status}`);
  }
  return median(samples);
}

if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun build.ts\` first`);
const home = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-bench-"));
fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ version: 1, host: "h" }));
fs.writeFileSync(path.join(home, "jobs.json"), storeOf(n));
const rows: [string, number][] = [
  ["--help", time(["--help"], home)],
  [`list (${n} jobs, piped)`, time(["list"], home)],
  [`list --json (${n} jobs)`, time(["list", "--json"], home)],
  [`show (${n} jobs)`, time(["show", "job5"], home)],
];
fs.rmSync(home, { recursive: true, force: true });
console.log(`chasqui start-up, median of ${runs} runs, ${os.cpus()[0]?.model ?? "?"} x${os.cpus().length}`);
for (const [what, ms] of rows) console.log(`  ${what.padEnd(28)} ${ms.toFixed(1)} ms`);
