import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  appendKnownHost,
  checkHostKey,
  keyTypeOfBlob,
  lookupHostKeys,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  readKnownHostsFiles,
  sha256Fingerprint,
} from "../../src/ssh/knownHosts.ts";

const fx = (name: string) => join(import.meta.dirname, "fixtures", name);
const blob = (name: string) => Buffer.from(readFileSync(fx(name), "utf8").split(" ")[1]!, "base64");
const ed = blob("hostkey_ed25519.pub");
const rsa = blob("hostkey_rsa.pub");
const ecdsa = blob("hostkey_ecdsa.pub");
const other = blob("otherkey_ed25519.pub");

describe("parseKnownHosts", () => {
  const { entries, problems } = parseKnownHosts(readFileSync(fx("known_hosts"), "utf8"), "kh");

  test("reads entries, markers and reports the malformed line", () => {
    expect(entries.map((e) => [e.line, e.marker, e.keyType])).toEqual([
      [2, null, "ssh-ed25519"],
      [3, null, "ssh-rsa"],
      [4, null, "ecdsa-sha2-nistp256"],
      [5, "revoked", "ssh-ed25519"],
      [6, "cert-authority", "ssh-ed25519"],
      [8, null, "ssh-ed25519"],
    ]);
    expect(problems).toEqual([{ file: "kh", line: 7, message: "expected: hosts key-type base64-key" }]);
  });

  test("a key blob that does not match its type is a problem, not an entry", () => {
    const r = parseKnownHosts(`h ssh-rsa ${ed.toString("base64")}\n@weird h ssh-ed25519 AAAA\n`, "f");
    expect(r.entries).toEqual([]);
    expect(r.problems.map((p) => p.line)).toEqual([1, 2]);
  });

  test.each([
    ["cluster.example.org", 22, ["ssh-ed25519"]],
    ["CLUSTER.example.org", 22, ["ssh-ed25519"]],
    ["10.0.0.5", 22, ["ssh-ed25519"]],
    ["cluster.example.org", 2223, ["ssh-rsa"]],
    ["login1.lcrc.anl.gov", 22, ["ecdsa-sha2-nistp256"]],
    ["bad.lcrc.anl.gov", 22, []],
    ["127.0.0.1", 2222, ["ssh-ed25519"]],
    ["127.0.0.1", 22, []],
    ["elsewhere.example.org", 22, []],
  ] as const)("lookup %s:%d", (host, port, types) => {
    expect(lookupHostKeys(entries, host, port).map((e) => e.keyType)).toEqual([...types]);
  });

  test("hashed entries (ssh-keygen -H) match the same names", () => {
    const hashed = parseKnownHosts(readFileSync(fx("known_hosts.hashed"), "utf8"), "h").entries;
    expect(hashed.every((e) => e.patterns[0]?.kind === "hashed")).toBe(true);
    expect(lookupHostKeys(hashed, "cluster.example.org", 22).length).toBe(1);
    expect(lookupHostKeys(hashed, "10.0.0.5", 22).length).toBe(1);
    expect(lookupHostKeys(hashed, "cluster.example.org", 2223).map((e) => e.keyType)).toEqual(["ssh-rsa"]);
    expect(lookupHostKeys(hashed, "127.0.0.1", 2222).length).toBe(1);
    expect(lookupHostKeys(hashed, "127.0.0.1", 2223)).toEqual([]);
  });
});

describe("fingerprints and key types", () => {
  test("sha256Fingerprint matches ssh-keygen -l", () => {
    const expected = readFileSync(fx("fingerprints.txt"), "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(" ")[1]);
    expect([ed, rsa, ecdsa].map(sha256Fingerprint)).toEqual(expected as string[]);
  });
  test("keyTypeOfBlob", () => {
    expect([ed, rsa, ecdsa].map(keyTypeOfBlob)).toEqual(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"]);
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBe("");
  });
});

describe("checkHostKey", () => {
  const { entries } = parseKnownHosts(readFileSync(fx("known_hosts"), "utf8"), "kh");
  test("known", () => {
    const r = checkHostKey(entries, "cluster.example.org", 2223, rsa);
    expect(r.status).toBe("known");
  });
  test("changed: same type, other key; names file and line", () => {
    const changed = Buffer.from(ed);
    changed[changed.length - 1]! ^= 1;
    const r = checkHostKey(entries, "127.0.0.1", 2222, changed);
    expect(r.status).toBe("changed");
    if (r.status === "changed") expect([r.entry.file, r.entry.line]).toEqual(["kh", 8]);
  });
  test("unknown, with the other known types listed", () => {
    const r = checkHostKey(entries, "cluster.example.org", 2223, ed);
    expect(r).toMatchObject({ status: "unknown", keyType: "ssh-ed25519", otherKeyTypes: ["ssh-rsa"] });
    const none = checkHostKey(entries, "new.example.net", 22, ed);
    expect(none).toMatchObject({ status: "unknown", otherKeyTypes: [], fingerprint: sha256Fingerprint(ed) });
  });
  test("revoked wins over everything", () => {
    expect(checkHostKey(entries, "anything", 22, other).status).toBe("revoked");
  });
  test("host key algorithms: known types first, RSA as its SHA-2 signatures", () => {
    expect(preferredHostKeyAlgorithms(entries, "cluster.example.org", 2223)).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(preferredHostKeyAlgorithms(entries, "nowhere", 22)).toEqual([]);
  });
});

describe("appendKnownHost", () => {
  test("creates the file, keeps earlier lines, hashes when asked, and the result reads back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chasqui-kh-"));
    try {
      const file = join(dir, "sub", "known_hosts");
      await appendKnownHost(file, "127.0.0.1", 2223, ed);
      writeFileSync(file, `${readFileSync(file, "utf8")}# no newline at end`);
      await appendKnownHost(file, "Host.Example.org", 22, rsa, { hash: true });
      const text = readFileSync(file, "utf8");
      const lines = text.trimEnd().split("\n");
      expect(lines[0]).toBe(`[127.0.0.1]:2223 ssh-ed25519 ${ed.toString("base64")}`);
      expect(lines[1]).toBe("# no newline at end");
      expect(lines[2]).toMatch(/^\|1\|[^|]+\|[^ ]+ ssh-rsa /);
      expect(text.includes("example.org")).toBe(false);
      const { entries } = await readKnownHostsFiles([file, join(dir, "missing")]);
      expect(checkHostKey(entries, "127.0.0.1", 2223, ed).status).toBe("known");
      expect(checkHostKey(entries, "host.example.org", 22, rsa).status).toBe("known");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
