// The remote agent as deployed by sync: the script's text and the version on its line 2.
import AGENT_SCRIPT from "./agent.sh" with { type: "text" };

export { AGENT_SCRIPT };

/** The version a deployed agent.sh states on line 2 (`# chasqui-agent-version: V`), or null. */
export function parseAgentVersion(script: string): string | null {
  const line = script.split("\n", 2)[1] ?? "";
  const m = /^# chasqui-agent-version: (\S+)\s*$/.exec(line);
  return m?.[1] ?? null;
}

const version = parseAgentVersion(AGENT_SCRIPT);
if (version === null) throw new Error("agent.sh: line 2 must be '# chasqui-agent-version: <V>'");
export const AGENT_VERSION: string = version;
