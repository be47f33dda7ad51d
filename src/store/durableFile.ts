// A lowdb adapter that survives crashes and concurrent writers: unique temp file, fsync, rename,
// fsync of the folder, and the previous good version kept as `<name>.bak`.
import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Adapter } from "lowdb";
import { errnoCode, FileError, StoreError } from "../errors.ts";

export interface DurableJsonFileOptions<T> {
  /**
   * Turns the parsed JSON into T (migrate, validate). It may throw a StoreError; the file is
   * never touched on the read path, whatever happens.
   */
  revive?: (raw: unknown, file: string) => T;
  /** The file's text for `data` (default: JSON indented by two spaces). */
  serialize?: (data: T) => string;
}

/** lowdb `Adapter` for one JSON file. Writers must hold a lock of their own (see lock.ts). */
export class DurableJsonFile<T> implements Adapter<T> {
  readonly file: string;
  readonly backupFile: string;
  readonly #revive: (raw: unknown, file: string) => T;
  readonly #serialize: (data: T) => string;

  constructor(file: string, opts: DurableJsonFileOptions<T> = {}) {
    this.file = path.resolve(file);
    this.backupFile = `${this.file}.bak`;
    this.#revive = opts.revive ?? ((raw) => raw as T);
    this.#serialize = opts.serialize ?? ((data) => `${JSON.stringify(data, null, 2)}\n`);
  }

  /** The parsed file, or null when it does not exist. */
  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return null;
      throw new FileError("read", this.file, e);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new StoreError(`${this.file} is corrupt (not valid JSON: ${errorMessage(e)})`, {
        cause: e,
        hint:
          `chasqui has not changed it. Fix it by hand, or restore the previous version from ` +
          `${this.backupFile} if it is there, then try again.`,
      });
    }
    return this.#revive(raw, this.file);
  }

  async write(data: T): Promise<void> {
    const text = this.#serialize(data);
    const dir = path.dirname(this.file);
    const temp = tempPathFor(this.file);
    try {
      const handle = await fs.open(temp, "wx", 0o600);
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.#keepBackup();
      await fs.rename(temp, this.file);
    } catch (e) {
      await fs.rm(temp, { force: true }).catch(() => {});
      throw new FileError("write", this.file, e);
    }
    await fsyncDir(dir);
  }

  /** `<file>.bak` becomes the current (soon previous) version, replaced atomically. */
  async #keepBackup(): Promise<void> {
    const temp = tempPathFor(this.backupFile);
    try {
      // A hard link costs nothing; the rename that follows leaves the old inode to the link.
      await fs.link(this.file, temp);
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT") return; // first write: nothing to keep
      if (code === "EEXIST") throw e;
      // File systems without hard links: copy (the copy is only a backup, no fsync needed).
      try {
        await fs.copyFile(this.file, temp, fsConstants.COPYFILE_EXCL);
        await fs.chmod(temp, 0o600);
      } catch (copyError) {
        await fs.rm(temp, { force: true }).catch(() => {});
        if (errnoCode(copyError) === "ENOENT") return;
        throw copyError;
      }
    }
    await fs.rename(temp, this.backupFile);
    // When the backup already was a link to this very file (a writer killed between its two
    // renames), rename(2) does nothing and leaves the temporary name behind.
    await fs.rm(temp, { force: true });
  }
}

/** `/dir/.name.<pid>.<random>.tmp`: unique per writer, so two processes never share one. */
export function tempPathFor(file: string): string {
  const dir = path.dirname(file);
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]+\.tmp$/;

/**
 * Removes temp files left in `dir` by processes that are dead on this host. Only files named
 * after one of `bases` are considered; a temp file of a live process is left alone.
 */
export async function removeStrayTempFiles(dir: string, bases: readonly string[]): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || !bases.includes(m[1]!)) continue;
    const pid = Number(m[2]);
    if (isProcessAlive(pid)) continue;
    const full = path.join(dir, name);
    await fs.rm(full, { force: true });
    removed.push(full);
  }
  return removed;
}

/** Whether `pid` names a live process on this host (EPERM: alive, owned by someone else). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === "EPERM";
  }
}

/** Makes a rename in `dir` durable. Some platforms cannot open a folder: then the rename must do. */
async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch (e) {
    const code = errnoCode(e);
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EACCES") throw e;
  } finally {
    await handle?.close();
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
