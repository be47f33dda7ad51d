// Words of bytes for the remote POSIX shell (file names that are not UTF-8); text words are
// core/layout.ts shellQuote, the one quoter.
import { shellQuote } from "../core/layout.ts";
import { InputError } from "../errors.ts";

/**
 * One POSIX shell word that expands to exactly these bytes, even when they are not UTF-8 (the command
 * string sent over SSH is UTF-8 text). Valid UTF-8 runs are single-quoted; each run of other bytes
 * becomes `"$(printf '\ooo...')"`. Those runs never contain a newline (0x0a is valid UTF-8), so the
 * command substitution cannot lose trailing newlines.
 */
export function shellWord(value: string | Uint8Array): string {
  if (typeof value === "string") return shellQuote(value);
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (bytes.includes(0)) throw new InputError("a shell word cannot contain a NUL byte");
  const parts: string[] = [];
  for (const run of splitUtf8Runs(bytes)) {
    if (run.valid) parts.push(shellQuote(run.bytes.toString("utf8")));
    else
      parts.push(
        `"$(printf '${[...run.bytes].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("")}')"`,
      );
  }
  return parts.length === 0 ? "''" : parts.join("");
}

interface Run {
  valid: boolean;
  bytes: Buffer;
}

/** Split bytes into maximal runs of well-formed UTF-8 and of everything else. */
export function splitUtf8Runs(bytes: Buffer): Run[] {
  const runs: Run[] = [];
  let start = 0;
  let i = 0;
  let validStart = true;
  const push = (end: number, valid: boolean) => {
    if (end > start) runs.push({ valid, bytes: bytes.subarray(start, end) });
    start = end;
  };
  while (i < bytes.length) {
    const n = utf8SequenceLength(bytes, i);
    const valid = n > 0;
    if (valid !== validStart) {
      push(i, validStart);
      validStart = valid;
    }
    i += valid ? n : 1;
  }
  push(bytes.length, validStart);
  return runs;
}

/** Length of the well-formed UTF-8 sequence starting at i (RFC 3629 table), or 0 if there is none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c0 = b[i]!;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => {
    const c = b[i + j];
    return c !== undefined && c >= lo && c <= hi;
  };
  if (c0 < 0x80) return 1;
  if (c0 >= 0xc2 && c0 <= 0xdf) return cont(1) ? 2 : 0;
  if (c0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c0 >= 0xe1 && c0 <= 0xec) || c0 === 0xee || c0 === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c0 >= 0xf1 && c0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
