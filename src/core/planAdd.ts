// Pure checks for `chasqui add`: which folders become which jobs, or every reason they cannot.
import { isValidJobId, type Job, makeJobId, newJob } from "./job.ts";
import { alreadyAddedHint } from "./jobRules.ts";

const REQUIRED_INPUTS = ["POSCAR", "INCAR", "KPOINTS"] as const;

/** What the file system said about one folder given to `add`. */
export interface FolderScan {
  /** As the user typed it (for messages). */
  arg: string;
  /** Absolute, symlinks resolved. */
  path: string;
  problem: string | null;
  /** Regular files at the top of the folder: size, whether they look like text, all blank. */
  files: Map<string, { size: number; text: boolean; blank: boolean }>;
  /** Entries that are not regular files (folders, FIFOs, ...), by name: what they are. */
  special: Map<string, string>;
  /** Every entry's name, for "names are case-sensitive" hints. */
  names: string[];
}

export interface AddRequest {
  folders: FolderScan[];
  name: string | undefined;
  template: string;
  needsPotcar: boolean;
  vars: Record<string, string>;
  existing: readonly Job[];
  now: Date;
  /** Inputs larger than this many MB need `force` (config max_input_mb). */
  maxInputMb: number;
  force: boolean;
}

export interface AddPlan {
  jobs: Job[];
  errors: string[];
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why input `name` of a folder cannot make a VASP run ("missing" when simply absent), or null. */
function inputProblem(folder: FolderScan, name: string): string | null {
  const info = folder.files.get(name);
  if (!info) {
    const kind = folder.special.get(name);
    if (kind) return `${name} is ${kind}, not a file`;
    const lookalike = folder.names.find((n) => n !== name && n.toUpperCase() === name);
    if (lookalike)
      return `missing ${name} (there is "${lookalike}": names are case-sensitive, VASP reads ${name})`;
    return "missing";
  }
  if (info.size === 0) return `${name} is empty`;
  if (!info.text) return `${name} is not a text file`;
  if (info.blank) return `${name} has only blank lines`;
  return null;
}

export function planAdd(req: AddRequest): AddPlan {
  const errors: string[] = [];
  if (req.name !== undefined && req.folders.length !== 1) {
    errors.push(`--name names one job, but ${req.folders.length} folders were given`);
  }
  if (req.name !== undefined && (!isValidJobId(req.name) || req.name.startsWith("-"))) {
    errors.push(
      `--name ${JSON.stringify(req.name)}: use 1-64 letters, digits, ".", "_" or "-", not starting with "-" (it names files and shell words on the cluster)`,
    );
  }
  const byPath = new Map(req.existing.map((j) => [j.local_path, j]));
  const taken = new Set(req.existing.map((j) => j.id));
  const holder = req.name === undefined ? undefined : req.existing.find((j) => j.id === req.name);
  if (holder) {
    errors.push(
      `--name ${req.name}: a job of that id exists already (${holder.state}, ${holder.local_path}); choose another name`,
    );
  }
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
      errors.push(`${where}: already added as job ${known.id} (${known.state}); ${alreadyAddedHint(known)}`);
      continue;
    }
    const required: string[] = [...REQUIRED_INPUTS, ...(req.needsPotcar ? ["POTCAR"] : [])];
    const missing = required.filter((f) => !folder.files.has(f) && inputProblem(folder, f) === "missing");
    const inputProblems = [
      ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []),
      ...required.map((f) => inputProblem(folder, f)).filter((p) => p !== null && p !== "missing"),
    ];
    if (inputProblems.length > 0) {
      errors.push(...inputProblems.map((p) => `${where}: ${p}`));
      continue;
    }
    if (!req.force) {
      for (const [f, info] of folder.files) {
        const mb = info.size / 1024 / 1024;
        if (mb > req.maxInputMb)
          errors.push(
            `${where}: ${f} is ${mb.toFixed(0)} MB, over max_input_mb (${req.maxInputMb}): add --force to send it anyway`,
          );
      }
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
