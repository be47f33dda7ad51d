// Which result files a job brings home: file-name patterns (as bash matches them on the cluster)
// from config.json's download_globs, or per job from `add --set download_globs="A B"`.
import type { Config } from "./config.ts";
import type { Job } from "./job.ts";

/** A pattern is one file name, with *, ? and [...] as in bash; no folders, tabs or newlines. */
export function isValidResultGlob(g: string): boolean {
  return g !== "" && !/[/\t\n\0]/.test(g) && g !== "." && g !== "..";
}

/** The patterns of a job: its own `download_globs` variable (space or comma separated) or the config's. */
export function resultGlobs(job: Pick<Job, "vars">, config: Pick<Config, "download_globs">): string[] {
  const own = job.vars.download_globs;
  if (own === undefined || own.trim() === "") return [...config.download_globs];
  return own.split(/[\s,]+/).filter((g) => g !== "");
}

/** The pattern as a RegExp with bash's meaning (`*`, `?`, `[abc]`, `[!abc]`, `[a-z]`). */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) {
        out += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith("!") || body.startsWith("^")) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, "\\\\")}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "s");
}

export function matchesAny(name: string, globs: readonly string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(name));
}
