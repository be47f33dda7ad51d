// known_hosts: parsing and host key checks (pure), plus reading and appending the files.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

type HostPattern =
  | { kind: "plain"; pattern: string; negated: boolean }
  | { kind: "hashed"; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  /** `@revoked` keys are refused; `@cert-authority` lines are kept but never match a plain host key. */
  marker: "cert-authority" | "revoked" | null;
  patterns: HostPattern[];
  keyType: string;
  key: Buffer;
}

export interface KnownHostsProblem {
  file: string;
  line: number;
  message: string;
}

export function parseKnownHosts(
  text: string,
  file: string,
): { entries: KnownHostEntry[]; problems: KnownHostsProblem[] } {
  const entries: KnownHostEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const fields = trimmed.split(/[ \t]+/);
    let marker: KnownHostEntry["marker"] = null;
    if (fields[0]?.startsWith("@")) {
      const m = fields.shift();
      if (m === "@cert-authority") marker = "cert-authority";
      else if (m === "@revoked") marker = "revoked";
      else {
        problems.push({ file, line, message: `unknown marker ${m}` });
        return;
      }
    }
    const [hosts, keyType, b64] = fields;
    if (hosts === undefined || keyType === undefined || b64 === undefined) {
      problems.push({ file, line, message: "expected: hosts key-type base64-key" });
      return;
    }
    const key = Buffer.from(b64, "base64");
    if (key.length === 0 || keyTypeOfBlob(key) !== keyType) {
      problems.push({ file, line, message: `key does not decode as ${keyType}` });
      return;
    }
    const patterns = parseHostPatterns(hosts);
    if (patterns === null) {
      problems.push({ file, line, message: "malformed hashed host name" });
      return;
    }
    entries.push({ file, line, marker, patterns, keyType, key });
  });
  return { entries, problems };
}

function parseHostPatterns(field: string): HostPattern[] | null {
  if (field.startsWith("|")) {
    const m = /^\|1\|([^|]+)\|([^|]+)$/.exec(field);
    if (!m) return null;
    const salt = Buffer.from(m[1]!, "base64");
    const hash = Buffer.from(m[2]!, "base64");
    if (salt.length !== 20 || hash.length !== 20) return null;
    return [{ kind: "hashed", salt, hash }];
  }
  return field
    .split(",")
    .filter((p) => p !== "")
    .map((p) =>
      p.startsWith("!")
        ? { kind: "plain", pattern: p.slice(1).toLowerCase(), negated: true }
        : { kind: "plain", pattern: p.toLowerCase(), negated: false },
    );
}

/** The name OpenSSH looks up: `host`, or `[host]:port` when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
    "s",
  );
  return re.test(name);
}

function entryMatches(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  let matched = false;
  for (const p of entry.patterns) {
    if (p.kind === "hashed") {
      const h = createHmac("sha1", p.salt).update(name).digest();
      if (timingSafeEqual(h, p.hash)) matched = true;
    } else if (globMatch(p.pattern, name)) {
      if (p.negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Plain host keys recorded for host:port (no cert authorities, no revocations). */
export function lookupHostKeys(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): KnownHostEntry[] {
  return entries.filter((e) => e.marker === null && entryMatches(e, host, port));
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return "";
  const n = blob.readUInt32BE(0);
  if (n > 64 || blob.length < 4 + n) return "";
  return blob.subarray(4, 4 + n).toString("latin1");
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -l` and ssh print it. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

export type HostKeyCheck =
  | { status: "known"; entry: KnownHostEntry }
  | { status: "unknown"; keyType: string; fingerprint: string; otherKeyTypes: string[] }
  | { status: "changed"; keyType: string; fingerprint: string; entry: KnownHostEntry }
  | { status: "revoked"; keyType: string; fingerprint: string; entry: KnownHostEntry };

/** Decide about the key a server presented for host:port. */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  blob: Buffer,
): HostKeyCheck {
  const keyType = keyTypeOfBlob(blob);
  const fingerprint = sha256Fingerprint(blob);
  const revoked = entries.find((e) => e.marker === "revoked" && e.key.equals(blob));
  if (revoked) return { status: "revoked", keyType, fingerprint, entry: revoked };
  const forHost = lookupHostKeys(entries, host, port);
  const same = forHost.find((e) => e.key.equals(blob));
  if (same) return { status: "known", entry: same };
  const sameType = forHost.find((e) => e.keyType === keyType);
  if (sameType) return { status: "changed", keyType, fingerprint, entry: sameType };
  return {
    status: "unknown",
    keyType,
    fingerprint,
    otherKeyTypes: [...new Set(forHost.map((e) => e.keyType))],
  };
}

/** ssh2 server host key algorithms this client can verify. */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * Host key algorithms to offer first: the types already known for the host. ssh2 offers ed25519 first,
 * and a server that has both would then present a key we cannot check against an RSA-only entry.
 */
export function preferredHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): string[] {
  const out: string[] = [];
  for (const e of lookupHostKeys(entries, host, port)) {
    for (const a of HOST_KEY_ALGORITHMS[e.keyType] ?? []) if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** Read and parse every file that exists (missing files are normal: no known hosts yet). */
export async function readKnownHostsFiles(
  files: readonly string[],
): Promise<{ entries: KnownHostEntry[]; problems: KnownHostsProblem[] }> {
  const entries: KnownHostEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const parsed = parseKnownHosts(text, file);
    entries.push(...parsed.entries);
    problems.push(...parsed.problems);
  }
  return { entries, problems };
}

/** One known_hosts line for host:port, hashed (`|1|salt|hash`) when asked, as HashKnownHosts does. */
function formatKnownHostLine(host: string, port: number, blob: Buffer, hash = false): string {
  const name = knownHostsName(host, port);
  let field = name;
  if (hash) {
    const salt = randomBytes(20);
    field = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
  }
  return `${field} ${keyTypeOfBlob(blob)} ${blob.toString("base64")}`;
}

/** Append a key for host:port, creating the file (0600) and its folder (0700) when missing. */
export async function appendKnownHost(
  file: string,
  host: string,
  port: number,
  blob: Buffer,
  opts: { hash?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = "";
  try {
    const existing = await readFile(file);
    if (existing.length > 0 && existing[existing.length - 1] !== 0x0a) prefix = "\n";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await appendFile(file, `${prefix}${formatKnownHostLine(host, port, blob, opts.hash)}\n`, { mode: 0o600 });
}
