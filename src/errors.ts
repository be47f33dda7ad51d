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
  /** The command already wrote its --json output (doctor's checks, a sync's summary). */
  outputWritten = false;
  /** Exit with the code and nothing on stderr (a cron sync that finds another at work). */
  silent = false;
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
      hint:
        hint ??
        "Run `chasqui connect` at a terminal (one login; later syncs, cron's too, ride it), run this command by hand, or set otp_command in the config.",
    });
  }
}

/** Another chasqui process holds the store lock. */
export class LockBusyError extends ChasquiError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.locked, ...(hint === undefined ? {} : { hint }) });
  }
}

/** A file of ours that we must not touch: corrupt, or written by a newer chasqui. Like bad input,
 * the user fixes it (or upgrades): exit 2 unless said otherwise. */
export class StoreError extends ChasquiError {
  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, { exitCode: ExitCode.badInput, ...opts });
  }
}

/** SSH, authentication, host key or remote command failure. */
export class RemoteError extends ChasquiError {}

export function isChasquiError(e: unknown): e is ChasquiError {
  return e instanceof ChasquiError;
}

// What a failed system call means, in words (never the errno code) and what to check: files and
// folders first, then the network (a connection to the cluster).
const SYSTEM_PROBLEMS: Record<string, { what: string; hint: string }> = {
  EACCES: {
    what: "permission denied",
    hint: "Check the owner and mode of the file and its folders (ls -ld).",
  },
  EPERM: { what: "not permitted", hint: "Check the owner and mode of the file and its folders (ls -ld)." },
  EROFS: { what: "the file system is read-only", hint: "Point CHASQUI_HOME at a writable folder." },
  ENOSPC: {
    what: "the disk is full",
    hint: "Free some space (df -h shows where), then run the command again.",
  },
  EDQUOT: { what: "your disk quota is used up", hint: "Free some space, then run the command again." },
  ENOTDIR: {
    what: "a file is where a folder should be",
    hint: "Move that file away (every part of the path must be a folder).",
  },
  EISDIR: { what: "a folder is where a file should be", hint: "Move that folder away." },
  ENOENT: { what: "it does not exist", hint: "Check the path." },
  ELOOP: { what: "too many symbolic links (a loop?)", hint: "Check the symbolic links on the path." },
  ENAMETOOLONG: { what: "the name is too long", hint: "Use a shorter path." },
  EMFILE: { what: "too many open files", hint: "Raise the limit (ulimit -n) or close other programs." },
  EIO: { what: "an input/output error (a failing disk or network file system?)", hint: "Check the disk." },
  ECONNREFUSED: {
    what: "connection refused (nothing answers on that port)",
    hint: "Check the host and port (config.json, or ~/.ssh/config for an alias).",
  },
  ENOTFOUND: {
    what: "no such host",
    hint: "Check the host name, or that ~/.ssh/config has the alias chasqui was given.",
  },
  EAI_AGAIN: { what: "the host name could not be looked up", hint: "Check your network and DNS." },
  ETIMEDOUT: { what: "no answer (timed out)", hint: "Check your network, VPN or the jump host." },
  EHOSTUNREACH: { what: "the host is unreachable", hint: "Check your network or VPN." },
  ENETUNREACH: { what: "the network is unreachable", hint: "Check your network or VPN." },
  ECONNRESET: { what: "the connection was reset", hint: "Try again; if it keeps happening, check the host." },
};

/** The errno code of a system error ("ENOENT"), or undefined. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A system error as a sentence ("permission denied", "no such host") and a hint; null if not one. */
export function systemProblem(e: unknown): { what: string; hint: string } | null {
  const code = errnoCode(e);
  return (code && SYSTEM_PROBLEMS[code]) || null;
}

// The same troubles said by a remote command (its strerror text): the words above, and what to do
// on the cluster instead of on this machine.
const REMOTE_PROBLEMS: { said: RegExp; code: string; hint: string }[] = [
  {
    said: /No space left on device/i,
    code: "ENOSPC",
    hint: "Free some space on the cluster (df -h; du -sh in chasqui's folder, and work_root's file system), then sync again.",
  },
  {
    said: /Disk quota exceeded/i,
    code: "EDQUOT",
    hint: "Free some space on the cluster (quota -s shows the limits), then sync again.",
  },
  {
    said: /Permission denied/i,
    code: "EACCES",
    hint: "Check the owner and mode of chasqui's folder on the cluster (ls -ld), or set remote_dir to a folder you can write.",
  },
  {
    said: /Read-only file system/i,
    code: "EROFS",
    hint: "Set remote_dir (or work_root) in config.json to a writable file system.",
  },
];

/** A remote command's stderr as a sentence and a hint when it is one of the troubles above. */
export function remoteSystemProblem(stderr: string): { what: string; hint: string } | null {
  const p = REMOTE_PROBLEMS.find((r) => r.said.test(stderr));
  return p ? { what: SYSTEM_PROBLEMS[p.code]!.what, hint: p.hint } : null;
}

/** Something chasqui could not read or write on this machine: the file named, the reason in words. */
export class FileError extends ChasquiError {
  constructor(action: string, file: string, cause: unknown) {
    const p = systemProblem(cause);
    const why = p?.what ?? (cause instanceof Error ? cause.message : String(cause));
    super(`cannot ${action} ${file}: ${why}`, { cause, ...(p ? { hint: p.hint } : {}) });
  }
}

const SYSCALL_VERBS: Record<string, string> = {
  open: "open",
  read: "read",
  write: "write",
  mkdir: "create the folder",
  rename: "rename",
  unlink: "remove",
  rmdir: "remove the folder",
  link: "link",
  copyfile: "copy",
  chmod: "change the mode of",
  scandir: "list the folder",
  stat: "look at",
  lstat: "look at",
  access: "reach",
  fsync: "write",
};

/** A file-system error that escaped its caller, as a FileError (or null when it is none). */
export function fromSystemError(e: unknown): ChasquiError | null {
  const { syscall, path } = e as { syscall?: unknown; path?: unknown };
  if (!systemProblem(e) || typeof path !== "string") return null;
  const verb = (typeof syscall === "string" && SYSCALL_VERBS[syscall]) || "use";
  return new FileError(verb, path, e);
}
