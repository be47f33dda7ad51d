// How the SSH layer asks a person: passphrases, keyboard-interactive prompts, unknown host keys.

export interface Prompter {
  /** False when nobody can answer (stdin is not a terminal, or CI): callers fail with exit 3 instead. */
  readonly interactive: boolean;
  /** Show `text` exactly and read one line; hidden when `echo` is false. */
  ask(text: string, opts: { echo: boolean; signal?: AbortSignal }): Promise<string>;
  confirm(text: string): Promise<boolean>;
  /** Show a message (banner, instructions) without waiting for an answer. */
  info(text: string): void;
}

/** A prompter for runs without a terminal: every question is refused. */
export const noPrompter: Prompter = {
  interactive: false,
  ask: () => Promise.reject(new Error("no terminal to ask")),
  confirm: () => Promise.reject(new Error("no terminal to ask")),
  info: () => {},
};
