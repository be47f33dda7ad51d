// The cluster over one connection (our ssh2 session, or an OpenSSH master): each port request is
// one remote command (two for an upload), the kit's scripts on stdin, the reply parsed by
// core/protocol.ts.
import { parseAgentLog } from "../core/agentLog.ts";
import type { Config } from "../core/config.ts";
import { shellQuote } from "../core/layout.ts";
import {
  parseCancelMarks,
  parseCancelReply,
  parseFlags,
  parseKeyValues,
  splitSections,
} from "../core/protocol.ts";
import { parseSchedulerSnapshot } from "../core/schedulerView.ts";
import { NeedsPersonError, RemoteError } from "../errors.ts";
import { opensshShell } from "../ssh/openssh.ts";
import type { ResolvedTarget } from "../ssh/resolve.ts";
import type { RemoteShell, Session } from "../ssh/session.ts";
import { type ConnectOptions, connectCluster, remoteDirs } from "./connect.ts";
import { downloadResults } from "./download.ts";
import doctorScript from "./kit/doctor.sh" with { type: "text" };
import { type MasterState, masterState } from "./master.ts";
import type { Cluster, StateReport } from "./port.ts";
import { cancelInput, stateInput } from "./stateRequest.ts";
import { uploadJobs } from "./upload.ts";

/**
 * The cluster through a live OpenSSH master when there is one (transport auto or openssh: no
 * login, no prompt), else by logging in once with our own ssh2 client (the only prompt).
 */
export async function openCluster(
  config: Config,
  // master: what the caller already learnt of it (doctor reports it first), so it is not asked twice.
  opts: ConnectOptions & { master?: MasterState },
  target?: ResolvedTarget,
): Promise<Cluster> {
  if (config.transport !== "ssh2") {
    const master = opts.master ?? (await masterState(config, opts.home, new Date()));
    if (master.live) {
      const route = [
        { host: config.host, port: config.port ?? 22, methods: [`OpenSSH master (${master.path})`] },
      ];
      return sshCluster(opensshShell(config, master.path), () => route, config);
    }
    if (config.transport === "openssh") {
      throw new NeedsPersonError(
        `no live OpenSSH master connection to ${config.host} (transport is "openssh")`,
        "Run `chasqui connect` at a terminal: one login, and later syncs (cron's too) ride it.",
      );
    }
  }
  const session = await connectCluster(config, opts, target);
  return sshCluster(session, () => sessionRoute(session), config);
}

function sessionRoute(session: Session): { host: string; port: number; methods: string[] }[] {
  return session.route.map((r) => ({
    host: r.host,
    port: r.port,
    methods: r.authMethods.map((m) => `${m.method} (${m.via})`),
  }));
}

function sshCluster(session: RemoteShell, route: Cluster["route"], config: Config): Cluster {
  const dirs = remoteDirs(config);
  return {
    upload: (jobs) => uploadJobs(session, dirs, jobs),
    state: async (ask) => {
      const reply = await session.exec("bash -s", {
        stdin: stateInput({
          ...dirs,
          offset: ask.cursor.offset,
          head: ask.cursor.head,
          config: ask.limits,
          cancel: ask.cancel,
          open: ask.open,
          remove: ask.remove,
        }),
        timeoutMs: 300_000,
      });
      if (reply.code !== 0) {
        throw new RemoteError(
          `the cluster could not report its state: ${reply.stderr.toString().trim() || `exit ${reply.code}`}`,
        );
      }
      return readStateReply(reply.stdout, ask.cursor.offset, config.scheduler);
    },
    cancel: async (args, limits) => {
      const reply = await session.exec("bash -s", {
        stdin: cancelInput({ ...dirs, config: limits }, args),
        timeoutMs: 120_000,
      });
      const answers = parseCancelReply(reply.stdout.toString("utf8"));
      if (reply.code !== 0 && answers.size === 0) {
        throw new RemoteError(
          `the cluster could not cancel: ${reply.stderr.toString().trim() || `exit ${reply.code}`}`,
          { hint: "Nothing was changed; try again in a minute." },
        );
      }
      return answers;
    },
    probe: async (queue) => {
      const script = [
        `R=${dirs.remoteDirSh}`,
        `SCHED=${config.scheduler}`,
        `QUEUE=${shellQuote(queue)}`,
        doctorScript,
      ];
      const r = await session.exec("bash -s", { stdin: Buffer.from(script.join("\n")), timeoutMs: 60_000 });
      if (r.code !== 0)
        return { facts: null, problem: `bash -s exited ${r.code}: ${r.stderr.toString().trim()}` };
      return { facts: parseKeyValues(r.stdout.toString("utf8")), problem: "" };
    },
    route,
    download: (targets, opts) => downloadResults(session, dirs.workRootSh, targets, opts),
    requests: () => session.stats().execRequests,
    close: () => session.close(),
  };
}

const LOG_READS = ["continue", "rotated", "restart", "first"] as const;

/** The state reply's sections, as a report. `offset` is where the sync's cursor stood. */
function readStateReply(reply: Buffer, offset: number, scheduler: Config["scheduler"]): StateReport {
  const sections = splitSections(reply);
  const text = (name: string) => sections.get(name)?.toString("utf8") ?? "";
  const metaText = text("meta");
  const meta = parseKeyValues(metaText);
  const linesOf = (key: string) =>
    metaText
      .split("\n")
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));
  // state.sh read the log from the cursor ("continue"), or the rest of the rotated generation
  // then the new file, or all of it again when it could not tell.
  const prev = parseAgentLog(sections.get("log_prev") ?? Buffer.alloc(0), offset);
  const current = parseAgentLog(
    sections.get("log") ?? Buffer.alloc(0),
    meta.get("log_read") === "continue" ? offset : 0,
  );
  const head = text("log_head");
  return {
    deployed: meta.get("deployed") ?? null,
    events: [...prev.events, ...current.events],
    nextCursor: head === "" ? null : { offset: current.nextOffset, head },
    logRead: LOG_READS.find((r) => r === meta.get("log_read")) ?? null,
    flags: parseFlags(text("flags")),
    cancelMarks: parseCancelMarks(text("cancel_marks")),
    cancelAnswers: parseCancelReply(text("cancel")),
    snapshot: parseSchedulerSnapshot(text("snapshot"), scheduler),
    waiting: /^\d+$/.test(meta.get("waiting_after") ?? "") ? Number(meta.get("waiting_after")) : null,
    removed: linesOf("removed"),
    removeRefused: linesOf("remove_refused"),
  };
}
