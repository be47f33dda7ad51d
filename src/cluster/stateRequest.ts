// The one request every sync makes after uploading: builds its input and splits its reply.

import type { Config } from "../core/config.ts";
import { shellQuote } from "../core/layout.ts";
import { agentConfText } from "../core/protocol.ts";
import agentScript from "./kit/agent.sh" with { type: "text" };
import stateScript from "./kit/state.sh" with { type: "text" };

export interface StateRequest {
  remoteDirSh: string;
  workRootSh: string;
  offset: number;
  head: string | null;
  config: Pick<Config, "scheduler" | "max_queued" | "max_running" | "trigger_host">;
  /** `agent.sh cancel` arguments (ID or ID=SCHEDULER_ID) for `cancel --next-sync`, done first. */
  cancel?: readonly string[];
  /** chasqui's open jobs (ID=SCHEDULER_ID, or ID), whose fate the scheduler snapshot asks about. */
  open?: readonly string[];
  /** Jobs forgotten with `rm --remote`: their folders and files on the cluster go. */
  remove?: readonly string[];
}

function header(
  req: Omit<StateRequest, "offset" | "head"> & { offset?: number; head?: string | null },
): string {
  return [
    `CANCEL=${shellQuote((req.cancel ?? []).join("\n"))}`,
    `OPEN=${shellQuote((req.open ?? []).join("\n"))}`,
    `REMOVE=${shellQuote((req.remove ?? []).join("\n"))}`,
    `R=${req.remoteDirSh}`,
    `W=${req.workRootSh}`,
    `OFFSET=${req.offset ?? 0}`,
    `HEAD=${shellQuote(req.head ?? "")}`,
    `CONF=${shellQuote(agentConfText(req.config))}`,
    `AGENT_B64=${Buffer.from(agentScript).toString("base64")}`,
  ].join("\n");
}

export function stateInput(req: StateRequest): Buffer {
  return Buffer.from(`${header(req)}\n${stateScript}\nmain; exit $?\n`);
}

/** Input for `chasqui cancel`'s one request: deploy the agent if needed, then `agent.sh cancel`. */
export function cancelInput(
  req: Omit<StateRequest, "offset" | "head" | "cancel">,
  args: readonly string[],
): Buffer {
  return Buffer.from(
    `${header(req)}\n${stateScript}\ncancel_main ${args.map(shellQuote).join(" ")}; exit $?\n`,
  );
}
