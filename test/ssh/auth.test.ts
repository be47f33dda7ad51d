import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AnyAuthMethod, AuthenticationType, KeyboardInteractiveCallback, Prompt } from "ssh2";
import { AuthFlow, type AuthOptions, parsePrivateKey, runOtpCommand } from "../../src/ssh/auth.ts";
import type { Prompter } from "../../src/ssh/prompter.ts";

let dir = "";
let plainKey = "";
let encKey = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "chasqui-auth-"));
  plainKey = join(dir, "id_plain");
  encKey = join(dir, "id_enc");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", plainKey]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret", "-f", encKey]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Asked {
  text: string;
  echo: boolean;
}
function fakePrompter(
  interactive: boolean,
  answers: string[] = [],
): Prompter & { asked: Asked[]; infos: string[] } {
  const asked: Asked[] = [];
  const infos: string[] = [];
  return {
    interactive,
    asked,
    infos,
    ask: async (text, o) => {
      asked.push({ text, echo: o.echo });
      return answers.shift() ?? "";
    },
    confirm: async () => false,
    info: (t) => infos.push(t),
  };
}

function flow(over: Partial<AuthOptions>): AuthFlow {
  return new AuthFlow({
    username: "u",
    destination: "u@h:22",
    identityFiles: [],
    agentSocket: undefined,
    prompter: fakePrompter(false),
    otpCommand: null,
    listAgentKeys: async () => [],
    ...over,
  });
}

/** One authHandler call, as ssh2 makes it. */
function step(f: AuthFlow, methods: AuthenticationType[] | null, partial: boolean | null = false) {
  return new Promise<AnyAuthMethod | false>((resolve) => f.handler(methods, partial, resolve));
}

const kbd = (m: AnyAuthMethod | false) => {
  if (m === false || m.type !== "keyboard-interactive")
    throw new Error(`expected keyboard-interactive, got ${JSON.stringify(m)}`);
  return m;
};

function answer(
  m: AnyAuthMethod | false,
  prompts: Prompt[],
  name = "",
  instructions = "",
): Promise<string[]> {
  return new Promise((resolve) =>
    kbd(m).prompt(name, instructions, "", prompts, resolve as KeyboardInteractiveCallback),
  );
}

describe("AuthFlow", () => {
  test("asks with none first, then keys in order, then keyboard-interactive; each once", async () => {
    const f = flow({ identityFiles: [join(dir, "missing"), plainKey], otpCommand: "true" });
    expect(await step(f, null, null)).toEqual({ type: "none", username: "u" });
    const methods: AuthenticationType[] = ["publickey", "keyboard-interactive"];
    const first = await step(f, methods);
    expect(first).toMatchObject({ type: "publickey", username: "u" });
    expect(kbd(await step(f, methods)).type).toBe("keyboard-interactive");
    expect(await step(f, methods)).toBe(false);
    expect(f.tried.map((r) => r.method)).toEqual(["publickey", "keyboard-interactive"]);
    expect(f.succeeded).toEqual([]);
    const err = f.finalError();
    expect(err.exitCode).toBe(1);
    expect(err.message).toContain(`publickey (${plainKey})`);
    expect(err.message).toContain("Not retried");
  });

  test("a partial success records the method and moves on to what is left", async () => {
    const f = flow({ identityFiles: [plainKey], otpCommand: "true" });
    await step(f, null, null);
    await step(f, ["publickey"]);
    kbd(await step(f, ["keyboard-interactive"], true));
    f.markSuccess();
    expect(f.succeeded.map((r) => [r.method, r.via])).toEqual([
      ["publickey", plainKey],
      ["keyboard-interactive", "otp_command"],
    ]);
  });

  test("keyboard-interactive with no terminal and no otp_command: NeedsPersonError, nothing sent", async () => {
    const f = flow({ identityFiles: [plainKey] });
    await step(f, null, null);
    await step(f, ["publickey"]);
    expect(await step(f, ["keyboard-interactive"], true)).toBe(false);
    expect(f.finalError().exitCode).toBe(3);
    expect(f.tried.map((r) => r.method)).toEqual(["publickey"]);
  });

  test("prompts go to the person exactly as sent, hidden when echo is false", async () => {
    const p = fakePrompter(true, ["123456", "1"]);
    const f = flow({ prompter: p });
    await step(f, null, null);
    const m = await step(f, ["keyboard-interactive"]);
    const got = await answer(
      m,
      [
        { prompt: "Verification code: ", echo: false },
        { prompt: "Passcode or option (1-1):", echo: true },
      ],
      "Duo",
      "Two-factor login",
    );
    expect(got).toEqual(["123456", "1"]);
    expect(p.asked).toEqual([
      { text: "Verification code: ", echo: false },
      { text: "Passcode or option (1-1):", echo: true },
    ]);
    expect(p.infos).toEqual(["Duo\nTwo-factor login"]);
  });

  test("otp_command answers once; the same question again stops without a second code", async () => {
    let runs = 0;
    let aborted: Error | null = null;
    const f = flow({ otpCommand: "cmd", runOtp: async () => `${++runs}00000` });
    f.onAbort = (e) => {
      aborted = e;
    };
    await step(f, null, null);
    const m = await step(f, ["keyboard-interactive"]);
    const prompts = [{ prompt: "Verification code: ", echo: false }];
    expect(await answer(m, prompts)).toEqual(["100000"]);
    kbd(m).prompt("", "", "", prompts, () => {
      throw new Error("a second answer was sent");
    });
    const deadline = Date.now() + 5_000;
    while (aborted === null && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(runs).toBe(1);
    expect(aborted).not.toBeNull();
    expect(f.finalError().message).toContain("asked again");
  });

  test("encrypted identity without a terminal is skipped, then reported as needing a person", async () => {
    const f = flow({ identityFiles: [encKey] });
    await step(f, null, null);
    expect(await step(f, ["publickey"])).toBe(false);
    expect(f.finalError().exitCode).toBe(3);
    expect(f.finalError().message).toContain(encKey);
  });

  test("encrypted identity with a terminal: the passphrase is asked hidden, a wrong one again", async () => {
    const p = fakePrompter(true, ["wrong", "secret"]);
    const f = flow({ identityFiles: [encKey], prompter: p });
    await step(f, null, null);
    expect(await step(f, ["publickey"])).toMatchObject({ type: "publickey" });
    expect(p.asked).toEqual([
      { text: `Enter passphrase for key '${encKey}': `, echo: false },
      { text: `Enter passphrase for key '${encKey}': `, echo: false },
    ]);
  });

  test("parsePrivateKey tells encrypted keys apart", () => {
    const enc = readFileSync(encKey);
    expect(parsePrivateKey(enc, undefined)).toEqual({ key: null, encrypted: true });
    expect(parsePrivateKey(enc, "secret").key).not.toBeNull();
    expect(parsePrivateKey(Buffer.from("not a key"), undefined)).toEqual({ key: null, encrypted: false });
  });
});

describe("runOtpCommand", () => {
  test("trimmed stdout is the answer", async () => {
    expect(await runOtpCommand("printf ' 123456\\n'")).toBe("123456");
  });
  test("a failure says how, and never includes stdout", async () => {
    const p = runOtpCommand("echo 654321; echo broken >&2; exit 4");
    await expect(p).rejects.toThrow("otp_command failed (exit 4): broken");
    await p.catch((e: Error) => expect(e.message).not.toContain("654321"));
  });
});
