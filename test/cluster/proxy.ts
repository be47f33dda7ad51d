// A TCP proxy for latency and fault tests: holds every chunk D ms each way (order kept), delays
// the upstream connect by 2·D like a handshake, can cut a connection after N bytes, counts bytes.
// In-process: startProxy({ targetPort, delayMs }); CLI:
//   bun test/cluster/proxy.ts --listen P --to host:port --delay-ms D [--cut-after-bytes N] [--cut-count both|upstream|downstream]
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";

/** Which bytes count toward a cut: both directions together, client→server, or server→client. */
export type CutCount = "both" | "upstream" | "downstream";

export interface ProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Held this long each way; the upstream connect waits 2·delayMs. */
  delayMs?: number;
  /** Close each connection once this many bytes (as counted by cutCount) went through; null: never. */
  cutAfterBytes?: number | null;
  cutCount?: CutCount;
  listenPort?: number;
  listenHost?: string;
}

export interface ConnectionStats {
  id: number;
  /** Bytes forwarded client → server. */
  up: number;
  /** Bytes forwarded server → client. */
  down: number;
  cut: boolean;
  open: boolean;
}

export interface ProxyStats {
  connections: ConnectionStats[];
  up: number;
  down: number;
  cuts: number;
}

export interface Proxy {
  port: number;
  stats(): ProxyStats;
  /** From now on, cut each connection (open ones too) after n more counted bytes; null: stop cutting. */
  setCutAfter(n: number | null): void;
  setDelay(ms: number): void;
  close(): Promise<void>;
}

interface Conn {
  stats: ConnectionStats;
  client: net.Socket;
  upstream: net.Socket | null;
  /** Counted bytes still allowed before the cut; null: no cut. */
  budget: number | null;
}

function sleepUntil(due: number): Promise<void> {
  // Timers may fire a little early; loop so "held D ms" is a hard lower bound.
  return new Promise((resolve) => {
    const tick = () => {
      const left = due - performance.now();
      if (left <= 0) resolve();
      else setTimeout(tick, Math.ceil(left));
    };
    tick();
  });
}

export function startProxy(opts: ProxyOptions): Promise<Proxy> {
  let delayMs = opts.delayMs ?? 0;
  let cutAfter = opts.cutAfterBytes ?? null;
  const cutCount: CutCount = opts.cutCount ?? "both";
  const targetHost = opts.targetHost ?? "127.0.0.1";
  const conns = new Set<Conn>();
  const all: ConnectionStats[] = [];
  let nextId = 1;

  function cut(conn: Conn): void {
    conn.stats.cut = true;
    conn.client.destroy();
    conn.upstream?.destroy();
  }

  /** A one-way pipe: chunks are held delayMs from arrival, then written in arrival order. */
  function pipe(
    conn: Conn,
    from: net.Socket,
    to: () => net.Socket | null,
    dir: "upstream" | "downstream",
  ): void {
    let chain: Promise<void> = Promise.resolve();
    const counts = cutCount === "both" || cutCount === dir;
    from.on("data", (chunk: Buffer) => {
      const due = performance.now() + delayMs;
      chain = chain.then(async () => {
        await sleepUntil(due);
        const dest = to();
        if (conn.stats.cut || !dest || dest.destroyed) return;
        let data = chunk;
        if (counts && conn.budget !== null) {
          if (data.length >= conn.budget) {
            data = data.subarray(0, conn.budget);
            conn.budget = 0;
          } else {
            conn.budget -= data.length;
          }
        }
        if (data.length > 0) {
          dest.write(data);
          conn.stats[dir === "upstream" ? "up" : "down"] += data.length;
        }
        if (counts && conn.budget === 0) {
          // Let the last bytes leave before the sockets go.
          dest.end(() => cut(conn));
          setTimeout(() => cut(conn), 50).unref();
        }
      });
    });
    from.on("end", () => {
      chain = chain.then(() => {
        to()?.end();
      });
    });
  }

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const stats: ConnectionStats = { id: nextId++, up: 0, down: 0, cut: false, open: true };
    all.push(stats);
    const conn: Conn = { stats, client, upstream: null, budget: cutAfter };
    conns.add(conn);
    const closeBoth = () => {
      stats.open = false;
      conns.delete(conn);
      client.destroy();
      conn.upstream?.destroy();
    };
    client.on("error", () => {});
    client.on("close", closeBoth);
    // Client bytes are read once the upstream connection is there, then held like the others.
    pipe(conn, client, () => conn.upstream, "upstream");
    client.pause();
    sleepUntil(performance.now() + 2 * delayMs).then(() => {
      if (client.destroyed) return;
      const upstream = net.connect({ host: targetHost, port: opts.targetPort });
      upstream.setNoDelay(true);
      conn.upstream = upstream;
      upstream.on("error", () => {});
      upstream.on("close", closeBoth);
      upstream.on("connect", () => client.resume());
      pipe(conn, upstream, () => client, "downstream");
    });
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listenPort ?? 0, opts.listenHost ?? "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        stats: () => ({
          connections: all.map((c) => ({ ...c })),
          up: all.reduce((n, c) => n + c.up, 0),
          down: all.reduce((n, c) => n + c.down, 0),
          cuts: all.filter((c) => c.cut).length,
        }),
        setCutAfter: (n) => {
          cutAfter = n;
          for (const c of conns) c.budget = n;
        },
        setDelay: (ms) => {
          delayMs = ms;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const c of conns) {
              c.client.destroy();
              c.upstream?.destroy();
            }
            server.close(() => done());
          }),
      });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: "string" },
      to: { type: "string" },
      "delay-ms": { type: "string", default: "0" },
      "cut-after-bytes": { type: "string" },
      "cut-count": { type: "string", default: "both" },
    },
  });
  const to = /^(.*):(\d+)$/.exec(values.to ?? "");
  const cutCount = values["cut-count"];
  if (!to || !values.listen || !["both", "upstream", "downstream"].includes(cutCount)) {
    process.stderr.write(
      "usage: proxy.ts --listen PORT --to HOST:PORT --delay-ms D [--cut-after-bytes N] [--cut-count both|upstream|downstream]\n",
    );
    process.exitCode = 2;
    return;
  }
  const proxy = await startProxy({
    listenPort: Number(values.listen),
    targetHost: to[1]!,
    targetPort: Number(to[2]),
    delayMs: Number(values["delay-ms"]),
    cutAfterBytes: values["cut-after-bytes"] === undefined ? null : Number(values["cut-after-bytes"]),
    cutCount: cutCount as CutCount,
  });
  process.stdout.write(`proxy listening on 127.0.0.1:${proxy.port} -> ${values.to}\n`);
  const bye = () => {
    const s = proxy.stats();
    process.stderr.write(
      `connections ${s.connections.length}, up ${s.up} B, down ${s.down} B, cuts ${s.cuts}\n`,
    );
    void proxy.close().then(() => process.exit(0));
  };
  process.on("SIGINT", bye);
  process.on("SIGTERM", bye);
}

if (import.meta.main) await main(process.argv.slice(2));
