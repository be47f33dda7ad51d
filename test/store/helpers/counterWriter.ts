// Test helper (runs under Bun or Deno): `counterWriter.ts HOME N TAG` does N store updates, each
// adding one to log_cursor.offset (the counter) and appending job TAG-i.
import { newJob } from "../../../src/core/job.ts";
import { openStore } from "../../../src/store/jobStore.ts";

const [home, count, tag] = process.argv.slice(2);
if (!home || !count || !tag) throw new Error("usage: counterWriter.ts HOME N TAG");
const store = openStore(home, { lockWaitMs: 120_000, command: `counterWriter ${tag}` });
for (let i = 0; i < Number(count); i++) {
  await store.update((data) => {
    data.log_cursor = { offset: (data.log_cursor?.offset ?? 0) + 1, head: null };
    data.jobs.push(
      newJob({ id: `${tag}-${i}`, name: tag, local_path: "/x", template: "t", vars: {}, now: new Date(0) }),
    );
  });
}
process.stdout.write("done\n");
