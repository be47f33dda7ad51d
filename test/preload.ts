// Test defaults: edge tests talk to real daemons, so the default per-test timeout is generous.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
