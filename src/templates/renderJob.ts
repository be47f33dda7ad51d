// A job's batch script: its template loaded from disk (user file or default), rendered with its variables.
import type { Config } from "../core/config.ts";
import type { Job } from "../core/job.ts";
import { renderBatchScript, templateVariables } from "../core/render.ts";
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
