// `chasqui edit JOB --set K=V...`: change the variables of a job not sent yet, or of one that
// ended (for its next retry). Checked like `add`: names the template reads, values, a render.
import { readConfig } from "../../config/configFile.ts";
import { parseSetOptions } from "../../core/config.ts";
import { findJobs } from "../../core/findJobs.ts";
import { checkEditable } from "../../core/jobRules.ts";
import { InputError } from "../../errors.ts";
import { openStore } from "../../store/jobStore.ts";
import { loadTemplate } from "../../templates/load.ts";
import { renderProblem, VARIABLES_HINT, variableProblems } from "../../templates/renderJob.ts";
import { type CliContext, storeOptions, write } from "../context.ts";

export async function editCommand(
  ctx: CliContext,
  id: string,
  opts: { set: string[]; json?: boolean },
): Promise<void> {
  if (opts.set.length === 0) {
    throw new InputError(
      "nothing to change",
      "Give one or more --set KEY=VALUE (e.g. --set walltime=08:00:00).",
    );
  }
  const { config } = await readConfig(ctx.home);
  const sets = parseSetOptions(opts.set);
  if (sets.errors.length > 0) throw new InputError(`nothing changed:\n  ${sets.errors.join("\n  ")}`);
  const now = ctx.now();
  const edited = await openStore(ctx.home, storeOptions(ctx, "chasqui edit")).update(async (data) => {
    const [job] = findJobs(data, [id]);
    checkEditable([job!]);
    const template = await loadTemplate(ctx.home, job!.template);
    const vars = { ...job!.vars, ...sets.vars };
    const problems = variableProblems(template, config, vars);
    if (problems.length > 0)
      throw new InputError(`nothing changed:\n  ${problems.join("\n  ")}`, VARIABLES_HINT);
    const at = now.toISOString();
    const changed = Object.entries(sets.vars).map(([k, v]) => `${k}=${v}`);
    const next = {
      ...job!,
      vars,
      updated_at: at,
      history: [
        ...job!.history,
        { at, from: job!.state, to: job!.state, reason: `edited: ${changed.join(" ")}` },
      ],
    };
    const unrenderable = await renderProblem(ctx.home, config, next);
    if (unrenderable) throw new InputError(`nothing changed: ${unrenderable.message}`, unrenderable.hint);
    data.jobs = data.jobs.map((j) => (j.id === next.id ? next : j));
    return next;
  });
  if (opts.json) {
    write(ctx.out, JSON.stringify(edited, null, 2));
    return;
  }
  const all = Object.entries(edited.vars).map(([k, v]) => `${k}=${v}`);
  write(ctx.out, `${edited.id}: ${all.join(" ")}`);
  if (edited.state !== "QUEUED_LOCAL")
    write(
      ctx.out,
      `it is ${edited.state}: the change applies when it runs again (\`chasqui retry ${edited.id}\`)`,
    );
}
