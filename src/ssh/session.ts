// One SSH session to the cluster (through ProxyJump hops): login once, then bounded, cancellable execs.
import { type Socket, connect as tcpConnect } from "node:net";
import { PassThrough, type Readable } from "node:stream";
import type { ClientChannel, Client as ClientType } from "ssh2";
import ssh2 from "ssh2";
import { type ChasquiError, RemoteError, systemProblem } from "../errors.ts";
import { AuthFlow, type AuthRecord } from "./auth.ts";
import { verifyHostKey } from "./hostKey.ts";
import { preferredHostKeyAlgorithms, readKnownHostsFiles } from "./knownHosts.ts";
import type { Prompter } from "./prompter.ts";
import type { ResolvedHop, ResolvedTarget } from "./resolve.ts";

const { Client } = ssh2;

export type SessionEvent =
  | { type: "connecting"; host: string; port: number; via: string | null }
  | { type: "connected"; host: string; port: number; localPort: number | null }
  | { type: "hostkey-added"; host: string; port: number; fingerprint: string; file: string }
  | { type: "banner"; host: string; text: string }
  | { type: "authenticated"; host: string; methods: AuthRecord[] }
  | { type: "bytes"; sent: number; total: number | null }
  | { type: "closed"; error: string | null };

export interface SessionOptions {
  target: ResolvedTarget;
  otpCommand: string | null;
  prompter: Prompter;
  acceptNewHostKey: boolean;
  events?: (event: SessionEvent) => void;
  /** Cancels opening the session. */
  signal?: AbortSignal;
  /** TCP connect bound. */
  connectTimeoutMs?: number;
  /** Bound on each network phase of a login (handshake, each auth round trip); not while a person types. */
  handshakeTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Default: $SSH_AUTH_SOCK. */
  agentSocket?: string | undefined;
}

type StdinSource = Buffer | AsyncIterable<Buffer | Uint8Array | string> | NodeJS.ReadableStream;

export interface ExecOptions {
  stdin?: StdinSource;
  /** Size of stdin, for progress events (known for a Buffer). */
  stdinSize?: number;
  /** Whole-call bound; default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Receive stdout as it arrives; the result's stdout is then empty. */
  onStdout?: (chunk: Buffer) => void;
}

export interface ExecResult {
  /** Exit status; null when the command died from a signal or none was sent. */
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ExecStream {
  stdout: Readable;
  /** Settles when the command ends; its stdout is empty (it went to the stream). */
  done: Promise<ExecResult>;
}

export interface SessionStats {
  /** Channels opened on the target (one per exec). */
  channels: number;
  execRequests: number;
  /** Payload bytes written to / read from exec channels. */
  bytesSent: number;
  bytesReceived: number;
}

/** What the cluster code needs of a connection: commands with their stdin, and counters. Our own
 * ssh2 session is one; an OpenSSH master connection (openssh.ts) is the other. */
export interface RemoteShell {
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  execStream(command: string, opts?: ExecOptions): ExecStream;
  stats(): SessionStats;
  close(): Promise<void>;
}

export interface Session extends RemoteShell {
  readonly target: ResolvedTarget;
  /** Methods that the target accepted, in order (doctor reports them). */
  readonly authMethods: readonly AuthRecord[];
  /** Every hop and the target, with the methods each accepted. */
  readonly route: readonly { host: string; port: number; authMethods: readonly AuthRecord[] }[];
}

const DEFAULT_EXEC_TIMEOUT_MS = 600_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const CHUNK = 64 * 1024;

/** exec, and a RemoteError carrying stderr when the exit code is not 0. */
export async function execChecked(
  session: Session,
  command: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const r = await session.exec(command, opts);
  if (r.code !== 0) {
    const stderr = r.stderr.toString("utf8").trim();
    const how = r.code === null ? `died${r.signal ? ` from ${r.signal}` : ""}` : `exited with ${r.code}`;
    throw new RemoteError(`remote command ${how}${stderr ? `: ${stderr.slice(0, 2000)}` : ""}`, {
      hint: `command: ${command.length > 200 ? `${command.slice(0, 200)}…` : command}`,
    });
  }
  return r;
}

function destination(hop: ResolvedHop): string {
  return `${hop.user}@${hop.hostname}:${hop.port}`;
}

function abortError(signal: AbortSignal, what: string): RemoteError {
  return new RemoteError(`${what}: cancelled`, { cause: signal.reason });
}

/** A restartable one-shot timer for the network phases; paused while a person answers. */
class PhaseTimer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private phase = "";
  constructor(
    private readonly ms: number,
    private readonly onExpire: (phase: string) => void,
  ) {}
  arm(phase = this.phase): void {
    this.phase = phase;
    this.disarm();
    this.timer = setTimeout(() => this.onExpire(this.phase), Math.min(this.ms, MAX_TIMER_MS));
  }
  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<NodeJS.ReadWriteStream> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host, port });
    const finish = (err: ChasquiError | null) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      sock.removeListener("error", onError);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    const onAbort = () => finish(abortError(signal!, `connecting to ${host}:${port}`));
    const onError = (e: Error) => {
      const said = systemProblem(e);
      finish(
        new RemoteError(`cannot connect to ${host}:${port}: ${said?.what ?? e.message}`, {
          cause: e,
          ...(said ? { hint: said.hint } : {}),
        }),
      );
    };
    const timer = setTimeout(
      () =>
        finish(
          new RemoteError(
            `cannot connect to ${host}:${port}: no answer within ${Math.round(timeoutMs / 1000)} s`,
          ),
        ),
      timeoutMs,
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    sock.once("error", onError);
    sock.once("connect", () => {
      // Without it every small request waits for the peer's delayed ACK (~40 ms).
      sock.setNoDelay(true);
      finish(null);
    });
  });
}

interface HopContext {
  opts: SessionOptions;
  agentSocket: string | undefined;
  emit: (e: SessionEvent) => void;
}

/** Handshake, host key check and login on one hop over an already connected stream. */
async function loginHop(
  hop: ResolvedHop,
  sock: NodeJS.ReadWriteStream,
  ctx: HopContext,
): Promise<{ client: ClientType; auth: AuthFlow }> {
  const { opts } = ctx;
  const dest = destination(hop);
  const known = await readKnownHostsFiles(hop.knownHostsFiles);
  const lookupName = hop.hostKeyAlias ?? hop.hostname;
  const lookupPort = hop.hostKeyAlias ? 22 : hop.port;
  const preferred = preferredHostKeyAlgorithms(known.entries, lookupName, lookupPort);
  const client = new Client();

  return new Promise((resolve, reject) => {
    let settled = false;
    let failure: ChasquiError | null = null;
    const abandoned = new AbortController();
    const fail = (err: ChasquiError) => {
      failure ??= err;
      abandoned.abort(err);
      client.destroy();
      settle();
    };
    const timer = new PhaseTimer(opts.handshakeTimeoutMs ?? 20_000, (phase) =>
      fail(new RemoteError(`${dest}: no answer from the server during ${phase}`)),
    );
    const auth = new AuthFlow({
      username: hop.user,
      destination: dest,
      identityFiles: hop.identityFiles,
      agentSocket: ctx.agentSocket,
      prompter: opts.prompter,
      otpCommand: opts.otpCommand,
      onPersonStart: () => timer.disarm(),
      onPersonEnd: () => timer.arm(),
      signal: abandoned.signal,
    });
    auth.onAbort = fail;
    const onAbort = () => fail(abortError(opts.signal!, `logging in to ${dest}`));
    const settle = (ok = false) => {
      if (settled) return;
      settled = true;
      timer.disarm();
      opts.signal?.removeEventListener("abort", onAbort);
      if (ok) return resolve({ client, auth });
      abandoned.abort(failure);
      client.destroy();
      reject(failure ?? new RemoteError(`${dest}: the connection closed during login`));
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    client.on("handshake", () => timer.arm("authentication"));
    client.on("banner", (text: string) => ctx.emit({ type: "banner", host: hop.hostname, text }));
    client.on("ready", () => {
      auth.markSuccess();
      ctx.emit({ type: "authenticated", host: hop.hostname, methods: [...auth.succeeded] });
      settle(true);
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (settled) return;
      if (err.level === "client-authentication") failure ??= auth.finalError();
      else failure ??= auth.failure ?? new RemoteError(`${dest}: ${err.message}`, { cause: err });
      settle();
    });
    client.on("close", () => settle());

    timer.arm("the key exchange");
    try {
      client.connect({
        sock: sock as unknown as import("node:stream").Duplex,
        username: hop.user,
        // ssh2's own timer would also run while a person types a code: our PhaseTimer bounds the network.
        readyTimeout: 0,
        keepaliveInterval: opts.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: opts.keepaliveCountMax ?? 3,
        ...(preferred.length
          ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as never } }
          : {}),
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          timer.disarm();
          verifyHostKey({
            hop,
            entries: known.entries,
            key,
            prompter: opts.prompter,
            acceptNewHostKey: opts.acceptNewHostKey,
          }).then(
            (added) => {
              if (added) ctx.emit({ type: "hostkey-added", ...added });
              timer.arm("the key exchange");
              verify(true);
            },
            (err: ChasquiError) => {
              failure ??= err;
              verify(false);
            },
          );
        },
        authHandler: auth.handler as never,
      });
    } catch (e) {
      fail(new RemoteError(`${dest}: ${(e as Error).message}`, { cause: e }));
    }
  });
}

function forwardTo(
  client: ClientType,
  from: ResolvedHop,
  to: ResolvedHop,
  timeoutMs: number,
): Promise<NodeJS.ReadWriteStream> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new RemoteError(`${from.hostname} did not open a tunnel to ${to.hostname}:${to.port} in time`));
    }, timeoutMs);
    try {
      client.forwardOut("127.0.0.1", 0, to.hostname, to.port, (err, stream) => {
        clearTimeout(timer);
        if (err)
          reject(
            new RemoteError(
              `jump host ${from.hostname} cannot reach ${to.hostname}:${to.port}: ${err.message}`,
            ),
          );
        else resolve(stream);
      });
    } catch (e) {
      clearTimeout(timer);
      reject(new RemoteError(`jump host ${from.hostname}: ${(e as Error).message}`));
    }
  });
}

/** Connect (through every ProxyJump hop), check host keys, authenticate once. */
export async function openSession(opts: SessionOptions): Promise<Session> {
  const emit = (e: SessionEvent) => opts.events?.(e);
  const ctx: HopContext = {
    opts,
    emit,
    agentSocket: "agentSocket" in opts ? opts.agentSocket : process.env.SSH_AUTH_SOCK,
  };
  const hops: ResolvedHop[] = [...opts.target.proxyJump, opts.target];
  const clients: ClientType[] = [];
  const route: { host: string; port: number; authMethods: AuthRecord[] }[] = [];
  try {
    const first = hops[0]!;
    emit({ type: "connecting", host: first.hostname, port: first.port, via: null });
    let sock = await connectTcp(first.hostname, first.port, opts.connectTimeoutMs ?? 20_000, opts.signal);
    emit({
      type: "connected",
      host: first.hostname,
      port: first.port,
      localPort: (sock as Socket).localPort ?? null,
    });
    let auth: AuthFlow | null = null;
    for (let i = 0; i < hops.length; i++) {
      const hop = hops[i]!;
      const logged = await loginHop(hop, sock, ctx);
      clients.push(logged.client);
      auth = logged.auth;
      route.push({ host: hop.hostname, port: hop.port, authMethods: [...logged.auth.succeeded] });
      const next = hops[i + 1];
      if (next) {
        emit({ type: "connecting", host: next.hostname, port: next.port, via: hop.hostname });
        sock = await forwardTo(logged.client, hop, next, opts.connectTimeoutMs ?? 20_000);
      }
    }
    return new SshSession(opts.target, clients, [...auth!.succeeded], route, emit);
  } catch (e) {
    for (const c of clients.reverse()) c.destroy();
    throw e;
  }
}

interface Pending {
  fail: (err: ChasquiError) => void;
}

class SshSession implements Session {
  private readonly client: ClientType;
  private readonly pending = new Set<Pending>();
  private dead: ChasquiError | null = null;
  private readonly counters: SessionStats = { channels: 0, execRequests: 0, bytesSent: 0, bytesReceived: 0 };
  private closing: Promise<void> | null = null;
  private readonly closedClients = new Set<ClientType>();

  constructor(
    readonly target: ResolvedTarget,
    private readonly clients: ClientType[],
    readonly authMethods: readonly AuthRecord[],
    readonly route: readonly { host: string; port: number; authMethods: readonly AuthRecord[] }[],
    private readonly emit: (e: SessionEvent) => void,
  ) {
    this.client = clients[clients.length - 1]!;
    const dest = destination(target);
    let lastError: Error | null = null;
    for (const c of clients) {
      c.on("error", (err: Error) => {
        lastError = err;
      });
      c.on("close", () => {
        this.closedClients.add(c);
        const why =
          lastError?.message === "Keepalive timeout"
            ? "no answer to keepalives"
            : (lastError?.message ?? "closed");
        this.markDead(new RemoteError(`connection to ${dest} lost (${why})`, { cause: lastError }));
      });
    }
  }

  private markDead(err: ChasquiError, lost = true): void {
    if (this.dead) return;
    this.dead = err;
    this.emit({ type: "closed", error: lost ? err.message : null });
    for (const p of [...this.pending]) p.fail(err);
    if (lost) for (const c of this.clients) c.destroy();
  }

  stats(): SessionStats {
    return { ...this.counters };
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(command, opts, null);
  }

  execStream(command: string, opts: ExecOptions = {}): ExecStream {
    const stdout = new PassThrough();
    const done = this.run(command, opts, stdout);
    done.then(
      () => stdout.end(),
      (err: Error) => stdout.destroy(err),
    );
    return { stdout, done };
  }

  private run(command: string, opts: ExecOptions, stream: PassThrough | null): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      const { signal } = opts;
      if (signal?.aborted) return reject(abortError(signal, "remote command"));
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let channel: ClientChannel | null = null;
      let exit: { code: number | null; signal: string | null } | null = null;
      let finished = false;
      const entry: Pending = { fail: (e) => finish(e) };
      const finish = (e: ChasquiError | null) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(entry);
        if (e) {
          try {
            channel?.close();
          } catch {}
          return reject(e);
        }
        resolve({
          code: exit?.code ?? null,
          signal: exit?.signal ?? null,
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err),
        });
      };
      const onAbort = () => finish(abortError(signal!, "remote command"));
      const timeoutMs = Math.min(opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, MAX_TIMER_MS);
      const timer = setTimeout(
        () =>
          finish(new RemoteError(`remote command did not finish within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.add(entry);

      this.counters.channels++;
      this.counters.execRequests++;
      try {
        this.client.exec(command, (e, ch) => {
          if (finished) {
            ch?.close();
            return;
          }
          if (e)
            return finish(this.dead ?? new RemoteError(`the server refused to run a command: ${e.message}`));
          channel = ch;
          ch.on("data", (b: Buffer) => {
            this.counters.bytesReceived += b.length;
            if (stream) {
              // Backpressure: stop reading the channel (and so the SSH window) while the consumer is behind.
              if (!stream.write(b)) {
                ch.pause();
                stream.once("drain", () => ch.resume());
              }
            } else if (opts.onStdout) opts.onStdout(b);
            else out.push(b);
          });
          ch.stderr.on("data", (b: Buffer) => {
            this.counters.bytesReceived += b.length;
            err.push(b);
          });
          ch.on("exit", (code: number | null, sig?: string) => {
            exit = { code: typeof code === "number" ? code : null, signal: sig ?? null };
          });
          ch.on("close", () => {
            if (this.dead && exit === null) finish(this.dead);
            else finish(null);
          });
          ch.resume();
          this.writeStdin(ch, opts).catch((we: Error) =>
            finish(this.dead ?? new RemoteError(`sending input to the remote command failed: ${we.message}`)),
          );
        });
      } catch (e) {
        finish(this.dead ?? new RemoteError(`cannot run a remote command: ${(e as Error).message}`));
      }
    });
  }

  private async writeStdin(ch: ClientChannel, opts: ExecOptions): Promise<void> {
    const src = opts.stdin;
    if (src === undefined) {
      ch.end();
      return;
    }
    const total = Buffer.isBuffer(src) ? src.length : (opts.stdinSize ?? null);
    let sent = 0;
    const write = async (chunk: Buffer) => {
      if (chunk.length === 0) return;
      const ok = ch.write(chunk);
      sent += chunk.length;
      this.counters.bytesSent += chunk.length;
      this.emit({ type: "bytes", sent, total });
      if (!ok) await waitDrain(ch);
    };
    if (Buffer.isBuffer(src)) {
      for (let off = 0; off < src.length; off += CHUNK) await write(src.subarray(off, off + CHUNK));
    } else {
      for await (const chunk of src as AsyncIterable<Buffer | Uint8Array | string>) {
        await write(
          typeof chunk === "string"
            ? Buffer.from(chunk)
            : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        );
      }
    }
    ch.end();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.markDead(new RemoteError("the session was closed"), false);
      for (const c of [...this.clients].reverse()) {
        if (this.closedClients.has(c)) continue;
        await new Promise<void>((done) => {
          const t = setTimeout(() => {
            c.destroy();
            done();
          }, 2_000);
          c.once("close", () => {
            clearTimeout(t);
            done();
          });
          try {
            c.end();
          } catch {
            c.destroy();
          }
        });
      }
    })();
    return this.closing;
  }
}

function waitDrain(ch: ClientChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error("channel closed"));
    };
    const cleanup = () => {
      ch.removeListener("drain", onDrain);
      ch.removeListener("close", onClose);
    };
    ch.once("drain", onDrain);
    ch.once("close", onClose);
  });
}
