// The cluster side of downloads (src/cluster/kit/download.sh), run with bash on a folder of this
// machine: which files match, which travel, which the workstation keeps, and the tar stream.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { downloadInput, parseManifest } from "../../src/cluster/download.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

function run(work: string, input: Buffer) {
  const r = spawnSync("bash", ["-s"], { input, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const out = r.stdout as Buffer;
  const nl = out.indexOf(0x0a);
  const size = Number(/^@@manifest (\d+)$/.exec(out.subarray(0, nl).toString())![1]);
  const manifest = parseManifest(out.subarray(nl + 1, nl + 1 + size).toString());
  const tar = gunzipSync(out.subarray(nl + 1 + size));
  const names: string[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = tar
      .subarray(at, at + 100)
      .toString()
      .replace(/\0.*$/s, "");
    if (name === "") break;
    const len = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString()
        .trim(),
      8,
    );
    names.push(name);
    at += 512 + Math.ceil(len / 512) * 512;
  }
  return { code: r.status, manifest, names, stderr: r.stderr.toString(), work };
}

describe("download.sh", () => {
  test("matching top-level files travel; identical ones and kept ones do not; a missing folder is named", () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "chasqui-dl-"));
    const a = path.join(work, "a");
    fs.mkdirSync(path.join(a, "run.1"), { recursive: true });
    fs.writeFileSync(path.join(a, "OUTCAR"), "outcar\n");
    fs.writeFileSync(path.join(a, "OSZICAR"), "oszicar\n");
    fs.writeFileSync(path.join(a, "POSCAR"), "poscar\n");
    fs.writeFileSync(path.join(a, "WAVECAR"), "big\n");
    fs.writeFileSync(path.join(a, "a.o12"), "sched\n");
    fs.writeFileSync(path.join(a, "run.1", "OUTCAR"), "old\n");
    fs.symlinkSync("/etc/passwd", path.join(a, "CONTCAR"));
    const have = new Map([
      [
        "a",
        [
          { name: "OSZICAR", size: 8, sha256: sha("oszicar\n") },
          { name: "OUTCAR", size: 7, sha256: sha("different") },
          { name: "POSCAR", size: -1, sha256: "-" },
        ],
      ],
    ]);
    const targets = ["a", "gone"].map((id) => ({
      id,
      dest: "/nowhere",
      globs: ["OUTCAR", "OSZICAR", "CONTCAR", "POSCAR", "*.o[0-9]*"],
      guardInputs: true,
      earlierResults: [],
    }));
    const r = run(work, downloadInput(`'${work}'`, targets, have));
    expect(r.code).toBe(0);
    const verdicts = Object.fromEntries(r.manifest.map((e) => [`${e.id}/${e.name}`, e.verdict]));
    expect(verdicts).toEqual({
      "a/OUTCAR": "send",
      "a/OSZICAR": "same",
      "a/POSCAR": "kept",
      "a/a.o12": "send",
      "gone/": "missing",
    });
    // Links (CONTCAR here), unmatched files (WAVECAR) and earlier runs never travel.
    expect(r.names.sort()).toEqual(["a/OUTCAR", "a/a.o12"]);
    fs.rmSync(work, { recursive: true, force: true });
  });
});
