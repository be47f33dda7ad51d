// Test helper: `endlessWriter.ts HOME` appends job k to a store holding jobs 0..k-1 (counter
// log_cursor.offset = k), forever, until killed. Prints "ready" once started.
import { newJob } from "../../../src/core/job.ts";
import { openStore } from "../../../src/store/jobStore.ts";

const home = process.argv[2];
if (!home) throw new Error("usage: endlessWriter.ts HOME");
const store = openStore(home, { lockWaitMs: 30_000, command: "endlessWriter" });
process.stdout.write("ready\n");
for (;;) {
  await store.update((data) => {
    const k = data.log_cursor?.offset ?? 0;
    data.jobs.push(
      newJob({
        id: `j${k}`,
        name: "x".repeat(200),
        local_path: "/x",
        template: "t",
        vars: {},
        now: new Date(0),
      }),
    );
    data.log_cursor = { offset: k + 1, head: null };
  });
}
