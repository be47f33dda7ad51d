// Pure checks for `chasqui add`: which folders become which jobs, or every reason they cannot.
import { isValidJobId, type Job, makeJobId, newJob } from "./job.ts";

export const REQUIRED_INPUTS = ["POSCAR", "INCAR", "KPOINTS"] as const;

/** What the file system said about one folder given to `add`. */
export interface FolderScan {
  /** As the user typed it (for messages). */
  arg: string;
  /** Absolute, symlinks resolved. */
  path: string;
  problem: string | null;
  /** Regular files at the top of the folder, with their sizes and whether they look like text. */
  files: Map<string, { size: number; text: boolean }>;
}

export interface AddRequest {
  folders: FolderScan[];
  name: string | undefined;
  template: string;
  needsPotcar: boolean;
  vars: Record<string, string>;
  existing: readonly Job[];
  now: Date;
}

export interface AddPlan {
  jobs: Job[];
  errors: string[];
}

const CONTROL = /[\u0000-\u001f\u007f]/;

export function planAdd(req: AddRequest): AddPlan {
  const errors: string[] = [];
  if (req.name !== undefined && req.folders.length !== 1) {
    errors.push(`--name names one job, but ${req.folders.length} folders were given`);
  }
  if (req.name !== undefined && !isValidJobId(req.name)) {
    errors.push(
      `--name ${JSON.stringify(req.name)}: use 1-64 letters, digits, ".", "_" or "-" (it names files and shell words on the cluster)`,
    );
  }
  const byPath = new Map(req.existing.map((j) => [j.local_path, j]));
  const taken = new Set(req.existing.map((j) => j.id));
  const seen = new Set<string>();
  const jobs: Job[] = [];
  for (const folder of req.folders) {
    const where = JSON.stringify(folder.arg);
    if (folder.problem) {
      errors.push(`${where}: ${folder.problem}`);
      continue;
    }
    if (seen.has(folder.path)) {
      errors.push(`${where}: given twice`);
      continue;
    }
    seen.add(folder.path);
    const known = byPath.get(folder.path);
    if (known) {
      errors.push(
        `${where}: already added as job ${known.id} (${known.state}); use \`chasqui retry ${known.id}\` to run it again`,
      );
      continue;
    }
    const required: string[] = [...REQUIRED_INPUTS, ...(req.needsPotcar ? ["POTCAR"] : [])];
    const missing = required.filter((f) => !folder.files.has(f));
    if (missing.length > 0) {
      errors.push(`${where}: missing ${missing.join(", ")}`);
      continue;
    }
    for (const f of ["INCAR", "POSCAR", "KPOINTS"]) {
      const info = folder.files.get(f)!;
      if (info.size === 0) errors.push(`${where}: ${f} is empty`);
      else if (!info.text) errors.push(`${where}: ${f} is not a text file`);
    }
    const base = folder.path.split("/").filter(Boolean).pop() ?? "job";
    const name = req.name ?? base;
    if (CONTROL.test(name)) {
      errors.push(`${where}: the folder name contains control characters (a newline?); rename the folder`);
      continue;
    }
    if (name.length > 200) {
      errors.push(`${where}: the folder name is longer than 200 characters; rename it or use --name`);
      continue;
    }
    const id = req.name ?? makeJobId(name, taken);
    taken.add(id);
    jobs.push(
      newJob({ id, name, local_path: folder.path, template: req.template, vars: req.vars, now: req.now }),
    );
  }
  return { jobs: errors.length > 0 ? [] : jobs, errors };
}
