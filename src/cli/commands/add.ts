// `chasqui add DIR...`: check every folder, then add them all in one store update, or none.

import { readConfig } from "../../config/configFile.ts";
import { parseSetOptions } from "../../core/config.ts";
import { planAdd } from "../../core/planAdd.ts";
import { templateNeedsPotcar } from "../../core/render.ts";
import { InputError } from "../../errors.ts";
import { scanJobFolder } from "../../files/scanJobFolder.ts";
import { openStore } from "../../store/jobStore.ts";
import { loadTemplate } from "../../templates/load.ts";
import { renderProblem, VARIABLES_HINT, variableProblems } from "../../templates/renderJob.ts";
import { type CliContext, storeOptions, write } from "../context.ts";

export interface AddOptions {
  name?: string;
  template?: string;
  set: string[];
  force?: boolean;
  json?: boolean;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export async function addCommand(ctx: CliContext, dirs: string[], opts: AddOptions): Promise<void> {
  const { config } = await readConfig(ctx.home);
  const sets = parseSetOptions(opts.set);
  if (sets.errors.length > 0) throw new InputError(sets.errors.join("\n"));
  const templateName = opts.template ?? config.template;
  const template = await loadTemplate(ctx.home, templateName);
  const problems = variableProblems(template, config, sets.vars);
  if (problems.length > 0) throw new InputError(`nothing added:\n  ${problems.join("\n  ")}`, VARIABLES_HINT);
  const folders = await mapLimit(dirs, 32, (d) => scanJobFolder(d, process.cwd()));
  const store = openStore(ctx.home, storeOptions(ctx, "chasqui add"));
  const added = await store.update(async (data) => {
    const plan = planAdd({
      folders,
      name: opts.name,
      template: template.name,
      needsPotcar: templateNeedsPotcar(template.source),
      vars: sets.vars,
      existing: data.jobs,
      now: ctx.now(),
      maxInputMb: config.max_input_mb,
      force: opts.force === true,
    });
    if (plan.errors.length > 0) {
      const n = plan.errors.length;
      throw new InputError(
        `nothing added: ${n} problem${n === 1 ? "" : "s"}:\n  ${plan.errors.join("\n  ")}`,
        "Fix the folders above (or leave them out) and run `chasqui add` again.",
      );
    }
    // One render proves them all: the jobs of one add share their template and variables.
    const unrenderable = plan.jobs[0] && (await renderProblem(ctx.home, config, plan.jobs[0]));
    if (unrenderable) throw new InputError(`nothing added: ${unrenderable.message}`, unrenderable.hint);
    data.jobs.push(...plan.jobs);
    // An id used again is a new job: an `rm --remote` of the old one must not remove its folder.
    const ids = new Set(plan.jobs.map((j) => j.id));
    data.remote_removals = data.remote_removals.filter((id) => !ids.has(id));
    return plan.jobs;
  });
  if (opts.json) {
    write(ctx.out, JSON.stringify(added, null, 2));
    return;
  }
  for (const job of added) write(ctx.out, `added ${job.id}\t${job.local_path}`);
  write(
    ctx.out,
    `${added.length} job${added.length === 1 ? "" : "s"} queued locally; \`chasqui sync\` sends them`,
  );
}
