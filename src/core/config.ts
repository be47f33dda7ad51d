// The workstation config (config.json): its shape, defaults, and pure validation.
import { didYouMean } from "./closest.ts";
import { isValidJobId } from "./job.ts";
import { isValidResultGlob } from "./resultFiles.ts";
import type { SchedulerKind } from "./schedulerView.ts";

export interface Config {
  version: 1;
  /** Host name or an alias from ~/.ssh/config. */
  host: string;
  port: number | null;
  user: string | null;
  identity: string | null;
  known_hosts: string | null;
  /** A command whose stdout answers keyboard-interactive prompts (e.g. `oathtool --totp -b ...`). */
  otp_command: string | null;
  /** Under the login home unless absolute. */
  remote_dir: string;
  /** Root of the job work folders on the cluster (e.g. scratch); default `<remote_dir>/jobs`. */
  work_root: string | null;
  scheduler: SchedulerKind;
  max_queued: number;
  max_running: number;
  template: string;
  /** Template variables for every job; `add --set` overrides per job. */
  vars: Record<string, string>;
  /** Fetch the results of finished jobs at every sync (`sync --download/--no-download` for one run). */
  download_results: boolean;
  /** File-name patterns of a job's work folder that downloads fetch (`add --set download_globs=` per job). */
  download_globs: string[];
  /** Where downloads go: null = the job's own folder (inputs never overwritten). */
  results_dir: string | null;
  /** Seconds a submitted job may be unknown to the scheduler, with no flag, before it is LOST. */
  lost_grace_seconds: number;
  /** A login node that compute nodes reach by the cluster's own ssh, where a finishing job runs
   * the agent when qsub does not work on compute nodes; null = on the compute node itself. */
  trigger_host: string | null;
  /** An input file larger than this (MB) is refused by `add` unless --force. */
  max_input_mb: number;
  /** How commands reach the cluster: a live OpenSSH master when there is one (auto), only our own
   * ssh2 login, or only an OpenSSH master (`chasqui connect`). */
  transport: Transport;
  /** The master's socket; null = the host's ControlPath in ~/.ssh/config, else chasqui's own. */
  control_path: string | null;
  /** Run after a sync with one JSON event per line on stdin (`sh -c`); null = none. */
  notify_command: string | null;
  notify_on: NotifyEvent[];
  /** A notify command still running after this many seconds is killed. */
  notify_timeout_seconds: number;
}

const TRANSPORTS = ["auto", "ssh2", "openssh"] as const;
type Transport = (typeof TRANSPORTS)[number];
const NOTIFY_EVENTS = ["job_finished", "login_needed", "sync_failed"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** VASP's main outputs, the script's stdout, and the scheduler's output (chasqui.out/err as the
 * agent names them; NAME.o123 / NAME.e123 where a template sets its own). */
const DEFAULT_DOWNLOAD = [
  "OUTCAR",
  "OSZICAR",
  "CONTCAR",
  "vasprun.xml",
  "stdout",
  "chasqui.out",
  "chasqui.err",
  "*.o[0-9]*",
  "*.e[0-9]*",
];

export const DEFAULT_VARS: Record<string, string> = {
  command: "mpirun vasp_std",
  walltime: "01:00:00",
  nodes: "1",
  ncpus: "36",
  queue: "bdwall",
  account: "",
  modules: "",
};

export function defaultConfig(host: string): Config {
  return {
    version: 1,
    host,
    port: null,
    user: null,
    identity: null,
    known_hosts: null,
    otp_command: null,
    remote_dir: "chasqui_remote",
    work_root: null,
    scheduler: "pbs",
    max_queued: 40,
    max_running: 30,
    template: "pbspro-vasp",
    vars: { ...DEFAULT_VARS },
    download_results: false,
    download_globs: [...DEFAULT_DOWNLOAD],
    results_dir: null,
    lost_grace_seconds: 600,
    trigger_host: null,
    max_input_mb: 200,
    transport: "auto",
    control_path: null,
    notify_command: null,
    notify_on: [...NOTIFY_EVENTS],
    notify_timeout_seconds: 30,
  };
}

// The variables every default template uses, checked where they are given so that a bad value
// is refused at once instead of by the scheduler at submission (or worse, by the shell).
const WELL_KNOWN_VARS: Record<string, { test: RegExp; form: string }> = {
  walltime: { test: /^(\d+-)?(\d+:)?[0-5]?\d:[0-5]\d$/, form: "[[H]H:]MM:SS, e.g. 01:30:00" },
  nodes: { test: /^[1-9]\d{0,5}$/, form: "a positive whole number" },
  ncpus: { test: /^[1-9]\d{0,5}$/, form: "a positive whole number" },
  queue: { test: /^[A-Za-z0-9._@+:-]*$/, form: "one word (letters, digits, . _ @ + : -)" },
  account: { test: /^[A-Za-z0-9._@+:-]*$/, form: "one word (letters, digits, . _ @ + : -)" },
};

// `command` is a shell command line on purpose (tabs and line breaks allowed); every other value
// lands in a directive or a shell word, where a line break would start a line of shell.
const CONTROL = /[\u0000-\u001f\u007f]/;
const CONTROL_IN_COMMAND = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** Why a template variable's value is wrong, or null. */
function wellKnownVarProblem(name: string, value: string): string | null {
  if ((name === "command" ? CONTROL_IN_COMMAND : CONTROL).test(value)) {
    return `${name}=${JSON.stringify(value)}: ${name} contains a control character (a line break?), which would end up as a line of its own in every batch script`;
  }
  const rule = WELL_KNOWN_VARS[name];
  if (!rule || rule.test.test(value)) return null;
  return `${name}=${JSON.stringify(value)}: ${name} must be ${rule.form}`;
}

/** Variables the user sets that are not template variables: per-job settings of chasqui's own. */
const JOB_SETTINGS = ["download_globs"] as const;

/**
 * Names in `vars` that the template does not read (a typo like `wallclock`), each with the closest
 * name it does read. `used` is what the template and its partials read.
 */
export function unusedVariables(
  vars: Readonly<Record<string, string>>,
  used: ReadonlySet<string>,
  template: string,
): string[] {
  const known = [...used, ...JOB_SETTINGS];
  return Object.keys(vars)
    .filter((k) => !known.includes(k))
    .map((k) => `${k}: template ${template} has no variable "${k}"${didYouMean(k, known)}`);
}

const HOST_WORD = /^[A-Za-z0-9._-]+(@[A-Za-z0-9._-]+)?$/;

/** What `chasqui init` was told; everything else is a default. */
export interface InitChoices {
  host: string;
  port?: number;
  user?: string;
  identity?: string;
  knownHosts?: string;
  remoteDir?: string;
  workRoot?: string;
  scheduler?: SchedulerKind;
  maxQueued?: number;
  maxRunning?: number;
  template?: string;
  otpCommand?: string;
  download?: boolean;
  resultsDir?: string;
  triggerHost?: string;
}

/**
 * The config `init` writes (validate it before writing): a slurm-* template implies the Slurm
 * scheduler, and max_running follows a smaller max_queued down (running jobs count as queued).
 */
export function initialConfig(
  o: InitChoices,
  vars: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const base = defaultConfig(o.host);
  return {
    ...base,
    port: o.port ?? null,
    user: o.user ?? null,
    identity: o.identity ?? null,
    known_hosts: o.knownHosts ?? null,
    otp_command: o.otpCommand ?? null,
    remote_dir: o.remoteDir ?? base.remote_dir,
    work_root: o.workRoot ?? null,
    scheduler: o.scheduler ?? (o.template?.startsWith("slurm") ? "slurm" : base.scheduler),
    max_queued: o.maxQueued ?? base.max_queued,
    max_running: o.maxRunning ?? Math.min(base.max_running, o.maxQueued ?? base.max_running),
    template: o.template ?? base.template,
    vars: { ...base.vars, ...vars },
    download_results: o.download === true,
    results_dir: o.resultsDir ?? null,
    trigger_host: o.triggerHost ?? null,
  };
}

export interface ConfigCheck {
  config: Config | null;
  errors: string[];
  warnings: string[];
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Validate parsed JSON as a config; returns every problem at once rather than the first. */
export function validateConfig(raw: unknown): ConfigCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { config: null, errors: ["config must be a JSON object"], warnings };
  }
  const r = { ...(raw as Record<string, unknown>) };
  const host = r.host;
  if (typeof host !== "string" || host.trim() === "" || /\s/.test(host)) {
    errors.push("host: must be a host name or ssh alias without spaces");
  }
  const base = defaultConfig(typeof host === "string" ? host : "");
  const out: Config = { ...base };
  const known = new Set(Object.keys(base));
  // Configs written before download_results existed named the patterns "download".
  if (r.download !== undefined && r.download_globs === undefined) {
    r.download_globs = r.download;
    delete r.download;
  }
  // A misspelt key (max_queue) would silently mean the default: it is an error, named.
  for (const key of Object.keys(r)) {
    if (!known.has(key)) errors.push(`unknown key "${key}"${didYouMean(key, known)}`);
  }
  const optString = (
    key:
      | "user"
      | "identity"
      | "known_hosts"
      | "otp_command"
      | "work_root"
      | "results_dir"
      | "control_path"
      | "notify_command",
  ) => {
    const v = r[key];
    if (v === undefined || v === null) return;
    if (typeof v !== "string" || v === "") errors.push(`${key}: must be a non-empty string or null`);
    else out[key] = v;
  };
  for (const k of [
    "user",
    "identity",
    "known_hosts",
    "otp_command",
    "work_root",
    "results_dir",
    "control_path",
    "notify_command",
  ] as const)
    optString(k);
  if (r.version !== undefined && r.version !== 1)
    errors.push(`version: ${String(r.version)} is not supported (expected 1)`);
  if (r.port !== undefined && r.port !== null) {
    if (!Number.isInteger(r.port) || (r.port as number) < 1 || (r.port as number) > 65535) {
      errors.push("port: must be an integer from 1 to 65535");
    } else out.port = r.port as number;
  }
  if (r.remote_dir !== undefined) {
    const d = r.remote_dir;
    if (typeof d !== "string" || d === "" || /[\n\0]/.test(d) || d.split("/").includes("..")) {
      errors.push("remote_dir: must be a folder path without '..', newlines or NUL");
    } else out.remote_dir = d;
  }
  if (r.scheduler !== undefined) {
    if (r.scheduler !== "pbs" && r.scheduler !== "slurm") errors.push('scheduler: must be "pbs" or "slurm"');
    else out.scheduler = r.scheduler;
  }
  for (const key of [
    "max_queued",
    "max_running",
    "lost_grace_seconds",
    "max_input_mb",
    "notify_timeout_seconds",
  ] as const) {
    const v = r[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || (v as number) < (key === "lost_grace_seconds" ? 0 : 1)) {
      errors.push(`${key}: must be a whole number${key === "lost_grace_seconds" ? " ≥ 0" : " ≥ 1"}`);
    } else out[key] = v as number;
  }
  if (out.max_running > out.max_queued) {
    warnings.push("max_running is above max_queued: running jobs count as queued, so max_queued limits both");
  }
  if (r.template !== undefined) {
    if (typeof r.template !== "string" || !isValidJobId(r.template)) {
      errors.push("template: must be a template name ([A-Za-z0-9._-])");
    } else out.template = r.template;
  }
  if (r.vars !== undefined) {
    if (typeof r.vars !== "object" || r.vars === null || Array.isArray(r.vars))
      errors.push("vars: must be an object");
    else {
      const vars: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.vars as Record<string, unknown>)) {
        if (!VAR_NAME.test(k)) errors.push(`vars.${k}: not a valid variable name`);
        else if (typeof v !== "string") errors.push(`vars.${k}: must be a string`);
        else {
          const problem = wellKnownVarProblem(k, v);
          if (problem) errors.push(`vars.${problem}`);
          else vars[k] = v;
        }
      }
      out.vars = vars;
    }
  }
  if (r.download_results !== undefined) {
    if (typeof r.download_results !== "boolean") errors.push("download_results: must be true or false");
    else out.download_results = r.download_results;
  }
  if (r.download_globs !== undefined) {
    const g = r.download_globs;
    if (
      !Array.isArray(g) ||
      g.length === 0 ||
      g.some((x) => typeof x !== "string" || !isValidResultGlob(x))
    ) {
      errors.push(
        'download_globs: must be a non-empty list of file-name patterns (no "/", tabs or newlines), e.g. ["OUTCAR", "*.xml"]',
      );
    } else out.download_globs = g as string[];
  }
  if (r.trigger_host !== undefined && r.trigger_host !== null) {
    if (typeof r.trigger_host !== "string" || !HOST_WORD.test(r.trigger_host))
      errors.push("trigger_host: must be a host name (or user@host) the compute nodes reach by ssh, or null");
    else out.trigger_host = r.trigger_host;
  }
  if (r.transport !== undefined) {
    if (!TRANSPORTS.includes(r.transport as Transport))
      errors.push(`transport: must be one of ${TRANSPORTS.map((t) => `"${t}"`).join(", ")}`);
    else out.transport = r.transport as Transport;
  }
  if (r.notify_on !== undefined) {
    const on = r.notify_on;
    const bad = Array.isArray(on) ? on.filter((e) => !NOTIFY_EVENTS.includes(e as NotifyEvent)) : [];
    if (!Array.isArray(on) || bad.length > 0) {
      const named = bad.map((e) => `${JSON.stringify(e)}${didYouMean(String(e), NOTIFY_EVENTS)}`).join("; ");
      errors.push(`notify_on: must be a list of ${NOTIFY_EVENTS.join(", ")}${named ? `; not ${named}` : ""}`);
    } else out.notify_on = [...new Set(on as NotifyEvent[])];
  }
  return { config: errors.length ? null : out, errors, warnings };
}

/** Parse `KEY=VALUE` items (from --set). Returns the map and any malformed items. */
export function parseSetOptions(items: readonly string[]): {
  vars: Record<string, string>;
  errors: string[];
} {
  const vars: Record<string, string> = {};
  const errors: string[] = [];
  for (const item of items) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || !VAR_NAME.test(key)) {
      errors.push(`--set ${JSON.stringify(item)}: expected KEY=VALUE with KEY made of letters, digits and _`);
      continue;
    }
    const problem = wellKnownVarProblem(key, item.slice(eq + 1));
    if (problem) {
      errors.push(`--set ${problem}`);
      continue;
    }
    vars[key] = item.slice(eq + 1);
  }
  return { vars, errors };
}
