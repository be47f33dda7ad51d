// Opening the one session a command needs, from the config: resolve the target as OpenSSH would,
// then log in once. Shared by sync, cancel, download and doctor: the only way in to the cluster.
import type { Config } from "../core/config.ts";
import { remotePaths } from "../core/layout.ts";
import type { Prompter } from "../ssh/prompter.ts";
import { defaultResolveDeps, type ResolvedTarget, resolveTarget } from "../ssh/resolve.ts";
import { openSession, type Session, type SessionEvent } from "../ssh/session.ts";

export interface ConnectOptions {
  /** CHASQUI_HOME: where chasqui's own master socket lives. */
  home: string;
  prompter: Prompter;
  acceptNewHostKey: boolean;
  events?: (e: SessionEvent) => void;
}

/** Where a login goes, as OpenSSH would resolve it (ProxyJump hops first). */
export function clusterTarget(config: Config): Promise<ResolvedTarget> {
  return resolveTarget(config, defaultResolveDeps());
}

export async function connectCluster(
  config: Config,
  opts: ConnectOptions,
  target?: ResolvedTarget,
): Promise<Session> {
  return openSession({
    target: target ?? (await clusterTarget(config)),
    otpCommand: config.otp_command,
    prompter: opts.prompter,
    acceptNewHostKey: opts.acceptNewHostKey,
    ...(opts.events ? { events: opts.events } : {}),
  });
}

/** What agent.conf carries: the scheduler kind, the queue limits, where jobs run the agent. */
export function agentLimits(
  config: Config,
): Pick<Config, "scheduler" | "max_queued" | "max_running" | "trigger_host"> {
  return {
    scheduler: config.scheduler,
    max_queued: config.max_queued,
    max_running: config.max_running,
    trigger_host: config.trigger_host,
  };
}

/** chasqui's remote folder and the work-folder root, as bash words for the remote scripts. */
export function remoteDirs(config: Config): { remoteDirSh: string; workRootSh: string } {
  const paths = remotePaths(config, "-");
  return { remoteDirSh: paths.remote_dir_sh, workRootSh: paths.work_root_sh };
}
