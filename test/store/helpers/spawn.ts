// Test helper: run a child process to completion, collecting its output.
import { type ChildProcess, spawn } from "node:child_process";

export const BUN = process.execPath;
export const DENO = new URL("../../../node_modules/.bin/deno", import.meta.url).pathname;
export const helper = (name: string) => new URL(`./${name}`, import.meta.url).pathname;

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function finished(child: ChildProcess): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function run(cmd: string, args: string[]): Promise<Finished> {
  return finished(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
}

/** The pid of a process that has exited (for stale-lock tests). */
export async function deadPid(): Promise<number> {
  const child = spawn("true");
  await finished(child);
  return child.pid!;
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function caught<E = import("../../../src/errors.ts").ChasquiError>(
  p: Promise<unknown>,
): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error("expected a rejection");
}
