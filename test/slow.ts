// Tests that take a real minute of the scheduler's time (a walltime kill, a stopped controller, a
// long race) run only in the slow group: `bash test/run.sh --slow`, which CI runs.
import { test } from "bun:test";

export const SLOW = process.env.CHASQUI_SLOW_TESTS === "1";

/** `test`, skipped outside the slow group. */
export const slowTest = SLOW ? test : test.skip;
