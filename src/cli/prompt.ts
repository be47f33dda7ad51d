// The terminal prompter: questions on the terminal, hidden input in raw mode, Ctrl-C as a clean error.
import { openSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { WriteStream } from "node:tty";
import { ChasquiError } from "../errors.ts";
import type { Prompter } from "../ssh/prompter.ts";
import { personAtTerminal } from "./context.ts";

class PromptCancelled extends ChasquiError {
  constructor(what: string) {
    super(`${what} at the prompt`, { hint: "Nothing was sent to the server." });
  }
}

export interface TerminalPrompterOptions {
  input?: NodeJS.ReadStream;
  /** Where questions go; default stderr when it is a terminal, else /dev/tty, else stderr. */
  output?: NodeJS.WritableStream;
  env?: Record<string, string | undefined>;
}

function questionStream(): NodeJS.WritableStream {
  if (process.stderr.isTTY) return process.stderr;
  try {
    return new WriteStream(openSync("/dev/tty", "w"));
  } catch {
    return process.stderr;
  }
}

/** Asks only when a person is at the terminal (personAtTerminal). */
export function createTerminalPrompter(opts: TerminalPrompterOptions = {}): Prompter {
  const input = opts.input ?? process.stdin;
  const env = opts.env ?? process.env;
  const interactive = personAtTerminal(input, env);
  let output: NodeJS.WritableStream | null = opts.output ?? null;
  const out = () => {
    output ??= questionStream();
    return output;
  };
  // One question at a time: hops and retries never interleave on the terminal.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };
  const ask = (text: string, o: { echo: boolean; signal?: AbortSignal }) =>
    serial(() => {
      if (!interactive) return Promise.reject(new PromptCancelled("No terminal"));
      return readLine(input, out(), text, o.echo, o.signal);
    });
  return {
    interactive,
    ask,
    async confirm(text: string) {
      for (;;) {
        const a = (await ask(text, { echo: true })).trim().toLowerCase();
        if (a === "yes" || a === "y") return true;
        if (a === "no" || a === "n") return false;
        out().write("Please type 'yes' or 'no': \n");
      }
    },
    info(text: string) {
      if (interactive) out().write(text.endsWith("\n") ? text : `${text}\n`);
    },
  };
}

/** Read one line in raw mode: we echo (or not) ourselves, handle backspace, Ctrl-U, Ctrl-C, Ctrl-D. */
function readLine(
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
  text: string,
  echo: boolean,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder("utf8");
    let chars: string[] = [];
    let inEscape = 0; // inside an inEscape sequence (arrow keys...): 1 after ESC, 2 after ESC [
    const wasRaw = input.isRaw === true;
    const finish = (err: Error | null) => {
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      signal?.removeEventListener("abort", onAbort);
      if (input.setRawMode) input.setRawMode(wasRaw);
      input.pause();
      output.write("\n");
      if (err) reject(err);
      else resolve(chars.join(""));
    };
    const onAbort = () => finish(new PromptCancelled("Cancelled"));
    const onEnd = () => finish(new PromptCancelled("End of input"));
    const onData = (data: Buffer | string) => {
      const s = typeof data === "string" ? data : decoder.write(data);
      for (const ch of s) {
        if (inEscape === 1) {
          inEscape = ch === "[" || ch === "O" ? 2 : 0;
          continue;
        }
        if (inEscape === 2) {
          if (ch >= "@" && ch <= "~") inEscape = 0;
          continue;
        }
        switch (ch) {
          case "\u001b":
            inEscape = 1;
            break;
          case "\r":
          case "\n":
            return finish(null);
          case "\u0003":
            return finish(new PromptCancelled("Interrupted (Ctrl-C)"));
          case "\u0004":
            if (chars.length === 0) return finish(new PromptCancelled("End of input (Ctrl-D)"));
            break;
          case "\u007f":
          case "\b":
            if (chars.length > 0) {
              chars.pop();
              if (echo) output.write("\b \b");
            }
            break;
          case "\u0015":
            if (echo) output.write("\b \b".repeat(chars.length));
            chars = [];
            break;
          default:
            if (ch < " ") break; // other control characters (and inEscape sequences' ESC) are ignored
            chars.push(ch);
            if (echo) output.write(ch);
        }
      }
    };
    if (signal?.aborted) return reject(new PromptCancelled("Cancelled"));
    // Raw mode before the question: whoever answers as soon as it appears is not echoed.
    if (input.setRawMode) input.setRawMode(true);
    output.write(text);
    input.on("data", onData);
    input.once("end", onEnd);
    signal?.addEventListener("abort", onAbort, { once: true });
    input.resume();
  });
}
