// The user's crontab, read and written whole: `crontab -l` / `crontab -`, or the file named by
// CHASQUI_CRONTAB (a crontab kept as a file, e.g. for /etc/cron.d-style setups and tests).
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import { ChasquiError, errnoCode, FileError } from "../errors.ts";

export interface Crontab {
  /** Where it lives, in words: "your crontab (crontab -l)" or the file. */
  where: string;
  read(): Promise<string>;
  write(text: string): Promise<void>;
}

export function userCrontab(env: NodeJS.ProcessEnv): Crontab {
  const file = env.CHASQUI_CRONTAB;
  if (file) {
    return {
      where: file,
      read: async () => {
        try {
          return await fs.readFile(file, "utf8");
        } catch (e) {
          if (errnoCode(e) === "ENOENT") return "";
          throw new FileError("read", file, e);
        }
      },
      write: async (text) => {
        const tmp = `${file}.${process.pid}.tmp`;
        try {
          await fs.writeFile(tmp, text, { mode: 0o600 });
          await fs.rename(tmp, file);
        } catch (e) {
          await fs.rm(tmp, { force: true });
          throw new FileError("write", file, e);
        }
      },
    };
  }
  return {
    where: "your crontab (crontab -l)",
    read: async () => {
      const r = await crontabCommand(["-l"]);
      // "no crontab for <user>": an empty one.
      if (r.code !== 0 && /no crontab/i.test(r.stderr)) return "";
      if (r.code !== 0) throw new ChasquiError(`crontab -l failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      return r.stdout;
    },
    write: async (text) => {
      const r = await crontabCommand(["-"], text);
      if (r.code !== 0) throw new ChasquiError(`crontab - failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    },
  };
}

function crontabCommand(
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("crontab", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", (e) =>
      reject(
        errnoCode(e) === "ENOENT"
          ? new ChasquiError("crontab is not installed on this machine", {
              hint: "Install cron (Debian/Ubuntu: apt install cron), or set CHASQUI_CRONTAB to a crontab file that your system reads.",
            })
          : new ChasquiError(`cannot run crontab: ${e.message}`),
      ),
    );
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}
