// Runs the compiled binary (dist/chasqui, built by `bun build.ts`) on a temporary CHASQUI_HOME.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const BINARY = path.resolve(import.meta.dir, "../../dist/chasqui");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  root: string;
  home: string;
  run(args: string[], opts?: { cwd?: string; env?: Record<string, string> }): Run;
  jobFolder(name: string, files?: Record<string, string | Buffer>): string;
  snapshot(): Map<string, string>;
}

const VASP_FILES: Record<string, string> = {
  POSCAR: "Si\n5.43\n0 0.5 0.5\n0.5 0 0.5\n0.5 0.5 0\nSi\n2\nDirect\n0 0 0\n0.25 0.25 0.25\n",
  INCAR: "ENCUT = 400\nISMEAR = 0\n",
  KPOINTS: "Automatic\n0\nGamma\n4 4 4\n",
  POTCAR: "PAW_PBE Si 05Jan2001\n",
};

export function sandbox(): Sandbox {
  if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun build.ts\` first`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-e2e-"));
  const home = path.join(root, "home");
  return {
    root,
    home,
    run(args, opts = {}) {
      const r = spawnSync(BINARY, args, {
        cwd: opts.cwd ?? root,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, CHASQUI_HOME: home, ...opts.env },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    jobFolder(name, files = VASP_FILES) {
      const dir = path.join(root, "jobs", name);
      fs.mkdirSync(dir, { recursive: true });
      for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
      return dir;
    },
    snapshot() {
      const out = new Map<string, string>();
      if (!fs.existsSync(home)) return out;
      for (const f of fs.readdirSync(home, { recursive: true }) as string[]) {
        const p = path.join(home, f);
        if (fs.statSync(p).isFile()) out.set(f, fs.readFileSync(p, "latin1"));
      }
      return out;
    },
  };
}

export { VASP_FILES };

/** Change a JSON file (a config, a store) in place, as a person with an editor would. */
export function editJson(file: string, change: (o: Record<string, unknown>) => void): void {
  const o = JSON.parse(fs.readFileSync(file, "utf8"));
  change(o);
  fs.writeFileSync(file, JSON.stringify(o));
}

/** `chasqui init` options that log in as the cluster-in-a-box's test user on `port`. */
export function clusterLogin(
  c: { host: string; user: string; identity: string; knownHosts: string },
  port: number,
  knownHosts = c.knownHosts,
): string[] {
  return [
    "--host",
    c.host,
    "--port",
    String(port),
    "--user",
    c.user,
    "--identity",
    c.identity,
    "--known-hosts",
    knownHosts,
  ];
}

/** What jobs need on the cluster-in-a-box: a Torque-style template, the batch partition, one core. */
export const BOX_JOBS = ["--template", "torque-vasp", "--set", "queue=batch", "--set", "ncpus=1"];
