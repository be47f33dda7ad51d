import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { shellQuote } from "../../src/core/layout.ts";
import { RemoteError } from "../../src/errors.ts";
import { shellWord } from "../../src/ssh/quote.ts";
import { execChecked, openSession, type Session, type SessionEvent } from "../../src/ssh/session.ts";
import { cluster, nobody, startTestProxy, targetFor } from "./helpers.ts";

const c = cluster();
let session: Session;
const events: SessionEvent[] = [];

beforeAll(async () => {
  session = await openSession({
    target: targetFor(c, c.keyPort),
    otpCommand: null,
    prompter: nobody,
    acceptNewHostKey: false,
    agentSocket: undefined,
    events: (e) => events.push(e),
  });
});
afterAll(() => session?.close());

describe("a key-only session (port 2222)", () => {
  test("logs in with the identity file and runs commands; counts are exact", async () => {
    expect(session.authMethods).toEqual([{ method: "publickey", via: c.identity }]);
    const before = session.stats();
    const r = await session.exec("id -un");
    expect([r.code, r.stdout.toString().trim()]).toEqual([0, c.user]);
    const fail = await session.exec("echo oops >&2; exit 7");
    expect([fail.code, fail.stderr.toString()]).toEqual([7, "oops\n"]);
    await expect(execChecked(session, "echo bad >&2; exit 3")).rejects.toThrow(
      "remote command exited with 3: bad",
    );
    const after = session.stats();
    expect(after.execRequests - before.execRequests).toBe(3);
    expect(after.channels - before.channels).toBe(3);
  });

  test("stdin from a Buffer and from a stream arrives whole, with progress events", async () => {
    const data = Buffer.alloc(1 << 20, 7);
    events.length = 0;
    const r = await session.exec("wc -c", { stdin: data });
    expect(r.stdout.toString().trim()).toBe(String(data.length));
    const bytes = events.filter((e) => e.type === "bytes");
    expect(bytes.at(-1)).toEqual({ type: "bytes", sent: data.length, total: data.length });
    async function* parts() {
      for (let i = 0; i < 100; i++) yield Buffer.from(`line ${i}\n`);
    }
    const s = await session.exec("sha256sum", { stdin: parts() });
    const expected = (await import("node:crypto"))
      .createHash("sha256")
      .update(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""))
      .digest("hex");
    expect(s.stdout.toString().split(" ")[0]).toBe(expected);
  });

  test("execStream gives large stdout as a stream, then the exit code", async () => {
    const { stdout, done } = session.execStream("head -c 5000000 /dev/zero; echo end >&2; exit 4");
    let n = 0;
    for await (const chunk of stdout) n += (chunk as Buffer).length;
    const r = await done;
    expect([n, r.code, r.stderr.toString()]).toEqual([5_000_000, 4, "end\n"]);
  });

  test("a timeout and an abort reject with RemoteError, and the session stays usable", async () => {
    await expect(session.exec("sleep 30", { timeoutMs: 300 })).rejects.toBeInstanceOf(RemoteError);
    const ac = new AbortController();
    const p = session.exec("sleep 30", { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toThrow("cancelled");
    expect((await session.exec("echo still")).stdout.toString()).toBe("still\n");
  });
});

/** Deterministic random byte strings full of shell-special characters and non-UTF-8 bytes. */
function randomWords(count: number, seed: number): Buffer[] {
  let x = seed >>> 0;
  const rnd = (n: number) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % n;
  };
  const pieces = [
    ..."'\"$`\\\n!*?[]{}~#&|;<> \t%()=^-",
    "a",
    "Z",
    "0",
    "é",
    "😀",
    "$(id)",
    "`id`",
    "$" + "{HOME}",
    "\\n",
    "''",
  ];
  const words: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const parts: Buffer[] = [];
    const len = rnd(12);
    for (let j = 0; j < len; j++) {
      if (rnd(5) === 0)
        parts.push(Buffer.from([0x80 + rnd(128)])); // a byte that is not UTF-8 on its own
      else parts.push(Buffer.from(pieces[rnd(pieces.length)]!));
    }
    words.push(Buffer.concat(parts));
  }
  return words;
}

describe("shellWord over the real remote shells", () => {
  test("random words arrive byte for byte in bash (login shell) and dash (sh), in few execs", async () => {
    const words = randomWords(200, 20240601);
    const batches: Buffer[][] = [];
    for (let i = 0; i < words.length; i += 50) batches.push(words.slice(i, i + 50));
    const before = session.stats().execRequests;
    for (const shell of ["login", "sh"] as const) {
      for (const batch of batches) {
        const script = batch
          .map((w) => `printf '%s' ${shellWord(w)} | od -An -v -tx1 | tr -d ' \\n'; echo`)
          .join("\n");
        const cmd = shell === "login" ? script : `sh -c ${shellQuote(script)}`;
        const r = await execChecked(session, cmd);
        expect(r.stdout.toString().split("\n").slice(0, -1)).toEqual(batch.map((w) => w.toString("hex")));
      }
    }
    expect(session.stats().execRequests - before).toBe(2 * batches.length);
    const sh = await execChecked(session, "readlink -f /bin/sh; echo $0");
    expect(sh.stdout.toString()).toMatch(/dash\n.*bash\n$/);
  });
});

describe("a dead link", () => {
  test("a cut connection makes a pending exec reject with RemoteError", async () => {
    const proxy = await startTestProxy(c.keyPort);
    try {
      const s = await openSession({
        target: targetFor(c, proxy.port, { hostKeyAlias: `[${c.host}]:${c.keyPort}` }),
        otpCommand: null,
        prompter: nobody,
        acceptNewHostKey: false,
        agentSocket: undefined,
      });
      const pending = s.exec("sleep 60");
      proxy.cut();
      await expect(pending).rejects.toBeInstanceOf(RemoteError);
      await expect(s.exec("true")).rejects.toThrow("lost");
      await s.close();
    } finally {
      await proxy.close();
    }
  });

  test("a silent link (nothing forwarded any more) is noticed by keepalives", async () => {
    const proxy = await startTestProxy(c.keyPort);
    try {
      const s = await openSession({
        target: targetFor(c, proxy.port, { hostKeyAlias: `[${c.host}]:${c.keyPort}` }),
        otpCommand: null,
        prompter: nobody,
        acceptNewHostKey: false,
        agentSocket: undefined,
        keepaliveIntervalMs: 200,
        keepaliveCountMax: 2,
      });
      const pending = s.exec("sleep 60");
      proxy.freeze();
      await expect(pending).rejects.toThrow("no answer to keepalives");
      await s.close();
    } finally {
      await proxy.close();
    }
  });
});
