// Looks at a job folder on the workstation: what `add` checks and what sync uploads.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { FolderScan } from "../core/planAdd.ts";
import { systemProblem } from "../errors.ts";

/** Outputs of VASP and the scheduler: never uploaded as inputs, and what downloads bring back. */
const OUTPUT_NAMES = new Set([
  "OUTCAR",
  "CONTCAR",
  "chasqui.out",
  "chasqui.err",
  "OSZICAR",
  "vasprun.xml",
  "stdout",
  "XDATCAR",
  "EIGENVAL",
  "DOSCAR",
  "PROCAR",
  "PCDAT",
  "IBZKPT",
  "REPORT",
  "vaspout.h5",
]);
const SCHEDULER_OUTPUT = /\.[oe]\d+$|^slurm-\d+\.out$/;

export function isOutputName(name: string): boolean {
  return OUTPUT_NAMES.has(name) || SCHEDULER_OUTPUT.test(name);
}

function looksLikeText(head: Buffer): boolean {
  if (head.includes(0)) return false;
  return !head.toString("utf8").includes("\ufffd");
}

/** What a non-regular entry is, in words. */
function kindOf(st: import("node:fs").Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

const INPUTS = ["POSCAR", "INCAR", "KPOINTS", "POTCAR"];

/** Why the file system refused, in words (never an errno code). */
function why(e: unknown): string {
  return systemProblem(e)?.what ?? (e instanceof Error ? e.message : String(e));
}

export async function scanJobFolder(arg: string, cwd: string): Promise<FolderScan> {
  const files: FolderScan["files"] = new Map();
  const special = new Map<string, string>();
  const names: string[] = [];
  const scan = (problem: string | null, p = path.resolve(cwd, arg)): FolderScan => ({
    arg,
    path: p,
    problem,
    files,
    special,
    names,
  });
  let real: string;
  try {
    real = await fs.realpath(path.resolve(cwd, arg));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return scan("is a symlink loop");
    return scan(code === "ENOENT" ? "no such folder" : `cannot open it: ${why(e)}`);
  }
  const st = await fs.stat(real);
  if (!st.isDirectory()) return scan("is not a folder", real);
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(real, { withFileTypes: true });
  } catch (e) {
    return scan(`cannot list it: ${why(e)}`, real);
  }
  for (const entry of entries) {
    names.push(entry.name);
    const full = path.join(real, entry.name);
    let info: import("node:fs").Stats;
    try {
      info = await fs.stat(full);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A dangling link or a loop inside the folder is only a problem when it is an input we need.
      if (INPUTS.includes(entry.name)) {
        return scan(`${entry.name} cannot be read: ${code === "ELOOP" ? "a symlink loop" : why(e)}`, real);
      }
      continue;
    }
    if (!info.isFile()) {
      special.set(entry.name, kindOf(info));
      continue;
    }
    let text = true;
    let blank = info.size === 0;
    if (INPUTS.includes(entry.name) && info.size > 0) {
      try {
        const handle = await fs.open(full, "r");
        try {
          const head = Buffer.alloc(Math.min(info.size, 4096));
          await handle.read(head, 0, head.length, 0);
          text = looksLikeText(head);
          // Only small files can be all blank lines worth checking (a KPOINTS is a few lines).
          blank = info.size <= head.length && head.toString("utf8").trim() === "";
        } finally {
          await handle.close();
        }
      } catch (e) {
        return scan(`${entry.name} cannot be read: ${why(e)}`, real);
      }
    }
    files.set(entry.name, { size: info.size, text, blank });
  }
  return scan(null, real);
}
