// Reading agent.log incrementally: parse complete event lines, and decide where the next read
// starts when the remote file was truncated, replaced or rotated (agent.log → agent.log.1).
//
// No event is skipped and none applied twice: the sync keeps a cursor {offset, headHash} per log
// file generation; offsets advance only past complete lines; a changed head means a new file.
// Consumers also apply events idempotently, keyed by eventKey(): a SUBMIT for a job already
// SUBMITTED with that scheduler id changes nothing, so a re-read after an unclean rotation is safe.
import { createHash } from "node:crypto";

export const AGENT_EVENTS = [
  "SUBMIT",
  "SUBMIT_ERROR",
  "DEFER",
  "RECOVER",
  "RETRY",
  "CANCEL",
  "START",
  "END",
] as const;
export type AgentEventName = (typeof AGENT_EVENTS)[number];

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

export interface SkippedLine {
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

/** What consumers deduplicate on: the same job, event and detail is the same fact. */
export function eventKey(e: Pick<AgentEvent, "jobId" | "event" | "detail">): string {
  return `${e.jobId}\t${e.event}\t${e.detail}`;
}

// ---------------------------------------------------------------------------- cursor

/** Bytes of the file's start the sync reads to recognise it (`head -c 64`). */
export const LOG_HEAD_BYTES = 64;

export interface LogCursor {
  /** Next byte to read in the file generation named by headHash. */
  offset: number;
  /** Hash of the file's head (see headHash); null while no complete first line was seen. */
  headHash: string | null;
}

export const EMPTY_CURSOR: LogCursor = { offset: 0, headHash: null };

/**
 * Hash of a log's head: its first line (with the newline), or its first 64 bytes when that line
 * is longer. Stable while the file only grows; null while the first line is not complete yet.
 */
export function headHash(head: Buffer | Uint8Array | string): string | null {
  const buf = toBuffer(head).subarray(0, LOG_HEAD_BYTES);
  const nl = buf.indexOf(NEWLINE);
  let part: Buffer;
  if (nl >= 0) part = buf.subarray(0, nl + 1);
  else if (buf.length === LOG_HEAD_BYTES) part = buf;
  else return null;
  return createHash("sha256").update(part).digest("hex").slice(0, 32);
}

/** A log file as the sync saw it: its size and its first LOG_HEAD_BYTES bytes. */
export interface RemoteLogFile {
  size: number;
  head: Buffer | Uint8Array | string;
}

export type LogFileName = "current" | "previous";

export interface LogRead {
  /** "current" = agent.log, "previous" = agent.log.1 (the generation before a rotation). */
  file: LogFileName;
  from: number;
}

export interface LogReadPlan {
  /** Reads in order; parse each from its `from` offset. */
  reads: LogRead[];
  why: "first" | "continue" | "rotated" | "truncated" | "missing";
}

/**
 * Where to read next. `current` is agent.log (null when missing), `previous` is agent.log.1
 * (null or omitted when missing). The old generation's unread tail is read before the new file.
 */
export function planLogRead(
  cursor: LogCursor | null,
  current: RemoteLogFile | null,
  previous: RemoteLogFile | null = null,
): LogReadPlan {
  const c = cursor ?? EMPTY_CURSOR;
  const currentHash = current ? headHash(current.head) : null;
  if (c.headHash === null) {
    // Nothing complete was ever read from any generation.
    return current ? { reads: [{ file: "current", from: 0 }], why: "first" } : { reads: [], why: "missing" };
  }
  if (current && currentHash === c.headHash) {
    if (current.size >= c.offset) return { reads: [{ file: "current", from: c.offset }], why: "continue" };
    // Same first line but shorter than what we read: rewritten in place. Idempotent consumers
    // absorb the events seen before.
    return { reads: [{ file: "current", from: 0 }], why: "truncated" };
  }
  if (previous && headHash(previous.head) === c.headHash) {
    const reads: LogRead[] = [];
    if (previous.size > c.offset) reads.push({ file: "previous", from: c.offset });
    if (current) reads.push({ file: "current", from: 0 });
    return { reads, why: "rotated" };
  }
  if (!current) return { reads: [], why: "missing" };
  return { reads: [{ file: "current", from: 0 }], why: "truncated" };
}

/**
 * The cursor to store after performing `plan`: `last` is what the plan's last read returned (the
 * bytes read and parseAgentLog's nextOffset for them). A read from 0 names its file by the head
 * it just read; a read that continued keeps the cursor's head.
 */
export function advanceCursor(
  cursor: LogCursor | null,
  plan: LogReadPlan,
  last: { chunk: Buffer | Uint8Array | string; nextOffset: number } | null,
): LogCursor {
  const lastRead = plan.reads[plan.reads.length - 1];
  if (!lastRead || !last) return plan.why === "missing" ? EMPTY_CURSOR : (cursor ?? EMPTY_CURSOR);
  if (lastRead.from !== 0) return { offset: last.nextOffset, headHash: cursor?.headHash ?? null };
  const hash = headHash(last.chunk);
  // No complete first line yet: nothing was consumed, start over next time.
  if (hash === null) return EMPTY_CURSOR;
  return { offset: last.nextOffset, headHash: hash };
}
