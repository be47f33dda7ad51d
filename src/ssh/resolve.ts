// Where to connect: the config's host, port, user and identity resolved the way OpenSSH would (`ssh -G`).
import { execFile } from "node:child_process";
import { homedir, userInfo } from "node:os";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { InputError } from "../errors.ts";

export interface TargetConfig {
  host: string;
  port: number | null;
  user: string | null;
  identity: string | null;
  known_hosts: string | null;
}

export interface ResolvedHop {
  /** The name as written (config host or ProxyJump entry). */
  alias: string;
  hostname: string;
  port: number;
  user: string;
  /** Candidate private keys, in order; files that do not exist are skipped at login. */
  identityFiles: string[];
  /** Files to check host keys against; new keys are appended to the first. */
  knownHostsFiles: string[];
  /** HashKnownHosts: write new entries hashed. */
  hashKnownHosts: boolean;
  /** HostKeyAlias: the name to look up in known_hosts instead of hostname. */
  hostKeyAlias: string | null;
}

export interface ResolvedTarget extends ResolvedHop {
  /** Hops to pass through, the first one connected to directly. */
  proxyJump: ResolvedHop[];
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ResolveDeps {
  /** Run a program; null when it does not exist. */
  run(cmd: string, args: string[]): Promise<CommandResult | null>;
  env: Record<string, string | undefined>;
  home: string;
  /** Use this ssh_config file instead of the default ones (`ssh -F`). */
  sshConfigFile?: string;
}

export function defaultResolveDeps(overrides: Partial<ResolveDeps> = {}): ResolveDeps {
  return { run: runCommand, env: process.env, home: homedir(), ...overrides };
}

function runCommand(cmd: string, args: string[]): Promise<CommandResult | null> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") return done(null);
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `ssh -G` output: lowercase keywords, each with every value it was given (identityfile repeats). */
export function parseSshG(output: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of output.split("\n")) {
    const m = /^([a-z0-9]+) (.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const values = map.get(m[1]!) ?? [];
    values.push(m[2]!);
    map.set(m[1]!, values);
  }
  return map;
}

function expandTilde(path: string, home: string): string {
  if (path === "~") return home;
  if (path.startsWith("~/")) return `${home}/${path.slice(2)}`;
  return path;
}

export interface JumpSpec {
  user: string | null;
  host: string;
  port: number | null;
}

/** ProxyJump `[user@]host[:port],...` (also `ssh://` URIs and `[v6addr]:port`); "none" gives []. */
export function parseProxyJump(value: string): JumpSpec[] {
  if (value.trim() === "" || value.trim().toLowerCase() === "none") return [];
  return value.split(",").map((raw) => {
    let s = raw.trim().replace(/^ssh:\/\//, "");
    let user: string | null = null;
    const at = s.lastIndexOf("@");
    if (at >= 0) {
      user = s.slice(0, at);
      s = s.slice(at + 1);
    }
    let port: number | null = null;
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    const hp = /^([^:]+):(\d+)$/.exec(s);
    if (v6) {
      s = v6[1]!;
      if (v6[2]) port = Number(v6[2]);
    } else if (hp) {
      s = hp[1]!;
      port = Number(hp[2]);
    }
    if (s === "" || (port !== null && (port < 1 || port > 65535))) {
      throw new InputError(`ProxyJump entry ${JSON.stringify(raw)} is not [user@]host[:port]`);
    }
    return { user, host: s, port };
  });
}

const DEFAULT_IDENTITIES = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"];

async function localUser(deps: ResolveDeps): Promise<string> {
  const fromEnv = deps.env.USER ?? deps.env.LOGNAME;
  if (fromEnv) return fromEnv;
  // Under Bun os.userInfo().username is "unknown" when $USER is unset.
  const id = await deps.run("id", ["-un"]);
  if (id && id.code === 0 && id.stdout.trim() !== "") return id.stdout.trim();
  return userInfo().username;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

interface HopRequest {
  alias: string;
  port: number | null;
  user: string | null;
}

const MAX_HOPS = 8;

/** Resolve the host from the config, and every ProxyJump hop in front of it. */
export async function resolveTarget(
  cfg: TargetConfig,
  deps: ResolveDeps = defaultResolveDeps(),
): Promise<ResolvedTarget> {
  const abs = (p: string) => {
    const t = expandTilde(p, deps.home);
    return isAbsolute(t) ? t : resolvePath(t);
  };
  const identity = cfg.identity === null ? null : abs(cfg.identity);
  const knownHosts = cfg.known_hosts === null ? null : abs(cfg.known_hosts);

  const resolveOne = async (
    req: HopRequest,
    isTarget: boolean,
  ): Promise<{ hop: ResolvedHop; jumps: JumpSpec[] }> => {
    const args = [...(deps.sshConfigFile ? ["-F", deps.sshConfigFile] : []), "-G"];
    if (req.port !== null) args.push("-p", String(req.port));
    if (req.user !== null) args.push("-l", req.user);
    args.push("--", req.alias);
    const out = await deps.run("ssh", args);
    if (out === null) {
      // No OpenSSH client: plain values.
      return {
        hop: {
          alias: req.alias,
          hostname: req.alias,
          port: req.port ?? 22,
          user: req.user ?? (await localUser(deps)),
          identityFiles: identity ? [identity] : DEFAULT_IDENTITIES.map(abs),
          knownHostsFiles: knownHosts ? [knownHosts] : [abs("~/.ssh/known_hosts")],
          hashKnownHosts: false,
          hostKeyAlias: null,
        },
        jumps: [],
      };
    }
    if (out.code !== 0) {
      const why = out.stderr.trim().split("\n").slice(-3).join(" ");
      throw new InputError(`cannot resolve ssh host ${JSON.stringify(req.alias)}: ssh -G failed: ${why}`);
    }
    const g = parseSshG(out.stdout);
    const one = (k: string) => g.get(k)?.[0];
    const list = (k: string) =>
      (g.get(k) ?? []).flatMap((v) => v.split(/\s+/)).filter((v) => v !== "" && v !== "none");
    const port = Number(one("port") ?? req.port ?? 22);
    const files = (g.get("identityfile") ?? []).map(abs);
    return {
      hop: {
        alias: req.alias,
        hostname: one("hostname") ?? req.alias,
        port: Number.isInteger(port) && port > 0 ? port : 22,
        user: one("user") ?? req.user ?? (await localUser(deps)),
        // The config's identity comes first for the target and is also tried on the hops.
        identityFiles: unique(
          isTarget && identity ? [identity, ...files] : [...files, ...(identity ? [identity] : [])],
        ),
        knownHostsFiles: knownHosts
          ? [knownHosts]
          : unique([...list("userknownhostsfile"), ...list("globalknownhostsfile")].map(abs)),
        hashKnownHosts: one("hashknownhosts") === "yes",
        hostKeyAlias: one("hostkeyalias") ?? null,
      },
      jumps: parseProxyJump(one("proxyjump") ?? "none"),
    };
  };

  // `ProxyJump a,b` as OpenSSH runs it: b is reached through a (b's own ProxyJump is ignored),
  // while a may itself have a ProxyJump in its config.
  const resolveChain = async (specs: JumpSpec[], depth: number): Promise<ResolvedHop[]> => {
    if (specs.length === 0) return [];
    if (depth + specs.length > MAX_HOPS) throw new InputError(`ProxyJump chain longer than ${MAX_HOPS} hops`);
    const [first, ...rest] = specs;
    const head = await resolveOne({ alias: first!.host, port: first!.port, user: first!.user }, false);
    const chain = [...(await resolveChain(head.jumps, depth + 1)), head.hop];
    for (const spec of rest) {
      chain.push((await resolveOne({ alias: spec.host, port: spec.port, user: spec.user }, false)).hop);
    }
    return chain;
  };

  const target = await resolveOne({ alias: cfg.host, port: cfg.port, user: cfg.user }, true);
  return { ...target.hop, proxyJump: await resolveChain(target.jumps, 0) };
}
