// A small streaming ustar codec (pax and GNU long names), read and written by GNU tar on the cluster.
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ChasquiError } from "../errors.ts";

export type TarErrorKind = "truncated" | "corrupt" | "unsafe" | "invalid";

/** A tar stream we cannot read or an entry we will not write. */
export class TarError extends ChasquiError {
  readonly kind: TarErrorKind;
  constructor(kind: TarErrorKind, message: string, hint?: string) {
    super(message, hint === undefined ? {} : { hint });
    this.kind = kind;
  }
}

interface TarEntryCommon {
  /** Relative, "/"-separated; no "..". */
  path: string;
  mode?: number;
  /** Default: the time of packing. */
  mtime?: Date;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/** A file body: bytes in memory, or chunks produced on demand (exactly `size` bytes in total). */
type TarFileEntry = TarEntryCommon & { type: "file" } & (
    | { body: Uint8Array | string; size?: undefined }
    | { body: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>; size: number }
  );

export type TarEntry =
  | TarFileEntry
  | (TarEntryCommon & { type: "directory" })
  /** Hard link: GNU tar links `path` to `linkname` (relative to where it extracts), which may already be on disk. */
  | (TarEntryCommon & { type: "link"; linkname: string })
  | (TarEntryCommon & { type: "symlink"; linkname: string });

type TarEntryType = "file" | "directory" | "link" | "symlink" | "other";

export interface TarHeader {
  /** Without "./" in front or "/" at the end; "." for the archive's root folder. */
  path: string;
  type: TarEntryType;
  /** The raw type flag ("0", "5", ...), for types we do not interpret. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string;
  uname: string;
  gname: string;
}

export interface TarItem {
  header: TarHeader;
  /** Read it (or not) before asking for the next item; what is left is skipped. */
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;
const RECORD = 20 * BLOCK; // GNU tar's default blocking factor
const MAX_META_SIZE = 1 << 20; // pax / GNU long-name bodies: anything bigger is not a name
const OCTAL_LIMIT = (w: number) => 8 ** (w - 1) - 1;

// ---------------------------------------------------------------------------------------------
// Packing

/** The archive as a stream of chunks; bodies given as functions are read only when their turn comes. */
export async function* packTar(
  entries: AsyncIterable<TarEntry> | Iterable<TarEntry>,
): AsyncGenerator<Buffer> {
  let written = 0;
  for await (const entry of entries) {
    const rel = checkedPath(entry.path, "entry");
    const size = entry.type === "file" ? fileSize(entry) : 0;
    for (const block of entryHeaders(entry, rel, size)) {
      written += block.length;
      yield block;
    }
    if (entry.type !== "file") continue;
    let sent = 0;
    if (typeof entry.body === "function") {
      for await (const chunk of entry.body()) {
        sent += chunk.length;
        if (sent > size) throw new TarError("invalid", `${rel}: body is longer than its size ${size}`);
        if (chunk.length > 0) yield asBuffer(chunk);
      }
      if (sent < size) throw new TarError("invalid", `${rel}: body ended at ${sent} of ${size} bytes`);
    } else {
      sent = size;
      if (size > 0) yield asBuffer(entry.body);
    }
    written += sent;
    const pad = padding(sent);
    if (pad > 0) {
      written += pad;
      yield Buffer.alloc(pad);
    }
  }
  // End of archive: two zero blocks, then zeros to the end of a record, as GNU tar writes it.
  const end = 2 * BLOCK + ((RECORD - ((written + 2 * BLOCK) % RECORD)) % RECORD);
  yield Buffer.alloc(end);
}

function fileSize(entry: TarFileEntry): number {
  if (typeof entry.body === "function") {
    const size = entry.size ?? -1;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TarError("invalid", `${entry.path}: a streamed body needs a size`);
    }
    return size;
  }
  return typeof entry.body === "string" ? Buffer.byteLength(entry.body) : entry.body.length;
}

function entryHeaders(entry: TarEntry, rel: string, size: number): Buffer[] {
  const name = entry.type === "directory" ? `${rel}/` : rel;
  const linkname = entry.type === "link" || entry.type === "symlink" ? entry.linkname : "";
  if (entry.type === "link") checkedPath(linkname, "hard link target");
  if ((entry.type === "link" || entry.type === "symlink") && linkname === "") {
    throw new TarError("invalid", `${rel}: empty link target`);
  }
  const mtimeMs = (entry.mtime ?? new Date()).getTime();
  const mtime = Math.floor(mtimeMs / 1000);
  const fields: HeaderFields = {
    name,
    prefix: "",
    mode: (entry.mode ?? defaultMode(entry.type)) & 0o7777,
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    size,
    mtime,
    typeflag: { file: "0", link: "1", symlink: "2", directory: "5" }[entry.type],
    linkname,
    uname: entry.uname ?? "",
    gname: entry.gname ?? "",
  };
  const pax: Record<string, string> = {};
  const split = splitUstarName(name);
  if (split) {
    fields.name = split.name;
    fields.prefix = split.prefix;
  } else {
    pax.path = name;
    fields.name = name; // cut to the field by encodeHeader; pax has the whole
  }
  if (Buffer.byteLength(linkname) > 100) {
    pax.linkpath = linkname;
    fields.linkname = linkname;
  }
  if (size > OCTAL_LIMIT(12)) {
    pax.size = String(size);
    fields.size = 0;
  }
  if (mtime < 0 || mtime > OCTAL_LIMIT(12)) {
    pax.mtime = String(mtime);
    fields.mtime = 0;
  }
  for (const key of ["uid", "gid"] as const) {
    if (fields[key] > OCTAL_LIMIT(8)) {
      pax[key] = String(fields[key]);
      fields[key] = 0;
    }
  }
  for (const key of ["uname", "gname"] as const) {
    if (Buffer.byteLength(fields[key]) > 32) {
      pax[key] = fields[key];
      fields[key] = "";
    }
  }
  const out: Buffer[] = [];
  if (Object.keys(pax).length > 0) {
    const body = encodePax(pax);
    const paxName = `PaxHeaders/${path.posix.basename(rel)}`;
    out.push(
      encodeHeader({ ...fields, name: paxName, prefix: "", size: body.length, typeflag: "x", linkname: "" }),
    );
    out.push(body, Buffer.alloc(padding(body.length)));
  }
  out.push(encodeHeader(fields));
  return out;
}

function defaultMode(type: TarEntry["type"]): number {
  return type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644;
}

interface HeaderFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
}

function encodeHeader(f: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, "utf8");
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, f.uid);
  writeOctal(b, 116, 8, f.gid);
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 1, "latin1");
  b.write(f.linkname, 157, 100, "utf8");
  b.write("ustar\u000000", 257, 8, "latin1");
  b.write(f.uname, 265, 32, "utf8");
  b.write(f.gname, 297, 32, "utf8");
  writeOctal(b, 329, 8, 0);
  writeOctal(b, 337, 8, 0);
  b.write(f.prefix, 345, 155, "utf8");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "latin1");
  return b;
}

function writeOctal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, "0")}\u0000`, offset, width, "latin1");
}

/** The ustar split of a long name into prefix (≤155 bytes) "/" name (≤100 bytes), if there is one. */
function splitUstarName(name: string): { prefix: string; name: string } | null {
  const bytes = Buffer.from(name);
  if (bytes.length <= 100) return { prefix: "", name };
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    if (bytes.length - i - 1 > 100) break; // the rest only gets longer
    if (i <= 155 && i < bytes.length - 1) {
      return { prefix: bytes.subarray(0, i).toString(), name: bytes.subarray(i + 1).toString() };
    }
  }
  return null;
}

function encodePax(records: Record<string, string>): Buffer {
  const parts = Object.entries(records).map(([key, value]) => {
    const rest = Buffer.byteLength(` ${key}=${value}\n`);
    const digits = String(rest).length;
    let len = rest + digits;
    if (String(len).length > digits) len = rest + String(len).length;
    return Buffer.from(`${len} ${key}=${value}\n`);
  });
  return Buffer.concat(parts);
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;
const asBuffer = (chunk: Uint8Array | string) =>
  typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);

/** Normalises a relative archive path; throws on absolute paths, "..", NUL or an empty name. */
function checkedPath(p: string, what: string): string {
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (p.startsWith("/") || parts.includes("..") || p.includes("\u0000") || parts.length === 0) {
    throw new TarError(
      "unsafe",
      `refusing ${what} path ${JSON.stringify(p)}: it must stay inside the archive`,
    );
  }
  return parts.join("/");
}

// ---------------------------------------------------------------------------------------------
// Unpacking

/** Reads from an async (or plain) iterable of chunks, whatever their size and boundaries. */
class ByteReader {
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #chunks: Buffer[] = [];
  #length = 0;
  #done = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#it =
      Symbol.asyncIterator in source
        ? source[Symbol.asyncIterator]()
        : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  async #pull(): Promise<boolean> {
    if (this.#done) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#done = true;
      return false;
    }
    if (r.value.length > 0) {
      this.#chunks.push(asBuffer(r.value));
      this.#length += r.value.length;
    }
    return true;
  }

  /** n bytes, or fewer if the stream ends first. */
  async exact(n: number): Promise<Buffer> {
    while (this.#length < n && (await this.#pull()));
    const take = Math.min(n, this.#length);
    const first = this.#chunks[0];
    let out: Buffer;
    if (first && first.length >= take) {
      out = first.subarray(0, take);
      this.#consumeFirst(take);
    } else {
      const all = Buffer.concat(this.#chunks, this.#length);
      out = all.subarray(0, take);
      const rest = all.subarray(take);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#length = rest.length;
    }
    this.position += take;
    return out;
  }

  /** Up to `max` bytes without copying, or null at the end of the stream. */
  async some(max: number): Promise<Buffer | null> {
    while (this.#length === 0) if (!(await this.#pull())) return null;
    const first = this.#chunks[0]!;
    const take = Math.min(max, first.length);
    const out = first.subarray(0, take);
    this.#consumeFirst(take);
    this.position += take;
    return out;
  }

  /** Skips n bytes; false if the stream ended first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      const c = await this.some(left);
      if (c === null) return false;
      left -= c.length;
    }
    return true;
  }

  async drain(): Promise<void> {
    this.#chunks = [];
    this.#length = 0;
    while (await this.#pull()) this.#chunks = [];
    this.#length = 0;
  }

  #consumeFirst(n: number): void {
    const first = this.#chunks[0]!;
    if (n === first.length) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#length -= n;
  }
}

/** The entries of a tar stream, in order. Throws TarError on a truncated or corrupt stream. */
export async function* unpackTar(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<TarItem> {
  const r = new ByteReader(source);
  const truncated = (where: string) =>
    new TarError(
      "truncated",
      `tar stream ended early (${where}, after ${r.position} bytes)`,
      "The transfer was cut off; nothing incomplete was kept. Try again.",
    );
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const at = r.position;
    const block = await r.exact(BLOCK);
    if (block.length < BLOCK)
      throw truncated(at === 0 && block.length === 0 ? "empty stream" : "in a header");
    if (block.every((byte) => byte === 0)) {
      await r.drain(); // the second zero block and the record padding
      return;
    }
    const raw = parseHeaderBlock(block, at);
    if (raw.typeflag === "x" || raw.typeflag === "g" || raw.typeflag === "L" || raw.typeflag === "K") {
      if (raw.size > MAX_META_SIZE)
        throw new TarError("corrupt", `tar header at byte ${at}: ${raw.size}-byte name`);
      const body = await r.exact(raw.size);
      if (body.length < raw.size || !(await r.skip(padding(raw.size))))
        throw truncated("in an extended header");
      if (raw.typeflag === "x") pax = { ...pax, ...parsePax(body, at) };
      else if (raw.typeflag === "g") globalPax = { ...globalPax, ...parsePax(body, at) };
      else if (raw.typeflag === "L") longName = cString(body);
      else longLink = cString(body);
      continue;
    }
    const ext = { ...globalPax, ...pax };
    const size = ext.size !== undefined ? Number(ext.size) : raw.size;
    const fullName = ext.path ?? longName ?? raw.name;
    let type: TarEntryType =
      raw.typeflag === "0" || raw.typeflag === "" || raw.typeflag === "7"
        ? "file"
        : raw.typeflag === "1"
          ? "link"
          : raw.typeflag === "2"
            ? "symlink"
            : raw.typeflag === "5"
              ? "directory"
              : "other";
    if (type === "file" && fullName.endsWith("/")) type = "directory"; // old tars
    const header: TarHeader = {
      path: normaliseName(fullName),
      type,
      typeflag: raw.typeflag,
      mode: raw.mode,
      uid: ext.uid !== undefined ? Number(ext.uid) : raw.uid,
      gid: ext.gid !== undefined ? Number(ext.gid) : raw.gid,
      size,
      mtime: new Date((ext.mtime !== undefined ? Number(ext.mtime) : raw.mtime) * 1000),
      linkname: ext.linkpath ?? longLink ?? raw.linkname,
      uname: ext.uname ?? raw.uname,
      gname: ext.gname ?? raw.gname,
    };
    if (!Number.isSafeInteger(size) || size < 0)
      throw new TarError("corrupt", `tar header at byte ${at}: bad size`);
    pax = {};
    longName = null;
    longLink = null;
    let remaining = size;
    const body = (async function* () {
      while (remaining > 0) {
        const chunk = await r.some(remaining);
        if (chunk === null) throw truncated(`in the body of ${header.path}`);
        remaining -= chunk.length;
        yield chunk;
      }
    })();
    yield { header, body };
    if (remaining > 0 && !(await r.skip(remaining))) throw truncated(`in the body of ${header.path}`);
    remaining = 0;
    if (!(await r.skip(padding(size)))) throw truncated(`after the body of ${header.path}`);
  }
}

interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
}

function parseHeaderBlock(b: Buffer, at: number): RawHeader {
  const corrupt = (why: string) =>
    new TarError("corrupt", `not a tar stream, or a corrupt one: ${why} in the header at byte ${at}`);
  const stored = parseNumber(b.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) throw corrupt("bad checksum");
  const magic = b.subarray(257, 263).toString("latin1");
  const name = cString(b.subarray(0, 100));
  // Only POSIX ustar has a prefix; old GNU headers keep other fields there.
  const prefix = magic === "ustar\u0000" ? cString(b.subarray(345, 500)) : "";
  const num = (start: number, width: number) => {
    const v = parseNumber(b.subarray(start, start + width));
    if (Number.isNaN(v)) throw corrupt(`bad number at offset ${start}`);
    return v;
  };
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: num(100, 8),
    uid: num(108, 8),
    gid: num(116, 8),
    size: num(124, 12),
    mtime: num(136, 12),
    typeflag: b[156] === 0 ? "" : String.fromCharCode(b[156]!),
    linkname: cString(b.subarray(157, 257)),
    uname: cString(b.subarray(265, 297)),
    gname: cString(b.subarray(297, 329)),
  };
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit set); NaN when neither. */
function parseNumber(field: Buffer): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    if (field[0] === 0xff) return Number.NaN; // negative: nothing we write or expect
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = field
    .toString("latin1")
    .replace(/[\u0000 ]+$/, "")
    .replace(/^ +/, "");
  if (s === "") return 0;
  return /^[0-7]+$/.test(s) ? Number.parseInt(s, 8) : Number.NaN;
}

function parsePax(body: Buffer, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    const len = space > pos ? Number(body.subarray(pos, space).toString("latin1")) : Number.NaN;
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw new TarError("corrupt", `corrupt pax header at byte ${at}`);
    }
    const record = body.subarray(space + 1, pos + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString("utf8");
}

function normaliseName(name: string): string {
  const parts = name.split("/").filter((s) => s !== "" && s !== ".");
  const joined = parts.join("/");
  return name.startsWith("/") ? `/${joined}` : joined === "" ? "." : joined;
}

// ---------------------------------------------------------------------------------------------
// Extracting

export interface ExtractOptions {
  /** Entries to keep; the rest are skipped. Default: all. */
  filter?: (header: TarHeader) => boolean;
  /** Whether an existing file at `path` (relative to destDir) may be replaced. Default: yes. */
  overwrite?: (path: string, header: TarHeader) => boolean;
}

export interface ExtractResult {
  /** Files, links and folders written, relative to destDir, in archive order. */
  written: string[];
  /** Entries left out by the filter, by `overwrite`, or of a type we do not extract. */
  skipped: string[];
}

/**
 * Extracts a tar stream under destDir. Each file is written to a temp name next to its final one
 * and renamed only when complete, so a truncated stream never leaves a partial file under a
 * final name. Refuses absolute paths, "..", links leading outside, and writing through symlinks.
 */
export async function extractTarTo(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  destDir: string,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const root = path.resolve(destDir);
  await fs.mkdir(root, { recursive: true });
  const result: ExtractResult = { written: [], skipped: [] };
  for await (const { header, body } of unpackTar(source)) {
    if (header.path === "." && header.type === "directory") continue;
    const rel = checkedPath(header.path, "entry");
    if (header.type === "other" || (opts.filter && !opts.filter(header))) {
      result.skipped.push(rel);
      continue;
    }
    const final = path.join(root, ...rel.split("/"));
    await assertNoSymlinkOnTheWay(root, rel);
    if (header.type === "directory") {
      await fs.mkdir(final, { recursive: true, mode: (header.mode & 0o777) | 0o700 });
      result.written.push(rel);
      continue;
    }
    await fs.mkdir(path.dirname(final), { recursive: true });
    if ((await exists(final)) && !(opts.overwrite?.(rel, header) ?? true)) {
      result.skipped.push(rel);
      continue;
    }
    const temp = path.join(
      path.dirname(final),
      `.${path.basename(final)}.${process.pid}.${randomBytes(6).toString("hex")}.part`,
    );
    try {
      if (header.type === "file") {
        await writeBody(temp, body);
        await fs.chmod(temp, header.mode & 0o777);
        await fs.utimes(temp, header.mtime, header.mtime);
      } else if (header.type === "link") {
        const target = checkedPath(header.linkname, "hard link target");
        await assertNoSymlinkOnTheWay(root, target);
        await fs.link(path.join(root, ...target.split("/")), temp);
      } else {
        assertSymlinkStaysInside(rel, header.linkname);
        await fs.symlink(header.linkname, temp);
      }
      await fs.rename(temp, final);
    } catch (e) {
      await fs.rm(temp, { force: true }).catch(() => {});
      throw e;
    }
    result.written.push(rel);
  }
  return result;
}

/**
 * A file entry written to a temp name beside `final` and renamed once whole: a stream cut in the
 * middle leaves the old file (or none) under the final name, never a truncated one.
 */
export async function writeFileEntryAtomically(
  final: string,
  header: Pick<TarHeader, "mode" | "mtime">,
  body: AsyncIterable<Buffer>,
): Promise<void> {
  const temp = path.join(
    path.dirname(final),
    `.${path.basename(final)}.${process.pid}.${randomBytes(6).toString("hex")}.part`,
  );
  try {
    await writeBody(temp, body, { sync: true });
    await fs.chmod(temp, header.mode & 0o777);
    await fs.utimes(temp, header.mtime, header.mtime);
    await fs.rename(temp, final);
  } catch (e) {
    await fs.rm(temp, { force: true }).catch(() => {});
    throw e;
  }
}

async function writeBody(
  file: string,
  body: AsyncIterable<Buffer>,
  opts: { sync?: boolean } = {},
): Promise<void> {
  const handle = await fs.open(file, "wx", 0o600);
  try {
    for await (const chunk of body) await handle.write(chunk);
    // On disk before the rename makes it visible under its final name.
    if (opts.sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** A symlink among the parents (from an earlier entry, or planted) could lead outside destDir. */
async function assertNoSymlinkOnTheWay(root: string, rel: string): Promise<void> {
  const parts = rel.split("/");
  let p = root;
  for (const part of parts.slice(0, -1)) {
    p = path.join(p, part);
    let st: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      st = await fs.lstat(p);
    } catch {
      return; // does not exist yet: we create it
    }
    if (st.isSymbolicLink())
      throw new TarError("unsafe", `refusing to write ${rel} through the symlink ${p}`);
  }
}

function assertSymlinkStaysInside(rel: string, target: string): void {
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  if (target.startsWith("/") || resolved === ".." || resolved.startsWith("../")) {
    throw new TarError("unsafe", `refusing symlink ${rel} -> ${target}: it leads outside the folder`);
  }
}
