// A job's batch script: its template loaded from disk (user file or default), rendered with its variables.
import { type Config, DEFAULT_VARS, unusedVariables } from "../core/config.ts";
import type { Job } from "../core/job.ts";
import { needsAccount, renderBatchScript, templateVariables, usedVariables } from "../core/render.ts";
import { InputError } from "../errors.ts";
import { type LoadedTemplate, loadTemplate } from "./load.ts";

type RenderableJob = Pick<Job, "id" | "name" | "attempt" | "template" | "vars">;

/** Render many jobs' scripts, reading each template from disk once. */
export function createJobRenderer(home: string, config: Config): (job: RenderableJob) => Promise<string> {
  const templates = new Map<string, Promise<LoadedTemplate>>();
  return async (job) => {
    let loading = templates.get(job.template);
    if (!loading) {
      loading = loadTemplate(home, job.template);
      templates.set(job.template, loading);
    }
    const t = await loading;
    return renderBatchScript({
      name: t.name,
      source: t.source,
      partials: t.partials,
      vars: templateVariables(job, config),
    });
  };
}

/** The script `job` gets on its next upload. */
export function renderJobScript(home: string, job: RenderableJob, config: Config): Promise<string> {
  return createJobRenderer(home, config)(job);
}

export const VARIABLES_HINT =
  'Set account with `--set account=PROJECT` or in config.json "vars"; `chasqui template show NAME` shows what a template reads.';

/**
 * What is wrong with the variables jobs of `template` would get: names it does not read (typos;
 * config.json's own extra names too, not the defaults every config has), and a PBS Professional
 * template with no account.
 */
export function variableProblems(
  template: LoadedTemplate,
  config: Config,
  vars: Readonly<Record<string, string>>,
): string[] {
  const used = usedVariables(template.source, template.partials);
  const own = Object.fromEntries(Object.entries(config.vars).filter(([k]) => !(k in DEFAULT_VARS)));
  const problems = [
    ...unusedVariables(vars, used, template.name).map((p) => `--set ${p}`),
    ...unusedVariables(own, used, template.name).map((p) => `config.json vars.${p}`),
  ];
  const account = vars.account ?? config.vars.account ?? "";
  if (needsAccount(template.source) && account === "") {
    problems.push(
      `template ${template.name} passes the project as "#PBS -A {{account}}", but account is not set (PBS Professional sites such as Bebop refuse the job)`,
    );
  }
  return problems;
}

/** The template's error for this job's script, or null when it renders. */
export async function renderProblem(
  home: string,
  config: Config,
  job: RenderableJob,
): Promise<InputError | null> {
  try {
    await renderJobScript(home, job, config);
    return null;
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
}
