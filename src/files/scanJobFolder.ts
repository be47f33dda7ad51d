// Looks at a job folder on the workstation: what `add` checks and what sync uploads.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { FolderScan } from "../core/planAdd.ts";

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

export async function scanJobFolder(arg: string, cwd: string): Promise<FolderScan> {
  const files = new Map<string, { size: number; text: boolean }>();
  const scan = (problem: string | null, p = path.resolve(cwd, arg)): FolderScan => ({
    arg,
    path: p,
    problem,
    files,
  });
  let real: string;
  try {
    real = await fs.realpath(path.resolve(cwd, arg));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return scan("is a symlink loop");
    return scan(code === "ENOENT" ? "no such folder" : `cannot open (${code ?? String(e)})`);
  }
  const st = await fs.stat(real);
  if (!st.isDirectory()) return scan("is not a folder", real);
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(real, { withFileTypes: true });
  } catch (e) {
    return scan(`cannot list (${(e as NodeJS.ErrnoException).code ?? String(e)})`, real);
  }
  for (const entry of entries) {
    const full = path.join(real, entry.name);
    let info: import("node:fs").Stats;
    try {
      info = await fs.stat(full);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A dangling link or a loop inside the folder is only a problem when it is an input we need.
      if (["POSCAR", "INCAR", "KPOINTS", "POTCAR"].includes(entry.name)) {
        return scan(`${entry.name} cannot be read (${code === "ELOOP" ? "symlink loop" : code})`, real);
      }
      continue;
    }
    if (!info.isFile()) continue;
    let text = true;
    if (["POSCAR", "INCAR", "KPOINTS"].includes(entry.name) && info.size > 0) {
      const handle = await fs.open(full, "r");
      try {
        const head = Buffer.alloc(Math.min(info.size, 4096));
        await handle.read(head, 0, head.length, 0);
        text = looksLikeText(head);
      } finally {
        await handle.close();
      }
    }
    files.set(entry.name, { size: info.size, text });
  }
  return scan(null, real);
}
