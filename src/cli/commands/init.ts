// `chasqui init`: write the config from options, validated before anything is written.

import { configExists, configPath, writeConfig } from "../../config/configFile.ts";
import {
  type InitChoices,
  initialConfig,
  parseSetOptions,
  unusedVariables,
  validateConfig,
} from "../../core/config.ts";
import { usedVariables } from "../../core/render.ts";
import { InputError } from "../../errors.ts";
import { type CliContext, write } from "../context.ts";

/** What the command line gave: the choices init passes to the core, and how to write. */
export interface InitOptions extends InitChoices {
  set: string[];
  force?: boolean;
  json?: boolean;
}

export async function initCommand(ctx: CliContext, opts: InitOptions): Promise<void> {
  const sets = parseSetOptions(opts.set);
  const check = validateConfig(initialConfig(opts, sets.vars));
  const errors = [...sets.errors, ...check.errors];
  if (errors.length > 0 || !check.config) throw new InputError(`bad init options:\n  ${errors.join("\n  ")}`);
  const { loadTemplate } = await import("../../templates/load.ts");
  const template = await loadTemplate(ctx.home, check.config.template);
  const unused = unusedVariables(sets.vars, usedVariables(template.source, template.partials), template.name);
  if (unused.length > 0)
    throw new InputError(`bad init options:\n  ${unused.map((u) => `--set ${u}`).join("\n  ")}`);
  if ((await configExists(ctx.home)) && !opts.force) {
    throw new InputError(`${configPath(ctx.home)} exists already`, "Use --force to replace it.");
  }
  await writeConfig(ctx.home, check.config);
  if (opts.json) {
    write(ctx.out, JSON.stringify(check.config, null, 2));
    return;
  }
  for (const w of check.warnings) write(ctx.err, `warning: ${w}`);
  write(ctx.out, `wrote ${configPath(ctx.home)}`);
  write(
    ctx.out,
    `  host ${check.config.host}, scheduler ${check.config.scheduler}, template ${check.config.template}`,
  );
  write(ctx.out, `  limits: ${check.config.max_queued} queued, ${check.config.max_running} running`);
  write(
    ctx.out,
    check.config.download_results
      ? `  results: fetched at every sync into ${check.config.results_dir ? `${check.config.results_dir}/<job id>` : "each job's folder"}`
      : "  results: stay on the cluster until `chasqui download` or `sync --download`",
  );
  if (check.config.trigger_host) {
    write(
      ctx.out,
      `  jobs that end run the agent on ${check.config.trigger_host} (ssh from the compute node, no password)`,
    );
  }
  if (!check.config.vars.account) {
    write(ctx.out, "  note: no account set; PBS Pro sites such as Bebop need one: --set account=<project>");
  }
  write(ctx.out, "next: `chasqui doctor` to check the connection, then `chasqui add <job folders>`");
}
