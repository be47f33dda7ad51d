// Riding an OpenSSH master connection (ControlMaster): each request of a command is one
// `ssh -o ControlPath=P -o ControlMaster=no host bash -s` with the same script on stdin, through a
// connection a person opened earlier (`chasqui connect`): no login, no prompt, so a sync runs from
// cron on a cluster that asks for a second factor at every login. Host keys are OpenSSH's business
// on this path (the master checked them when it logged in).
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import type { Config } from "../core/config.ts";
import { RemoteError } from "../errors.ts";
import { defaultResolveDeps, parseSshG } from "./resolve.ts";
import type { ExecOptions, ExecResult, ExecStream, RemoteShell, SessionStats } from "./session.ts";

type TargetConfig = Pick<Config, "host" | "port" | "user" | "identity" | "known_hosts">;

/** The config's host as `ssh` arguments (the alias last, after `--`). */
function sshTargetArgs(config: TargetConfig): string[] {
  const args: string[] = [];
  if (config.port !== null) args.push("-p", String(config.port));
  if (config.user !== null) args.push("-l", config.user);
  if (config.identity !== null) args.push("-i", config.identity);
  if (config.known_hosts !== null) args.push("-o", `UserKnownHostsFile=${config.known_hosts}`);
  return [...args, "--", config.host];
}

export interface ControlPath {
  path: string;
  /** Where it came from: config.json's control_path, the user's ssh config, or chasqui's own. */
  source: "config" | "ssh_config" | "chasqui";
}

// sun_path holds 108 bytes with its NUL, and OpenSSH first binds "<path>.<16 random chars>".
const MAX_CONTROL_PATH = 90;

/** The socket a master for this host listens on: control_path, else ssh's ControlPath, else ours. */
export async function controlPathFor(config: Config, home: string): Promise<ControlPath> {
  if (config.control_path !== null) {
    return { path: expandHome(config.control_path), source: "config" };
  }
  const g = await defaultResolveDeps().run("ssh", ["-G", ...sshTargetArgs(config)]);
  const configured = g && g.code === 0 ? parseSshG(g.stdout).get("controlpath")?.[0] : undefined;
  if (configured && configured !== "none") return { path: configured, source: "ssh_config" };
  return { path: path.join(home, "ssh", "master"), source: "chasqui" };
}

function expandHome(p: string): string {
  const home = process.env.HOME ?? "";
  return p === "~" ? home : p.startsWith("~/") ? path.join(home, p.slice(2)) : p;
}

/** `ssh` with the master's socket: ControlMaster=no uses a live master and never becomes one. */
function muxArgs(cp: string): string[] {
  return ["-o", `ControlPath=${cp}`, "-o", "ControlMaster=no"];
}

/** `ssh -O check|exit` to the master on `cp`: local, nothing goes to the cluster. False when none listens. */
async function controlMaster(config: TargetConfig, cp: string, command: "check" | "exit"): Promise<boolean> {
  const r = await defaultResolveDeps().run("ssh", [
    "-o",
    `ControlPath=${cp}`,
    "-O",
    command,
    ...sshTargetArgs(config),
  ]);
  return r?.code === 0;
}

/** Is a master listening on `cp` for this host? */
export function masterIsLive(config: TargetConfig, cp: string): Promise<boolean> {
  return controlMaster(config, cp, "check");
}

/** Ask the master on `cp` to exit. False when none was listening. */
export function closeMaster(config: TargetConfig, cp: string): Promise<boolean> {
  return controlMaster(config, cp, "exit");
}

/**
 * Open a master on `cp` with this process's terminal: OpenSSH asks for the second factor itself
 * (its prompts go to /dev/tty, as the server sends them), then goes to the background. It closes
 * after `seconds` without use; `chasqui` closes it at its first command after the deadline.
 */
export async function openMaster(config: TargetConfig, cp: string, seconds: number): Promise<void> {
  if (cp.length > MAX_CONTROL_PATH) {
    throw new RemoteError(
      `the control socket path is too long for a socket (${cp.length} characters): ${cp}`,
      {
        hint: 'Set "control_path" in config.json to a short path, e.g. "~/.ssh/cm-%C".',
      },
    );
  }
  await fs.mkdir(path.dirname(cp), { recursive: true, mode: 0o700 });
  const args = [
    "-f",
    "-N",
    "-o",
    "ControlMaster=yes",
    "-o",
    `ControlPath=${cp}`,
    "-o",
    `ControlPersist=${seconds}`,
    // A master whose network went away (a laptop asleep) dies instead of hanging every sync.
    "-o",
    "ServerAliveInterval=60",
    "-o",
    "ServerAliveCountMax=3",
    ...sshTargetArgs(config),
  ];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn("ssh", args, { stdio: "inherit" });
    child.on("error", (e) =>
      reject(
        new RemoteError(`cannot run ssh: ${e.message}`, {
          hint: "Install the OpenSSH client (openssh-client).",
        }),
      ),
    );
    child.on("close", (c) => resolve(c));
  });
  if (code !== 0) {
    throw new RemoteError(`ssh could not open a master connection to ${config.host} (exit ${code})`, {
      hint: "Its own message is above; `chasqui doctor` checks the login.",
    });
  }
}

/** Commands through a live master: one `ssh` process per request, counted like exec channels. */
export function opensshShell(config: TargetConfig, cp: string): RemoteShell {
  const counters: SessionStats = { channels: 0, execRequests: 0, bytesSent: 0, bytesReceived: 0 };
  const running = new Set<ChildProcess>();

  const run = (command: string, opts: ExecOptions, stream: PassThrough | null): Promise<ExecResult> =>
    new Promise<ExecResult>((resolve, reject) => {
      counters.channels++;
      counters.execRequests++;
      const child = spawn("ssh", ["-o", "BatchMode=yes", ...muxArgs(cp), ...sshTargetArgs(config), command], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      running.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let failed: RemoteError | null = null;
      const fail = (e: RemoteError) => {
        failed ??= e;
        child.kill("SIGKILL");
      };
      const timeoutMs = opts.timeoutMs ?? 600_000;
      const timer = setTimeout(
        () => fail(new RemoteError(`remote command did not finish within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
      const onAbort = () => fail(new RemoteError("remote command: cancelled"));
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      child.stdout!.on("data", (b: Buffer) => {
        counters.bytesReceived += b.length;
        if (stream) {
          if (!stream.write(b)) {
            child.stdout!.pause();
            stream.once("drain", () => child.stdout!.resume());
          }
        } else if (opts.onStdout) opts.onStdout(b);
        else out.push(b);
      });
      child.stderr!.on("data", (b: Buffer) => {
        counters.bytesReceived += b.length;
        err.push(b);
      });
      child.on("error", (e) => fail(new RemoteError(`cannot run ssh: ${e.message}`)));
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        running.delete(child);
        if (failed) return reject(failed);
        const stderr = Buffer.concat(err);
        // 255 is ssh's own failure (the master went away, the socket is gone), not the command's.
        if (code === 255 && /Control socket|mux_client|master/i.test(stderr.toString())) {
          return reject(
            new RemoteError(`the OpenSSH master connection failed: ${stderr.toString().trim()}`, {
              hint: "`chasqui connect` opens a new one.",
            }),
          );
        }
        resolve({ code, signal: signal ?? null, stdout: Buffer.concat(out), stderr });
      });
      writeStdin(child, opts, counters).catch((e: Error) =>
        fail(new RemoteError(`sending input to the remote command failed: ${e.message}`)),
      );
    });

  return {
    exec: (command, opts = {}) => run(command, opts, null),
    execStream(command, opts = {}): ExecStream {
      const stdout = new PassThrough();
      const done = run(command, opts, stdout);
      done.then(
        () => stdout.end(),
        (e: Error) => stdout.destroy(e),
      );
      return { stdout, done };
    },
    stats: () => ({ ...counters }),
    close: async () => {
      for (const c of running) c.kill("SIGKILL");
    },
  };
}

async function writeStdin(child: ChildProcess, opts: ExecOptions, counters: SessionStats): Promise<void> {
  const stdin = child.stdin!;
  // A command that exits before reading all its input closes the pipe: not our failure.
  stdin.on("error", () => {});
  const src = opts.stdin;
  if (src === undefined) {
    stdin.end();
    return;
  }
  const write = async (chunk: Buffer) => {
    counters.bytesSent += chunk.length;
    if (!stdin.write(chunk))
      await new Promise<void>((r) => {
        stdin.once("drain", r);
        stdin.once("close", r);
      });
  };
  if (Buffer.isBuffer(src)) await write(src);
  else {
    for await (const chunk of src as AsyncIterable<Buffer | Uint8Array | string>) {
      await write(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk));
    }
  }
  stdin.end();
}
