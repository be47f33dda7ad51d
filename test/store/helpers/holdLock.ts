// Test helper: `holdLock.ts LOCKFILE` takes the store lock, prints "held", and keeps it until its
// stdin closes (or it is killed): another chasqui at work.
import { acquireLock } from "../../../src/store/lock.ts";

const [file] = process.argv.slice(2);
if (!file) throw new Error("usage: holdLock.ts LOCKFILE");
const lock = await acquireLock(file, { waitMs: 5_000, command: "holdLock" });
process.stdout.write("held\n");
process.stdin.resume();
await new Promise((done) => process.stdin.on("end", done));
await lock.release();
