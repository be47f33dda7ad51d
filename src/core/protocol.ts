// The wire formats between chasqui and the cluster, each written or parsed here and nowhere
// else (docs/REMOTE.md describes them): agent.conf, the state reply's sections and KEY=VALUE
// lines, completion flags, cancel marks and the agent's cancel answers. The two larger formats
// have files of their own: agent.log lines (agentLog.ts) and the scheduler snapshot with its
// state-letter table (schedulerView.ts). Pure.
import type { Config } from "./config.ts";
import { parseRunSummary, type RunSummary } from "./runSummary.ts";

/** The agent's answer per job to `agent.sh cancel`. */
const CANCEL_OUTCOMES = ["removed", "deleted", "gone", "unknown", "error"] as const;
export type CancelOutcome = (typeof CANCEL_OUTCOMES)[number];

/** agent.conf: KEY=VALUE lines the agent parses (never sources). */
export function agentConfText(
  config: Pick<Config, "scheduler" | "max_queued" | "max_running" | "trigger_host">,
): string {
  return [
    `SCHEDULER=${config.scheduler}`,
    `MAX_QUEUED=${config.max_queued}`,
    `MAX_RUNNING=${config.max_running}`,
    ...(config.trigger_host ? [`TRIGGER_HOST=${config.trigger_host}`] : []),
  ].join("\n");
}

/** Sections `@@<name> <bytes>\n<bytes>\n` of a reply. */
export function splitSections(reply: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < reply.length) {
    const nl = reply.indexOf(0x0a, at);
    if (nl < 0) break;
    const m = /^@@([a-z_]+) (\d+)$/.exec(reply.subarray(at, nl).toString("utf8"));
    if (!m) throw new Error(`unexpected reply from the cluster near byte ${at}`);
    const size = Number(m[2]);
    out.set(m[1]!, reply.subarray(nl + 1, nl + 1 + size));
    at = nl + 1 + size + 1;
  }
  return out;
}

/** KEY=VALUE lines (the state reply's meta, doctor's facts); the last of a repeated key wins. */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

export interface Flag {
  status: "DONE" | "FAIL" | "TIMEOUT";
  schedulerId: string;
  exitCode: number | null;
  at: string;
  /** The run as the epilogue saw it (lines 5 and on); null for flags of older scripts. */
  summary: RunSummary | null;
}

/** `@<job id>` then the flag's four lines, for every flag (the state reply's `flags` section). */
export function parseFlags(text: string): Map<string, Flag> {
  const out = new Map<string, Flag>();
  const blocks = text.split(/^@/m).filter((b) => b.length > 0);
  for (const block of blocks) {
    const [id, status, schedulerId, exit, at, ...rest] = block.split("\n");
    // A flag is written to a temporary name and renamed, but a hand-made or damaged one may be short.
    if (!id || (status !== "DONE" && status !== "FAIL" && status !== "TIMEOUT") || !schedulerId || !at)
      continue;
    const code = exit !== undefined && /^-?\d+$/.test(exit.trim()) ? Number(exit.trim()) : null;
    out.set(id, {
      status,
      schedulerId: schedulerId.trim(),
      exitCode: code,
      at: at.trim(),
      summary: parseRunSummary(rest),
    });
  }
  return out;
}

/** The agent's cancel marks: `<job id>\t<scheduler id>` lines. */
export function parseCancelMarks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [id, sid] = line.split("\t");
    if (id && sid) out.set(id, sid.trim());
  }
  return out;
}

/** The agent's cancel lines: `id\toutcome\tdetail`; other lines (e.g. `@deployed=V`) are skipped. */
export function parseCancelReply(text: string): Map<string, { outcome: CancelOutcome; detail: string }> {
  const out = new Map<string, { outcome: CancelOutcome; detail: string }>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("@")) continue;
    const [id, outcome, ...rest] = line.split("\t");
    if (!id || !outcome || !(CANCEL_OUTCOMES as readonly string[]).includes(outcome)) continue;
    out.set(id, { outcome: outcome as CancelOutcome, detail: rest.join("\t") });
  }
  return out;
}
