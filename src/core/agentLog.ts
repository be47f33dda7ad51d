// Reading agent.log incrementally: parse complete event lines from an offset. Where the next read
// starts (the cursor: offset and the log's first line, through a rotation to agent.log.1) is
// decided on the cluster by state.sh. Offsets advance only past complete lines, and consumers
// apply events idempotently (a SUBMIT for a job already SUBMITTED changes nothing), so a re-read
// after an unclean rotation is safe.

const AGENT_EVENTS = [
  "SUBMIT",
  "SUBMIT_ERROR",
  "DEFER",
  "RECOVER",
  "RETRY",
  "CANCEL",
  "START",
  "END",
] as const;
type AgentEventName = (typeof AGENT_EVENTS)[number];

export interface AgentEvent {
  /** UTC ISO-8601 time the agent wrote the line. */
  at: string;
  event: AgentEventName;
  /** The job id, or "-" for START/END of a run. */
  jobId: string;
  /** SUBMIT/RECOVER: scheduler id; SUBMIT_ERROR: the scheduler's message; DEFER/RETRY: why. */
  detail: string;
  /** Byte offset of the line in the file. */
  offset: number;
}

interface SkippedLine {
  offset: number;
  line: string;
  why: string;
}

export interface ParsedAgentLog {
  events: AgentEvent[];
  /** Lines that were complete but not events (kept for diagnostics, never applied). */
  skipped: SkippedLine[];
  /** Where the next read starts: after the last complete line. */
  nextOffset: number;
}

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const EVENT_NAMES: ReadonlySet<string> = new Set(AGENT_EVENTS);
const NEWLINE = 0x0a;

function toBuffer(chunk: Buffer | Uint8Array | string): Buffer {
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Events in `chunk`, which holds the log's bytes from `startOffset` on. A partial last line is
 * not consumed: `nextOffset` stays before it, so the next read sees it whole.
 */
export function parseAgentLog(chunk: Buffer | Uint8Array | string, startOffset: number): ParsedAgentLog {
  const buf = toBuffer(chunk);
  const events: AgentEvent[] = [];
  const skipped: SkippedLine[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(NEWLINE, start);
    if (nl < 0) break;
    const offset = startOffset + start;
    const line = buf.subarray(start, nl).toString("utf8").replace(/\r$/, "");
    start = nl + 1;
    if (line === "") continue;
    const fields = line.split("\t");
    if (fields.length < 4) {
      skipped.push({ offset, line, why: "fewer than 4 fields" });
      continue;
    }
    const [at, event, jobId] = fields as [string, string, string];
    if (!ISO_UTC.test(at)) {
      skipped.push({ offset, line, why: "no UTC time" });
      continue;
    }
    if (!EVENT_NAMES.has(event)) {
      skipped.push({ offset, line, why: `unknown event ${event}` });
      continue;
    }
    events.push({
      at,
      event: event as AgentEventName,
      jobId,
      detail: fields.slice(3).join(" "),
      offset,
    });
  }
  return { events, skipped, nextOffset: startOffset + start };
}
