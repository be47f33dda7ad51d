// Faults during sync, a sample (the soak, `bun bench/soak.ts`, runs hundreds): connections cut by
// the proxy at random byte offsets and chasqui SIGKILLed at random moments, then syncs until
// nothing changes. Every job reaches the scheduler exactly once, none is lost, the store parses,
// local states are the cluster's, and results that came home are whole.
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { type Cluster, loadCluster, resetRemote } from "../cluster/cluster.ts";
import { startProxy, type Proxy as TcpProxy } from "../cluster/proxy.ts";
import { slowTest } from "../slow.ts";
import { type FaultKind, faultTrial } from "./faultTrial.ts";

let cluster: Cluster;
let proxy: TcpProxy;
const tag = Math.random().toString(36).slice(2, 6);

beforeAll(async () => {
  cluster = loadCluster();
  resetRemote();
  proxy = await startProxy({ targetPort: cluster.keyPort });
});
afterAll(async () => {
  await proxy?.close();
});

// A seeded generator: a failing trial can be run again as it was.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("faults during sync", () => {
  for (const kind of ["cut", "kill"] as FaultKind[]) {
    slowTest(
      `${kind}: 6 trials of 3 faulty syncs each, then none duplicated, lost, disagreeing or partial`,
      async () => {
        const seed = Number(process.env.CHASQUI_FAULT_SEED ?? Date.now() % 100_000);
        const rand = mulberry32(seed);
        let faults = 0;
        for (let t = 0; t < 6; t++) {
          const r = await faultTrial({ cluster, proxy, kind, name: `f${tag}${kind[0]}${t}`, rand });
          expect({ seed, trial: t, problems: r.problems }).toEqual({ seed, trial: t, problems: [] });
          expect(r.storeParses).toBe(true);
          faults += r.faults;
        }
        // The faults did happen (not every sync ends before its cut or kill).
        expect(faults).toBeGreaterThan(6);
      },
      600_000,
    );
  }
});
