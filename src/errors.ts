// The one error taxonomy: every failure a user can see carries an exit code and a hint.
// Only src/main.ts turns these into process.exitCode.

export const ExitCode = {
  ok: 0,
  failure: 1,
  badInput: 2,
  needsPerson: 3,
  locked: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class ChasquiError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.hint = opts.hint;
  }
}

/** Bad usage or bad input (a folder, a value, a file the user gave us): exit 2, nothing changed. */
export class InputError extends ChasquiError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.badInput, ...(hint === undefined ? {} : { hint }) });
  }
}

/** The server wants a person (2FA code, passphrase, unknown host key) and there is no terminal. */
export class NeedsPersonError extends ChasquiError {
  constructor(message: string, hint?: string) {
    super(message, {
      exitCode: ExitCode.needsPerson,
      hint: hint ?? "Run this command by hand in a terminal, or set otp_command in the config.",
    });
  }
}

/** Another chasqui process holds the store lock. */
export class LockBusyError extends ChasquiError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.locked, ...(hint === undefined ? {} : { hint }) });
  }
}

/** Store file that we must not touch: corrupt, or written by a newer chasqui. */
export class StoreError extends ChasquiError {}

/** SSH, authentication, host key or remote command failure. */
export class RemoteError extends ChasquiError {}

export function isChasquiError(e: unknown): e is ChasquiError {
  return e instanceof ChasquiError;
}
