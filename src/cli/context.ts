// What every command handler gets from the outside world: where chasqui lives, the streams, the clock.
import os from "node:os";
import path from "node:path";

export interface CliContext {
  home: string;
  env: NodeJS.ProcessEnv;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** stdout is a terminal: tables and progress bars instead of plain lines. */
  outIsTTY: boolean;
  /** A person can answer prompts (stdin is a terminal). */
  interactive: boolean;
  now: () => Date;
}

export function chasquiHome(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.CHASQUI_HOME;
  if (fromEnv && fromEnv !== "") return path.resolve(fromEnv);
  return path.join(env.HOME ?? os.homedir(), ".chasqui");
}

export function processContext(): CliContext {
  return {
    home: chasquiHome(process.env),
    env: process.env,
    out: process.stdout,
    err: process.stderr,
    outIsTTY: Boolean(process.stdout.isTTY),
    interactive: Boolean(process.stdin.isTTY) && process.env.CI !== "true",
    now: () => new Date(),
  };
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
}
