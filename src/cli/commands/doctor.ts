// `chasqui doctor`: one login, then each check as a line that says OK or what to fix.

import { clusterTarget } from "../../cluster/connect.ts";
import { masterState } from "../../cluster/master.ts";
import { openCluster } from "../../cluster/sshCluster.ts";
import { readConfig } from "../../config/configFile.ts";
import type { Config } from "../../core/config.ts";
import { needsAccount } from "../../core/render.ts";
import { ChasquiError, ExitCode } from "../../errors.ts";
import { loadTemplate } from "../../templates/load.ts";
import { type CliContext, write } from "../context.ts";
import { createTerminalPrompter } from "../prompt.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Pure: what the scheduler said when asked (server, then the configured queue). */
export function schedulerChecks(config: Config, facts: Map<string, string>): Check[] {
  const get = (k: string) => facts.get(k) ?? "";
  if (!facts.has("server_rc")) return []; // no qstat/squeue: the command checks say so
  const checks: Check[] = [];
  const serverOk = get("server_rc") === "0";
  const asked = config.scheduler === "pbs" ? "qstat -B" : "squeue";
  checks.push({
    name: "scheduler",
    ok: serverOk,
    detail: serverOk
      ? `the server answers (${asked})`
      : `the server does not answer (${asked} exit ${get("server_rc")}${get("server_said") ? `: ${get("server_said")}` : ""}); nothing can be submitted or followed until it does`,
  });
  const queue = config.vars.queue ?? "";
  if (!serverOk || queue === "" || !facts.has("queue_rc")) return checks;
  const word = config.scheduler === "pbs" ? "queue" : "partition";
  const fix = `set the right one: chasqui init --force ... --set queue=NAME, or add --set queue=NAME`;
  if (get("queue_rc") !== "0") {
    const said = get("queue_said");
    checks.push({
      name: word,
      ok: false,
      detail: `unknown ${word} "${queue}"${said ? ` (${said})` : ""}; ${fix}`,
    });
  } else if (config.scheduler === "slurm") {
    const state = get("queue_state");
    checks.push({
      name: word,
      ok: state === "up",
      detail:
        state === "up"
          ? `${queue} is up`
          : `${queue} is ${state || "in an unknown state"}: jobs will not start`,
    });
  } else {
    const enabled = get("queue_enabled") === "yes";
    const started = get("queue_started") === "yes";
    checks.push({
      name: word,
      ok: enabled && started,
      detail:
        enabled && started
          ? `${queue} exists, enabled and started`
          : !enabled
            ? `${queue} is not enabled: the server refuses new jobs in it`
            : `${queue} is not started: jobs in it wait and never run`,
    });
  }
  return checks;
}

/** Whether a failed login was refused over the host key (unknown or changed) rather than auth. */
function hostKeyFailure(e: unknown): boolean {
  return e instanceof Error && /host key/i.test(e.message);
}

/** Pure: the checks from what the cluster reported. */
export function remoteChecks(config: Config, facts: Map<string, string>): Check[] {
  const get = (k: string) => facts.get(k) ?? "";
  const checks: Check[] = [];
  checks.push({
    name: "remote shell",
    ok: get("bash") !== "unknown",
    detail: `login shell ${get("login_shell")}, bash ${get("bash")}`,
  });
  const tools = config.scheduler === "pbs" ? ["qsub", "qstat", "qdel"] : ["sbatch", "squeue"];
  for (const t of tools) {
    const where = get(`cmd_${t}`);
    checks.push({
      name: t,
      ok: where !== "",
      detail:
        where ||
        `not found on the login node's PATH; is the scheduler "${config.scheduler}" right? (config: scheduler)`,
    });
  }
  checks.push({
    name: "tar",
    ok: get("cmd_tar") !== "",
    detail: get("cmd_tar") || "not found: uploads need tar on the cluster",
  });
  checks.push(...schedulerChecks(config, facts));
  const writable = get("remote_writable") === "yes";
  checks.push({
    name: "remote folder",
    ok: writable,
    detail: writable
      ? `${config.remote_dir} is writable (${get("remote_free_kb") || "?"} KB free)`
      : `${config.remote_dir} cannot be created or written: fix its permissions or set remote_dir in the config`,
  });
  const installed = get("agent_version");
  checks.push({
    name: "agent",
    ok: true,
    detail: installed === "" ? "not deployed yet (sync deploys it)" : `version ${installed}`,
  });
  return checks;
}

export async function doctorCommand(
  ctx: CliContext,
  opts: { acceptNewHostKey?: boolean; json?: boolean },
): Promise<void> {
  const checks: Check[] = [];
  const report = () => {
    if (opts.json) write(ctx.out, JSON.stringify(checks, null, 2));
    else for (const c of checks) write(ctx.out, `${c.ok ? "OK  " : "FIX "} ${c.name.padEnd(14)} ${c.detail}`);
  };
  const { config, warnings } = await readConfig(ctx.home);
  checks.push({
    name: "config",
    ok: true,
    detail: warnings.length ? `valid; warnings: ${warnings.join("; ")}` : "valid",
  });
  const target = await clusterTarget(config);
  const route = [
    ...target.proxyJump.map((h) => `${h.user}@${h.hostname}:${h.port}`),
    `${target.user}@${target.hostname}:${target.port}`,
  ];
  checks.push({ name: "target", ok: true, detail: route.join(" -> ") });
  const template = await loadTemplate(ctx.home, config.template);
  if (needsAccount(template.source)) {
    const account = config.vars.account ?? "";
    checks.push({
      name: "account",
      ok: account !== "",
      detail:
        account !== ""
          ? `${account} (#PBS -A in template ${config.template})`
          : `not set, and template ${config.template} passes it as #PBS -A (PBS Professional sites such as Bebop refuse jobs without one): chasqui init --force ... --set account=PROJECT`,
    });
  }
  // The connection the commands use: a live OpenSSH master (no login; its host key was checked by
  // OpenSSH when it logged in), or chasqui's own ssh2 login.
  const master = config.transport === "ssh2" ? null : await masterState(config, ctx.home, ctx.now());
  const riding = master?.live === true;
  checks.push({
    name: "connection",
    ok: riding || config.transport !== "openssh",
    detail: riding
      ? `OpenSSH master at ${master!.path}${master!.until ? ` until ${master!.until.replace("T", " ").slice(0, 16)} UTC` : ""}: no login; host keys are checked by OpenSSH on this path, not by chasqui`
      : config.transport === "openssh"
        ? 'no live OpenSSH master and transport is "openssh": `chasqui connect` opens one'
        : `chasqui's own ssh2 login (transport ${config.transport}${config.transport === "auto" ? "; no live master, `chasqui connect` opens one" : ""})`,
  });
  let hostKeyNote = riding ? "checked by OpenSSH when the master logged in" : "matches known_hosts";
  let cluster: Awaited<ReturnType<typeof openCluster>>;
  try {
    cluster = await openCluster(
      config,
      {
        home: ctx.home,
        ...(master === null ? {} : { master }),
        prompter: createTerminalPrompter(),
        acceptNewHostKey: opts.acceptNewHostKey === true,
        events: (e) => {
          if (e.type === "hostkey-added") hostKeyNote = `new key accepted and recorded (${e.fingerprint})`;
        },
      },
      target,
    );
  } catch (e) {
    // The failing step is a check like the others, in --json too.
    const failed = hostKeyFailure(e) ? "host key" : "login";
    checks.push({ name: failed, ok: false, detail: e instanceof Error ? e.message : String(e) });
    report();
    if (opts.json && e instanceof ChasquiError) e.outputWritten = true;
    throw e;
  }
  try {
    checks.push({ name: "host key", ok: true, detail: hostKeyNote });
    checks.push({
      name: "login",
      ok: true,
      detail: cluster
        .route()
        .map((r) => `${r.host}:${r.port} by ${r.methods.join(" + ")}`)
        .join("; "),
    });
    const probe = await cluster.probe(config.vars.queue ?? "");
    if (probe.facts === null) checks.push({ name: "remote shell", ok: false, detail: probe.problem });
    else checks.push(...remoteChecks(config, probe.facts));
  } finally {
    await cluster.close();
  }
  report();
  if (checks.some((c) => !c.ok)) {
    const failed = new ChasquiError("some checks failed (lines marked FIX)", { exitCode: ExitCode.failure });
    failed.outputWritten = opts.json === true;
    throw failed;
  }
}
