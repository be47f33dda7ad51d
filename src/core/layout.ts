// Where things live on the cluster, as shell words, and the one shell quoter every word chasqui
// puts into a remote command or a batch script goes through. Pure.
import { InputError } from "../errors.ts";
import type { Config } from "./config.ts";
import { JOB_LIB_FILE } from "./jobLib.ts";

/** One POSIX shell word that expands to exactly `s` (single quotes; `'` becomes `'\''`). */
export function shellQuote(s: string): string {
  if (s.includes("\0")) throw new InputError("a shell word cannot contain a NUL character");
  if (s !== "" && /^[A-Za-z0-9_./:@%+,-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export interface RemotePaths {
  /** The remote folder R as a shell word, e.g. `"$HOME"/chasqui_remote`. */
  remote_dir_sh: string;
  /** The root of the work folders (default R/jobs) as a shell word. */
  work_root_sh: string;
  /** The job's work folder, work_root/<id>, as a shell word. */
  work_dir_sh: string;
  /** The job helper the script sources, R/lib/job-<version>.sh, as a shell word. */
  chasqui_lib_sh: string;
}

/** A cluster path as a shell word: absolute as is, anything else under the login home. */
function remotePathWord(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (trimmed.startsWith("/")) return shellQuote(trimmed);
  const rel = trimmed.replace(/^~(\/+|$)/, "").replace(/^(\.\/+)+/, "");
  return rel === "" || rel === "." ? `"$HOME"` : `"$HOME"/${shellQuote(rel)}`;
}

function joinRemote(base: string, child: string): string {
  return `${base.replace(/\/+$/, "")}/${child}`;
}

/** Where a job lives on the cluster, as shell words (pure: no remote `$HOME` is needed). */
export function remotePaths(config: Pick<Config, "remote_dir" | "work_root">, jobId: string): RemotePaths {
  const workRoot = config.work_root ?? joinRemote(config.remote_dir, "jobs");
  return {
    remote_dir_sh: remotePathWord(config.remote_dir),
    work_root_sh: remotePathWord(workRoot),
    work_dir_sh: remotePathWord(joinRemote(workRoot, jobId)),
    chasqui_lib_sh: remotePathWord(joinRemote(config.remote_dir, `lib/${JOB_LIB_FILE}`)),
  };
}
