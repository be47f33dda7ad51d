// Shared bits for the SSH integration tests: the cluster description, targets, log polling.
import { readFileSync, statSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import type { Prompter } from "../../src/ssh/prompter.ts";
import type { ResolvedHop, ResolvedTarget } from "../../src/ssh/resolve.ts";
import { type Cluster, loadCluster, totpCode } from "../cluster/cluster.ts";

export type ClusterInfo = Cluster;

/** The running test cluster (brought up by its helpers when it is down). */
export function cluster(): Cluster {
  return loadCluster();
}

function hopFor(c: ClusterInfo, port: number, over: Partial<ResolvedHop> = {}): ResolvedHop {
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

/**
 * sshd's log from now on: `lines(port)` are the lines about one client connection, by its source
 * port. Only what is written after the call counts: a source port comes round again, and an
 * earlier connection from the same port (another test, another run) must not be read as this one.
 */
export function sshdLogFromNow(c: ClusterInfo): { lines(localPort: number): string[] } {
  const file = `${c.stateDir}/log/sshd.log`;
  const start = statSync(file).size;
  return {
    lines(localPort) {
      const text = readFileSync(file).subarray(start).toString("utf8");
      const about = new RegExp(`\\bport ${localPort}\\b`);
      return text.split("\n").filter((l) => about.test(l));
    },
  };
}

const TOTP_CLI = new URL("../cluster/totp-cli.ts", import.meta.url).pathname;

/** A TOTP code the server has not seen (coordinated across processes by the cluster helpers). */
export function freshTotp(): Promise<string> {
  return totpCode();
}

/** An otp_command that prints a fresh code, as a user's `oathtool` line would. */
export function otpCommand(): string {
  return `${process.execPath} ${TOTP_CLI}`;
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
