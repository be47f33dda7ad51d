// The state request's cluster side (state.sh), run for real in a sandbox: where agent.log is read
// from after the sync's last look, when the log grew, rotated to agent.log.1, or was replaced.

import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { stateInput } from "../../src/cluster/stateRequest.ts";
import { parseAgentLog } from "../../src/core/agentLog.ts";
import { shellQuote } from "../../src/core/layout.ts";
import { parseKeyValues, splitSections } from "../../src/core/protocol.ts";
import { sandboxesPerTest } from "./helpers.ts";

const box = sandboxesPerTest();
const line = (event: string, id: string, detail: string) =>
  `2026-12-01T10:00:00Z\t${event}\t${id}\t${detail}\n`;

/** One state request against the sandbox, from the cursor {offset, head}. */
function stateReply(R: string, W: string, env: Record<string, string>, offset: number, head: string | null) {
  const r = spawnSync("bash", ["-s"], {
    input: stateInput({
      remoteDirSh: shellQuote(R),
      workRootSh: shellQuote(W),
      offset,
      head,
      config: { scheduler: "pbs", max_queued: 40, max_running: 30, trigger_host: null },
    }),
    env,
  });
  expect(r.status).toBe(0);
  const sections = splitSections(r.stdout);
  const meta = parseKeyValues(sections.get("meta")!.toString("utf8"));
  const how = meta.get("log_read")!;
  const prev = parseAgentLog(sections.get("log_prev")!, offset);
  const cur = parseAgentLog(sections.get("log")!, how === "continue" ? offset : 0);
  return {
    how,
    ids: [...prev.events, ...cur.events].map((e) => e.jobId),
    next: { offset: cur.nextOffset, head: sections.get("log_head")!.toString("utf8") || null },
  };
}

describe("reading agent.log from the sync's cursor", () => {
  test("first read, then only what was appended, then across a rotation, then after a replacement", () => {
    const sb = box();
    const log = path.join(sb.R, "agent.log");
    fs.writeFileSync(log, line("SUBMIT", "a", "1.s") + line("SUBMIT", "b", "2.s"));
    const first = stateReply(sb.R, sb.work, sb.env, 0, null);
    expect(first).toMatchObject({ how: "first", ids: ["a", "b"] });

    fs.appendFileSync(log, line("SUBMIT", "c", "3.s"));
    const grown = stateReply(sb.R, sb.work, sb.env, first.next.offset, first.next.head);
    expect(grown).toMatchObject({ how: "continue", ids: ["c"] });

    // The agent rotated: the unread tail of agent.log.1 comes first, then all of the new log.
    fs.appendFileSync(log, line("SUBMIT", "d", "4.s"));
    fs.renameSync(log, `${log}.1`);
    fs.writeFileSync(log, line("SUBMIT", "e", "5.s"));
    const rotated = stateReply(sb.R, sb.work, sb.env, grown.next.offset, grown.next.head);
    expect(rotated).toMatchObject({ how: "rotated", ids: ["d", "e"] });

    // Replaced by hand (neither file starts as the cursor knew it): read again from the start;
    // the events are applied idempotently, so nothing is lost and nothing happens twice.
    fs.rmSync(`${log}.1`);
    fs.writeFileSync(log, line("SUBMIT", "f", "6.s"));
    const replaced = stateReply(sb.R, sb.work, sb.env, rotated.next.offset, rotated.next.head);
    expect(replaced).toMatchObject({ how: "restart", ids: ["f"] });

    // A half-written last line is left for the next read.
    fs.appendFileSync(log, "2026-12-01T10:00:00Z\tSUBMIT\tg\t7");
    const partial = stateReply(sb.R, sb.work, sb.env, replaced.next.offset, replaced.next.head);
    expect(partial).toMatchObject({ how: "continue", ids: [] });
    fs.appendFileSync(log, ".s\n");
    expect(stateReply(sb.R, sb.work, sb.env, partial.next.offset, partial.next.head).ids).toEqual(["g"]);
  });
});
