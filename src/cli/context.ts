// What every command handler gets from the outside world: where chasqui lives, the streams, the clock.
import os from "node:os";
import path from "node:path";
import type { LockHolder } from "../store/lock.ts";

export interface CliContext {
  home: string;
  env: NodeJS.ProcessEnv;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** stdout is a terminal: tables and progress bars instead of plain lines. */
  outIsTTY: boolean;
  /** The terminal's width in columns, when stdout is one. */
  columns?: number;
  /** Colours on stdout: a terminal, and NO_COLOR not set. */
  color?: boolean;
  now: () => Date;
}

/**
 * The one rule for "a person is at a terminal to answer": stdin is a terminal and this is not a
 * CI run. Prompts (2FA codes, passphrases, host keys) are asked only then; otherwise exit 3.
 */
export function personAtTerminal(
  input: { isTTY?: boolean },
  env: Record<string, string | undefined> = process.env,
): boolean {
  return input.isTTY === true && env.CI !== "true" && env.CI !== "1";
}

function chasquiHome(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.CHASQUI_HOME;
  if (fromEnv && fromEnv !== "") return path.resolve(fromEnv);
  return path.join(env.HOME ?? os.homedir(), ".chasqui");
}

/** Our reader went away (`chasqui list | head`, `less` quit): the normal end of the output. */
export class OutputClosed extends Error {
  constructor() {
    super("the reader of the output closed it");
    this.name = "OutputClosed";
  }
}

function isBrokenPipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === "EPIPE";
}

// A write into a closed pipe fails at once (Bun) or later as an 'error' event (Node): either way
// the command ends quietly with exit 0 instead of a crash report.
let guarded = false;
function guardBrokenPipes(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((...args: unknown[]) => {
      try {
        return original(...args);
      } catch (e) {
        if (isBrokenPipe(e)) throw new OutputClosed();
        throw e;
      }
    }) as typeof stream.write;
    stream.on("error", (e) => {
      if (isBrokenPipe(e)) process.exit(0);
      throw e;
    });
  }
}

export function processContext(): CliContext {
  guardBrokenPipes();
  return {
    home: chasquiHome(process.env),
    env: process.env,
    out: process.stdout,
    err: process.stderr,
    outIsTTY: Boolean(process.stdout.isTTY),
    ...(process.stdout.isTTY && process.stdout.columns ? { columns: process.stdout.columns } : {}),
    color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb",
    now: () => new Date(),
  };
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Store options for a command: its name for others who find the lock, and a word when it waits. */
export function storeOptions(ctx: CliContext, command: string) {
  return {
    command,
    onWait: (holder: LockHolder | null) =>
      write(
        ctx.err,
        holder
          ? `waiting for ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.started}) to finish with the job store...`
          : "waiting for another chasqui to finish with the job store...",
      ),
  };
}
