import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyHostKey } from "../../src/ssh/hostKey.ts";
import { parseKnownHosts, readKnownHostsFiles } from "../../src/ssh/knownHosts.ts";
import type { Prompter } from "../../src/ssh/prompter.ts";
import type { ResolvedHop } from "../../src/ssh/resolve.ts";

const fx = (name: string) => join(import.meta.dirname, "fixtures", name);
const blob = (name: string) => Buffer.from(readFileSync(fx(name), "utf8").split(" ")[1]!, "base64");
const ed = blob("hostkey_ed25519.pub");
const rsa = blob("hostkey_rsa.pub");
const dir = mkdtempSync(join(tmpdir(), "chasqui-hk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hop(file: string, over: Partial<ResolvedHop> = {}): ResolvedHop {
  return {
    alias: "c",
    hostname: "127.0.0.1",
    port: 2223,
    user: "u",
    identityFiles: [],
    knownHostsFiles: [file],
    hashKnownHosts: false,
    hostKeyAlias: null,
    ...over,
  };
}
function prompter(interactive: boolean, answer = false): Prompter & { questions: string[] } {
  const questions: string[] = [];
  return {
    interactive,
    questions,
    ask: async () => "",
    confirm: async (t) => {
      questions.push(t);
      return answer;
    },
    info: () => {},
  };
}

describe("verifyHostKey", () => {
  const file = join(dir, "known_hosts");
  writeFileSync(file, `[127.0.0.1]:2223 ssh-ed25519 ${ed.toString("base64")}\n`);
  const entries = parseKnownHosts(readFileSync(file, "utf8"), file).entries;

  test("known key: nothing asked, nothing written", async () => {
    const p = prompter(true);
    expect(
      await verifyHostKey({ hop: hop(file), entries, key: ed, prompter: p, acceptNewHostKey: false }),
    ).toBeNull();
    expect(p.questions).toEqual([]);
  });

  test("changed key is refused even with acceptNewHostKey, naming file and line", async () => {
    const changed = Buffer.from(ed);
    changed[changed.length - 1]! ^= 1;
    const p = verifyHostKey({
      hop: hop(file),
      entries,
      key: changed,
      prompter: prompter(true, true),
      acceptNewHostKey: true,
    });
    await expect(p).rejects.toMatchObject({ exitCode: 1 });
    const err = (await p.catch((e) => e)) as Error;
    expect(err.message).toContain("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!");
    expect(err.message).toContain(`Offending ED25519 key in ${file}:1`);
  });

  test("unknown host without a terminal: exit 3 with the fingerprint", async () => {
    const p = verifyHostKey({
      hop: hop(file, { port: 2999 }),
      entries,
      key: ed,
      prompter: prompter(false),
      acceptNewHostKey: false,
    });
    await expect(p).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringContaining("SHA256:7N61+PL3wojq5Kzn8KZnthZFTBX3MqJw+BC5xOMQuBE"),
    });
  });

  test("unknown host: the person is asked with the fingerprint; no means refused", async () => {
    const p = prompter(true, false);
    const r = verifyHostKey({
      hop: hop(file, { port: 2999 }),
      entries,
      key: ed,
      prompter: p,
      acceptNewHostKey: false,
    });
    await expect(r).rejects.toMatchObject({ exitCode: 1 });
    expect(p.questions[0]).toContain("The authenticity of host '[127.0.0.1]:2999' can't be established.");
    expect(p.questions[0]).toContain(
      "ED25519 key fingerprint is SHA256:7N61+PL3wojq5Kzn8KZnthZFTBX3MqJw+BC5xOMQuBE.",
    );
  });

  test("acceptNewHostKey records a new host (hashed when configured) and it is known afterwards", async () => {
    const f2 = join(dir, "kh2");
    const added = await verifyHostKey({
      hop: hop(f2, { port: 2400, hashKnownHosts: true }),
      entries: [],
      key: rsa,
      prompter: prompter(false),
      acceptNewHostKey: true,
    });
    expect(added).toMatchObject({ host: "127.0.0.1", port: 2400, file: f2 });
    expect(readFileSync(f2, "utf8")).toStartWith("|1|");
    const again = (await readKnownHostsFiles([f2])).entries;
    expect(
      await verifyHostKey({
        hop: hop(f2, { port: 2400 }),
        entries: again,
        key: rsa,
        prompter: prompter(false),
        acceptNewHostKey: false,
      }),
    ).toBeNull();
  });

  test("a new key type for a known host is not accepted silently", async () => {
    const p = verifyHostKey({
      hop: hop(file),
      entries,
      key: rsa,
      prompter: prompter(false),
      acceptNewHostKey: true,
    });
    await expect(p).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringContaining("known by other key types (ssh-ed25519)"),
    });
  });

  test("HostKeyAlias is looked up without the port", async () => {
    const f3 = join(dir, "kh3");
    writeFileSync(f3, `cluster-alias ssh-ed25519 ${ed.toString("base64")}\n`);
    const e3 = parseKnownHosts(readFileSync(f3, "utf8"), f3).entries;
    expect(
      await verifyHostKey({
        hop: hop(f3, { hostKeyAlias: "cluster-alias" }),
        entries: e3,
        key: ed,
        prompter: prompter(false),
        acceptNewHostKey: false,
      }),
    ).toBeNull();
  });
});
