// `chasqui template list|show|init|render`: the batch templates, and what a job's script will be.
import { readConfig } from "../../config/configFile.ts";
import { findJobs } from "../../core/findJobs.ts";
import { openStore } from "../../store/jobStore.ts";
import { initTemplates, listTemplates, loadTemplate } from "../../templates/load.ts";
import { renderJobScript } from "../../templates/renderJob.ts";
import { type CliContext, write } from "../context.ts";
import { renderTable } from "../table.ts";

export async function templateList(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const templates = await listTemplates(ctx.home);
  if (opts.json) {
    write(ctx.out, JSON.stringify(templates, null, 2));
    return;
  }
  write(
    ctx.out,
    renderTable(
      [{ header: "NAME" }, { header: "FROM" }],
      templates.map((t) => [t.name, t.origin === "user" ? `user file ${t.path ?? ""}`.trim() : "built in"]),
    ),
  );
}

export async function templateShow(ctx: CliContext, name: string): Promise<void> {
  ctx.out.write((await loadTemplate(ctx.home, name)).source);
}

export async function templateInit(ctx: CliContext, name: string | undefined): Promise<void> {
  const result = await initTemplates(ctx.home, name);
  for (const p of result.written) write(ctx.out, `wrote ${p}`);
  for (const p of result.skipped) write(ctx.out, `kept ${p} (exists already)`);
}

export async function templateRender(ctx: CliContext, id: string): Promise<void> {
  const { config } = await readConfig(ctx.home);
  const [job] = findJobs(await openStore(ctx.home).read(), [id]);
  if (!job) return;
  ctx.out.write(await renderJobScript(ctx.home, job, config));
}
