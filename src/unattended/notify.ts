// notify_command: run after a sync with one JSON event per line on stdin, bounded in time. Its
// failure is reported and never changes how the sync ended.
import { spawn } from "node:child_process";
import type { Notification } from "../core/notifyEvents.ts";

/** null when the command ran and exited 0; else what went wrong, in words. */
export function runNotifyCommand(
  command: string,
  events: readonly Notification[],
  timeoutSeconds: number,
): Promise<string | null> {
  return new Promise((resolve) => {
    // Its own process group: a timeout kills what it started too (curl, mail, sleep).
    const child = spawn("sh", ["-c", command], { stdio: ["pipe", "ignore", "pipe"], detached: true });
    let stderr = "";
    let timedOut = false;
    child.stderr.on("data", (b: Buffer) => {
      if (stderr.length < 2000) stderr += b.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutSeconds * 1000);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve(`cannot run it: ${e.message}`);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const said = stderr.trim() ? `: ${stderr.trim().split("\n").slice(-3).join(" ")}` : "";
      if (timedOut) resolve(`still running after ${timeoutSeconds} s (notify_timeout_seconds), stopped`);
      else if (code !== 0) resolve(`${code === null ? `killed by ${signal}` : `exit ${code}`}${said}`);
      else resolve(null);
    });
    child.stdin.on("error", () => {});
    child.stdin.end(events.map((e) => `${JSON.stringify(e)}\n`).join(""));
  });
}
