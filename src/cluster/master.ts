// The OpenSSH master connection of this CHASQUI_HOME: where its socket is, whether it is live, and
// until when (`chasqui connect --for` writes ssh/master.json; a master past its deadline is
// closed by the first command that looks at it).
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../core/config.ts";
import { type ControlPath, closeMaster, controlPathFor, masterIsLive } from "../ssh/openssh.ts";

interface MasterRecord {
  control_path: string;
  host: string;
  opened_at: string;
  until: string;
}

export interface MasterState extends ControlPath {
  live: boolean;
  /** The deadline `chasqui connect` gave it; null for a master opened some other way. */
  until: string | null;
}

const recordFile = (home: string) => path.join(home, "ssh", "master.json");

async function readRecord(home: string): Promise<MasterRecord | null> {
  try {
    const r = JSON.parse(await fs.readFile(recordFile(home), "utf8")) as MasterRecord;
    return typeof r.control_path === "string" && typeof r.until === "string" ? r : null;
  } catch {
    return null;
  }
}

export async function writeMasterRecord(home: string, record: MasterRecord): Promise<void> {
  await fs.mkdir(path.dirname(recordFile(home)), { recursive: true, mode: 0o700 });
  const tmp = `${recordFile(home)}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, recordFile(home));
}

export async function removeMasterRecord(home: string): Promise<void> {
  await fs.rm(recordFile(home), { force: true });
}

/** Whether a master for the config's host is live; one past the deadline it was opened for is
 * closed here, so that "--for 12h" means twelve hours whatever uses it in between. */
export async function masterState(config: Config, home: string, now: Date): Promise<MasterState> {
  const cp = await controlPathFor(config, home);
  const record = await readRecord(home);
  const mine = record !== null && record.control_path === cp.path ? record : null;
  if (mine && Date.parse(mine.until) <= now.getTime()) {
    await closeMaster(config, cp.path);
    await removeMasterRecord(home);
    return { ...cp, live: false, until: null };
  }
  const live = await masterIsLive(config, cp.path);
  return { ...cp, live, until: live ? (mine?.until ?? null) : null };
}
