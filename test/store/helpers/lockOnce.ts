// Test helper: `lockOnce.ts LOCKFILE WAIT_MS` takes the lock once; prints "acquired" (exit 0) or
// the LockBusyError message (exit 4).
import { isChasquiError } from "../../../src/errors.ts";
import { acquireLock } from "../../../src/store/lock.ts";

const [file, wait] = process.argv.slice(2);
if (!file || !wait) throw new Error("usage: lockOnce.ts LOCKFILE WAIT_MS");
try {
  const lock = await acquireLock(file, { waitMs: Number(wait), command: "lockOnce" });
  process.stdout.write("acquired\n");
  await lock.release();
} catch (e) {
  if (!isChasquiError(e)) throw e;
  process.stdout.write(`${e.message}\n`);
  process.exitCode = e.exitCode;
}
