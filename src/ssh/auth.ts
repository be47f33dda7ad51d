// Authentication as one ordered pass: agent keys, identity files, keyboard-interactive; nothing twice.
import { spawn } from "node:child_process";
import { readFile as fsReadFile } from "node:fs/promises";
import type {
  AnyAuthMethod,
  AuthenticationType,
  BaseAgent as BaseAgentType,
  ParsedKey,
  SignCallback,
} from "ssh2";
import ssh2 from "ssh2";
import { type ChasquiError, NeedsPersonError, RemoteError } from "../errors.ts";
import { sha256Fingerprint } from "./knownHosts.ts";
import type { Prompter } from "./prompter.ts";

const { BaseAgent, createAgent, utils } = ssh2;

type AuthMethodName = "agent" | "publickey" | "keyboard-interactive";

/** One attempt: the method and what it used (key file, agent key fingerprint, "otp_command", "terminal"). */
export interface AuthRecord {
  method: AuthMethodName;
  via: string;
}

export interface AuthOptions {
  username: string;
  /** For messages: `user@host:port`. */
  destination: string;
  identityFiles: readonly string[];
  /** SSH_AUTH_SOCK, when set. */
  agentSocket: string | undefined;
  prompter: Prompter;
  /** Answers keyboard-interactive prompts instead of a person; never logged. */
  otpCommand: string | null;
  /** Called around every wait for a person (or the otp_command), so network timers can pause. */
  onPersonStart?: () => void;
  onPersonEnd?: () => void;
  /** Releases a question still waiting for a person when the login is abandoned. */
  signal?: AbortSignal;
  readFile?: (path: string) => Promise<Buffer>;
  runOtp?: (command: string) => Promise<string>;
  /** The agent's keys; default: ask the agent at agentSocket. */
  listAgentKeys?: () => Promise<ParsedKey[]>;
}

/** ssh2's authHandler signature (its typings say the lists are never null; the first call passes null). */
export type AuthHandler = (
  methodsLeft: AuthenticationType[] | null,
  partialSuccess: boolean | null,
  next: (method: AnyAuthMethod | false) => void,
) => void;

type Candidate =
  | { kind: "agent"; key: ParsedKey; label: string }
  | { kind: "identity"; path: string }
  | { kind: "keyboard-interactive" };

interface Attempt {
  record: AuthRecord | null;
  /** The server accepted the key and we signed: a failure reply then means partial success. */
  signed: boolean;
}

const OTP_TIMEOUT_MS = 60_000;

/**
 * Drives ssh2's authHandler. Keeps what was tried and what succeeded; `failure` holds the error to
 * report when the server turns us away (or when we stop because nobody can answer).
 */
export class AuthFlow {
  readonly tried: AuthRecord[] = [];
  readonly succeeded: AuthRecord[] = [];
  failure: ChasquiError | null = null;
  /** Set by the session: tears the connection down without sending anything more. */
  onAbort: (err: ChasquiError) => void = () => {};

  private candidates: Candidate[] | null = null;
  private current: Attempt | null = null;
  private serverMethods: string[] = [];
  private skippedEncrypted: string[] = [];
  private readonly opts: AuthOptions;

  constructor(opts: AuthOptions) {
    this.opts = opts;
  }

  readonly handler: AuthHandler = (methodsLeft, partialSuccess, next) => {
    this.step(methodsLeft, partialSuccess === true).then(next, (err: ChasquiError) => {
      this.failure ??= err;
      next(false);
    });
  };

  /** USERAUTH_SUCCESS: the attempt in flight was the last one needed. */
  markSuccess(): void {
    if (this.current?.record && !this.succeeded.includes(this.current.record)) {
      this.succeeded.push(this.current.record);
    }
    this.current = null;
  }

  /** The error for "authentication failed", once ssh2 has given up. */
  finalError(): ChasquiError {
    if (this.failure) return this.failure;
    const refused = this.tried.filter((r) => !this.succeeded.includes(r));
    const parts = [`authentication to ${this.opts.destination} failed.`];
    parts.push(
      refused.length ? `Refused: ${refused.map(describe).join(", ")}.` : "No usable key or method to offer.",
    );
    if (this.succeeded.length)
      parts.push(`Accepted before that: ${this.succeeded.map(describe).join(", ")}.`);
    parts.push(`The server asks for: ${this.serverMethods.join(", ") || "unknown"}. Not retried.`);
    return new RemoteError(parts.join(" "), {
      hint: "Check the user, the identity file and the code; a new attempt is up to you.",
    });
  }

  private async step(
    methodsLeft: AuthenticationType[] | null,
    partial: boolean,
  ): Promise<AnyAuthMethod | false> {
    const { username } = this.opts;
    if (this.failure) return false;
    const last = this.current;
    this.current = null;
    if (methodsLeft === null) {
      // Like OpenSSH: ask with "none" first, to learn which methods the server wants.
      this.current = { record: null, signed: false };
      return { type: "none", username };
    }
    if (last?.record && (partial || last.signed)) this.succeeded.push(last.record);
    this.serverMethods = [...methodsLeft];
    // After an agent key, ssh2 calls back with the method list from before it; when that key may have
    // been accepted, ask again with "none" to get the list as it is now.
    if (last?.signed && methodsLeft.includes("publickey")) {
      this.current = { record: null, signed: false };
      return { type: "none", username };
    }
    this.candidates ??= await this.listCandidates();
    while (this.candidates.length > 0) {
      const c = this.candidates.shift()!;
      if (c.kind === "agent" || c.kind === "identity") {
        if (!methodsLeft.includes("publickey")) continue;
        const method = await this.keyMethod(c);
        if (method) return method;
        continue;
      }
      if (!methodsLeft.includes("keyboard-interactive")) continue;
      return this.keyboardInteractive();
    }
    if (this.skippedEncrypted.length > 0 && methodsLeft.includes("publickey")) {
      throw new NeedsPersonError(
        `${this.skippedEncrypted.join(", ")} is encrypted and there is no terminal to ask for its passphrase`,
        "Load the key into ssh-agent (ssh-add), or run this command in a terminal.",
      );
    }
    return false;
  }

  private async listCandidates(): Promise<Candidate[]> {
    const out: Candidate[] = [];
    const agentKeys = this.opts.listAgentKeys ?? (() => listAgentKeys(this.opts.agentSocket));
    for (const key of await agentKeys().catch(() => [])) {
      out.push({ kind: "agent", key, label: `agent key ${sha256Fingerprint(key.getPublicSSH())}` });
    }
    for (const path of this.opts.identityFiles) out.push({ kind: "identity", path });
    out.push({ kind: "keyboard-interactive" });
    return out;
  }

  private async keyMethod(c: Candidate & { kind: "agent" | "identity" }): Promise<AnyAuthMethod | null> {
    const { username, agentSocket } = this.opts;
    const attempt: Attempt = { record: null, signed: false };
    if (c.kind === "agent") {
      if (!agentSocket) return null;
      attempt.record = { method: "agent", via: c.label };
      this.begin(attempt);
      return {
        type: "agent",
        username,
        agent: new OneKeyAgent(agentSocket, c.key, () => (attempt.signed = true)),
      };
    }
    const key = await this.loadIdentity(c.path);
    if (key === null) return null;
    const sign = key.sign.bind(key);
    key.sign = (data, algo) => {
      attempt.signed = true;
      return sign(data, algo);
    };
    attempt.record = { method: "publickey", via: c.path };
    this.begin(attempt);
    return { type: "publickey", username, key };
  }

  private begin(attempt: Attempt): void {
    this.current = attempt;
    if (attempt.record) this.tried.push(attempt.record);
  }

  /** A usable private key from the file, asking for its passphrase when needed; null to skip it. */
  private async loadIdentity(path: string): Promise<ParsedKey | null> {
    let data: Buffer;
    try {
      data = await (this.opts.readFile ?? fsReadFile)(path);
    } catch {
      return null; // ssh -G lists default files that need not exist
    }
    const plain = parsePrivateKey(data, undefined);
    if (plain.key) return plain.key;
    if (!plain.encrypted) return null;
    const { prompter } = this.opts;
    if (!prompter.interactive) {
      this.skippedEncrypted.push(path);
      return null;
    }
    for (let i = 0; i < 3; i++) {
      const pass = await this.asPerson(() =>
        prompter.ask(`Enter passphrase for key '${path}': `, this.askOpts(false)),
      );
      if (pass === "") return null; // as OpenSSH: an empty answer skips the key
      const parsed = parsePrivateKey(data, pass);
      if (parsed.key) return parsed.key;
      prompter.info("Bad passphrase, try again.");
    }
    return null;
  }

  private keyboardInteractive(): AnyAuthMethod | false {
    const { username, prompter, otpCommand, destination } = this.opts;
    if (otpCommand === null && !prompter.interactive) {
      throw new NeedsPersonError(
        `${destination} asks for keyboard-interactive authentication (a one-time code) and there is no terminal`,
      );
    }
    const attempt: Attempt = {
      record: { method: "keyboard-interactive", via: otpCommand ? "otp_command" : "terminal" },
      signed: false,
    };
    this.begin(attempt);
    const answeredByCommand = new Set<string>();
    return {
      type: "keyboard-interactive",
      username,
      prompt: (name, instructions, _lang, prompts, finish) => {
        const answer = async (): Promise<string[]> => {
          if (otpCommand !== null) {
            // A code the server did not take must not be sent again: a repeated question ends it here.
            const round = JSON.stringify(prompts.map((p) => p.prompt));
            if (answeredByCommand.has(round)) {
              throw new RemoteError(
                `${destination} asked again for "${prompts[0]?.prompt ?? ""}" after the code was sent; not retrying`,
              );
            }
            answeredByCommand.add(round);
            const run = this.opts.runOtp ?? runOtpCommand;
            const answers: string[] = [];
            for (let i = 0; i < prompts.length; i++) answers.push(await this.asPerson(() => run(otpCommand)));
            return answers;
          }
          const header = [name, instructions].filter((s) => s && s.trim() !== "").join("\n");
          if (header) prompter.info(header);
          const answers: string[] = [];
          for (const p of prompts)
            answers.push(await this.asPerson(() => prompter.ask(p.prompt, this.askOpts(p.echo === true))));
          return answers;
        };
        answer().then(finish, (err: unknown) => {
          const e = asChasquiError(err);
          this.failure ??= e;
          this.onAbort(e);
        });
      },
    };
  }

  private askOpts(echo: boolean): { echo: boolean; signal?: AbortSignal } {
    return this.opts.signal ? { echo, signal: this.opts.signal } : { echo };
  }

  private async asPerson<T>(fn: () => Promise<T>): Promise<T> {
    this.opts.onPersonStart?.();
    try {
      return await fn();
    } finally {
      this.opts.onPersonEnd?.();
    }
  }
}

function describe(r: AuthRecord): string {
  return r.method === "agent" ? r.via : `${r.method} (${r.via})`;
}

function asChasquiError(err: unknown): ChasquiError {
  if (err instanceof Error && "exitCode" in err) return err as ChasquiError;
  return new RemoteError(`authentication stopped: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

export function parsePrivateKey(
  data: Buffer,
  passphrase: string | undefined,
): { key: ParsedKey | null; encrypted: boolean } {
  const parsed = utils.parseKey(data, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) {
    const msg = key instanceof Error ? key.message : "";
    return { key: null, encrypted: /encrypted|passphrase|decrypt/i.test(msg) };
  }
  return key.isPrivateKey() ? { key, encrypted: false } : { key: null, encrypted: false };
}

/** The keys an ssh-agent holds; [] when there is none. */
function listAgentKeys(socket: string | undefined): Promise<ParsedKey[]> {
  if (!socket) return Promise.resolve([]);
  return new Promise((done) => {
    const timer = setTimeout(() => done([]), 5_000);
    createAgent(socket).getIdentities((err, keys) => {
      clearTimeout(timer);
      done(err || !keys ? [] : (keys as ParsedKey[]));
    });
  });
}

/** One agent key per attempt, so that each counts once and we see whether the server took it. */
class OneKeyAgent extends BaseAgent<ParsedKey> {
  private readonly real: BaseAgentType;
  private readonly key: ParsedKey;
  private readonly onSign: () => void;
  constructor(socket: string, key: ParsedKey, onSign: () => void) {
    super();
    this.real = createAgent(socket);
    this.key = key;
    this.onSign = onSign;
  }
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, [this.key]);
  }
  sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb?: SignCallback): void {
    this.onSign();
    const callback = (typeof options === "function" ? options : cb) as SignCallback;
    const opts = typeof options === "object" && options !== null ? options : {};
    this.real.sign(pubKey, data, opts, callback);
  }
}

/** Run otp_command with `sh -c`; its trimmed stdout is the answer. Output never goes into errors. */
export function runOtpCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), OTP_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new RemoteError(`otp_command could not start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const answer = Buffer.concat(out).toString("utf8").trim();
      if (code === 0 && answer !== "") return resolve(answer);
      const why = signal ? `killed by ${signal}` : code === 0 ? "printed nothing" : `exit ${code}`;
      const stderr = Buffer.concat(err).toString("utf8").trim().slice(0, 300);
      reject(new RemoteError(`otp_command failed (${why})${stderr ? `: ${stderr}` : ""}`));
    });
  });
}
