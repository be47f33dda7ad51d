// Batch scripts from Handlebars templates: the variables a job's template sees, and the rendering.
import Handlebars from "handlebars";
import { InputError } from "../errors.ts";
import { type Config, DEFAULT_VARS } from "./config.ts";
import type { Job } from "./job.ts";
import { schedulerJobName } from "./jobName.ts";
import { remotePaths, shellQuote } from "./layout.ts";

/** Variables chasqui sets itself; they win over anything in config.json or `--set`. */
const PROVIDED_VARIABLES = [
  "id",
  "name",
  "job_name",
  "attempt",
  "scheduler",
  "template",
  "remote_dir_sh",
  "work_root_sh",
  "work_dir_sh",
  "chasqui_lib_sh",
] as const;

/** A template that declares, on a line of its own, that its jobs need no POTCAR. */
const NO_POTCAR_LINE = /^[ \t]*#[ \t]*chasqui:[ \t]*no-potcar[ \t]*$/m;

export function templateNeedsPotcar(source: string): boolean {
  return !NO_POTCAR_LINE.test(source);
}

/**
 * A template that always passes the project as `#PBS -A {{account}}`, as PBS Professional sites
 * require (not one that passes it only `{{#if account}}`).
 */
export function needsAccount(templateSource: string): boolean {
  return (
    /^#PBS[ \t]+-A[ \t]+\{\{\s*account\s*\}\}/m.test(templateSource) &&
    !/\{\{#if\s+account\s*\}\}/.test(templateSource)
  );
}

// Helpers of Handlebars itself: names in a template that are not variables.
const HELPERS = new Set(["if", "unless", "each", "with", "lookup", "log", "this"]);

/**
 * The variables a template reads, with those of the partials it includes (NAME_sh counts as
 * NAME). Unparsable sources count as reading nothing: rendering reports their errors.
 */
export function usedVariables(source: string, partials: Readonly<Record<string, string>> = {}): Set<string> {
  const used = new Set<string>();
  const visited = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const n = node as { type?: string; parts?: string[]; data?: boolean; name?: { original?: unknown } };
    if (n.type === "PathExpression" && !n.data && n.parts?.length === 1) {
      const name = n.parts[0]!;
      const provided = (PROVIDED_VARIABLES as readonly string[]).includes(name);
      if (!HELPERS.has(name))
        used.add(!provided && name.endsWith("_sh") && name.length > 3 ? name.slice(0, -3) : name);
    }
    if (n.type === "PartialStatement" || n.type === "PartialBlockStatement") {
      const partial = String(n.name?.original ?? "");
      if (partial in partials && !visited.has(partial)) {
        visited.add(partial);
        parseQuietly(partials[partial]!, visit);
      }
    }
    for (const [key, value] of Object.entries(node)) {
      // A partial's name is not a variable.
      if (key === "name" && n.type?.startsWith("Partial")) continue;
      if (typeof value === "object") visit(value);
    }
  };
  parseQuietly(source, visit);
  return used;
}

function parseQuietly(source: string, visit: (ast: unknown) => void): void {
  try {
    visit(Handlebars.parse(source));
  } catch {
    // A syntax error is reported where the template is rendered.
  }
}

/** DEFAULT_VARS < config.vars < job.vars < what chasqui provides. */
export function templateVariables(
  job: Pick<Job, "id" | "name" | "attempt" | "template" | "vars">,
  config: Pick<Config, "remote_dir" | "work_root" | "scheduler" | "vars">,
): Record<string, string> {
  return {
    ...DEFAULT_VARS,
    ...config.vars,
    ...job.vars,
    id: job.id,
    name: job.name,
    job_name: schedulerJobName(job.id),
    attempt: String(job.attempt),
    scheduler: config.scheduler,
    template: job.template,
    ...remotePaths(config, job.id),
  };
}

export interface RenderInput {
  /** The template's name, for error messages. */
  name?: string;
  source: string;
  /** Partials by name (`{{> NAME}}`), e.g. chasqui_prologue and chasqui_epilogue. */
  partials?: Readonly<Record<string, string>>;
  vars: Readonly<Record<string, string>>;
}

const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;

/** Every variable NAME also exists as NAME_sh, the same value as one shell word. */
function withShellWords(vars: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...vars };
  for (const [k, v] of Object.entries(vars)) {
    if (!k.endsWith("_sh") && !(`${k}_sh` in out)) out[`${k}_sh`] = shellQuote(v);
  }
  return out;
}

/** Where a Handlebars error happened: the template or one of its partials. */
class TemplateFault extends Error {
  constructor(
    readonly where: string,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

function parseOrFault(where: string, source: string): hbs.AST.Program {
  try {
    return Handlebars.parse(source);
  } catch (e) {
    throw new TemplateFault(where, e);
  }
}

/** Render a batch script. Throws InputError for syntax errors, unknown partials and missing variables. */
export function renderBatchScript(input: RenderInput): string {
  const templateName = input.name ?? "template";
  const label = `template "${templateName}"`;
  const hb = Handlebars.create();
  try {
    for (const [partialName, partialSource] of Object.entries(input.partials ?? {})) {
      const where = `partial "${partialName}" (used by ${label})`;
      const compiled = hb.compile(parseOrFault(where, partialSource), COMPILE_OPTIONS);
      hb.registerPartial(partialName, (context: unknown, options: unknown) => {
        try {
          return compiled(context, options as RuntimeOptions);
        } catch (e) {
          throw e instanceof TemplateFault ? e : new TemplateFault(where, e);
        }
      });
    }
    const compiled = hb.compile(parseOrFault(label, input.source), COMPILE_OPTIONS);
    try {
      return compiled(withShellWords(input.vars));
    } catch (e) {
      throw e instanceof TemplateFault ? e : new TemplateFault(label, e);
    }
  } catch (e) {
    if (e instanceof TemplateFault) throw describeFault(e, input.vars);
    throw e;
  }
}

type RuntimeOptions = Parameters<HandlebarsTemplateDelegate>[1];

function describeFault(fault: TemplateFault, vars: Readonly<Record<string, string>>): InputError {
  const err = fault.original as { message?: string; lineNumber?: number };
  const message = err.message ?? String(fault.original);
  const missing = /^"([^"]+)" not defined in/.exec(message);
  const line = err.lineNumber ?? /(?:line |- )(\d+)/.exec(message)?.[1];
  const at = line === undefined ? "" : ` (line ${line})`;
  if (missing) {
    const used = missing[1]!;
    const base = used.endsWith("_sh") && !(used in vars) ? used.slice(0, -3) : used;
    const shown = base === used ? `"${used}"` : `"${base}" (used as ${used})`;
    return new InputError(
      `${fault.where} uses the variable ${shown}, which is not set${at}`,
      `Set it for every job with "chasqui init --set ${base}=VALUE" (or "vars" in config.json), or for some jobs with "chasqui add --set ${base}=VALUE".`,
    );
  }
  const partial = /The partial (\S+) could not be found/.exec(message);
  if (partial) {
    return new InputError(
      `${fault.where} includes the partial "${partial[1]}", which does not exist${at}`,
      "Partials live in $CHASQUI_HOME/templates/partials/NAME.sh.hbs.",
    );
  }
  const lines = message.split("\n");
  // Parse errors end with "Expecting ..., got ..."; others are one line ending in " - line:column".
  let detail = message.startsWith("Parse error") ? lines.at(-1)! : lines[0]!.replace(/ - \d+:\d+$/, "");
  if (detail.endsWith("got 'EOF'"))
    detail = `it ends inside a block or tag (an {{#if}} without {{/if}}?); ${detail}`;
  return new InputError(`${fault.where} has a syntax error${at}: ${detail}`);
}
