// Completion flags (R/completed/<id>.flag), written by the batch script as its last act:
// line 1 DONE|FAIL|TIMEOUT, line 2 the scheduler id, line 3 the exit code, line 4 UTC time.

export const FLAG_STATUSES = ["DONE", "FAIL", "TIMEOUT"] as const;
export type FlagStatus = (typeof FLAG_STATUSES)[number];

export interface CompletionFlag {
  status: FlagStatus;
  schedulerId: string;
  exitCode: number;
  /** UTC ISO-8601 time the job wrote the flag. */
  at: string;
}

export type ParsedFlag =
  | ({ ok: true } & CompletionFlag)
  /** incomplete: not all four lines are there yet (ignore it until the next sync). */
  | { ok: false; problem: "incomplete" | "invalid"; message: string };

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function isFlagStatus(s: string): s is FlagStatus {
  return (FLAG_STATUSES as readonly string[]).includes(s);
}

/**
 * A flag's text. Only four newline-terminated lines make a flag: anything shorter (or without
 * the final newline) may be half-written and is "incomplete", never a verdict. Lines after the
 * fourth are ignored, so later versions may add some.
 */
export function parseFlag(text: string | Buffer): ParsedFlag {
  const s = typeof text === "string" ? text : text.toString("utf8");
  const lines = s.split("\n");
  // split leaves the text after the last newline as the last element: a complete line has "" there.
  if (lines.length < 5) {
    return { ok: false, problem: "incomplete", message: `${Math.max(lines.length - 1, 0)} of 4 lines` };
  }
  const [status, schedulerId, exitText, at] = lines.slice(0, 4).map((l) => l.replace(/\r$/, "").trim()) as [
    string,
    string,
    string,
    string,
  ];
  if (!isFlagStatus(status)) return { ok: false, problem: "invalid", message: `unknown status "${status}"` };
  if (schedulerId === "" || /\s/.test(schedulerId)) {
    return { ok: false, problem: "invalid", message: `bad scheduler id "${schedulerId}"` };
  }
  if (!/^-?\d{1,10}$/.test(exitText))
    return { ok: false, problem: "invalid", message: `bad exit code "${exitText}"` };
  if (!ISO_UTC.test(at) || Number.isNaN(Date.parse(at))) {
    return { ok: false, problem: "invalid", message: `bad time "${at}"` };
  }
  return { ok: true, status, schedulerId, exitCode: Number(exitText), at };
}
