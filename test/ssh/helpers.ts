// Shared bits for the SSH integration tests: the cluster description, targets, log polling.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import type { Prompter } from "../../src/ssh/prompter.ts";
import type { ResolvedHop, ResolvedTarget } from "../../src/ssh/resolve.ts";

export interface ClusterInfo {
  host: string;
  keyPort: number;
  totpPort: number;
  user: string;
  identity: string;
  encryptedIdentity: string;
  passphrase: string;
  knownHosts: string;
  totpSecret: string;
  stateDir: string;
}

export const CLUSTER_JSON = "/var/lib/chasqui-cluster/cluster.json";

export function cluster(): ClusterInfo {
  return JSON.parse(readFileSync(CLUSTER_JSON, "utf8")) as ClusterInfo;
}

export function hopFor(c: ClusterInfo, port: number, over: Partial<ResolvedHop> = {}): ResolvedHop {
  return {
    alias: c.host,
    hostname: c.host,
    port,
    user: c.user,
    identityFiles: [c.identity],
    knownHostsFiles: [c.knownHosts],
    hashKnownHosts: false,
    hostKeyAlias: null,
    ...over,
  };
}

export function targetFor(c: ClusterInfo, port: number, over: Partial<ResolvedTarget> = {}): ResolvedTarget {
  return { ...hopFor(c, port), proxyJump: [], ...over };
}

/** Nobody at a terminal. */
export const nobody: Prompter = {
  interactive: false,
  ask: () => Promise.reject(new Error("asked without a terminal")),
  confirm: () => Promise.reject(new Error("asked without a terminal")),
  info: () => {},
};

/** Poll until fn returns a value other than undefined, or fail at the deadline. */
export async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** sshd's log lines about one client connection (by its source port). */
export function sshdLogLines(c: ClusterInfo, localPort: number): string[] {
  const log = readFileSync(`${c.stateDir}/log/sshd.log`, "utf8");
  return log.split("\n").filter((l) => l.includes(`port ${localPort}`));
}

const TOTP_CLI = new URL("../cluster/totp-cli.ts", import.meta.url).pathname;
const CLUSTER_TS = new URL("../cluster/cluster.ts", import.meta.url).pathname;
const usedCodes = new Set<string>();

/** A TOTP code the server has not seen: from test/cluster/cluster.ts when it is there. */
export async function freshTotp(c: ClusterInfo): Promise<string> {
  if (existsSync(CLUSTER_TS)) {
    const mod = (await import(CLUSTER_TS)) as { totpCode: () => string | Promise<string> };
    return await mod.totpCode();
  }
  // Fallback: the codes of the current and next steps (WINDOW_SIZE 3 accepts both), each once.
  for (;;) {
    for (const offset of ["now", "+30 seconds"]) {
      const code = execFileSync("oathtool", ["--totp", "-b", c.totpSecret, "-N", offset]).toString().trim();
      if (!usedCodes.has(code)) {
        usedCodes.add(code);
        return code;
      }
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** An otp_command that prints a fresh code (the cluster's totp-cli when it is there). */
export async function otpCommand(c: ClusterInfo): Promise<string> {
  if (existsSync(TOTP_CLI)) return `${process.execPath} ${TOTP_CLI}`;
  return `echo ${await freshTotp(c)}`;
}

export interface TestProxy {
  port: number;
  /** Destroy every connection (a cut link). */
  cut(): void;
  /** Stop forwarding but keep the connections open (a silent dead link). */
  freeze(): void;
  close(): Promise<void>;
}

/** A plain TCP forwarder to 127.0.0.1:targetPort that can cut or silently drop its connections. */
export function startTestProxy(targetPort: number): Promise<TestProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((down) => {
    const up = connect({ host: "127.0.0.1", port: targetPort });
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    down.on("data", (b) => frozen || up.write(b));
    up.on("data", (b) => frozen || down.write(b));
    down.on("close", () => up.destroy());
    up.on("close", () => down.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        cut: () => {
          for (const s of sockets) s.destroy();
        },
        freeze: () => {
          frozen = true;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
