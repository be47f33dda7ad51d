// Templates on disk: the embedded defaults, overridden by user files in $CHASQUI_HOME/templates.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../errors.ts";
import { EMBEDDED_PARTIALS, EMBEDDED_TEMPLATES, TEMPLATE_SUFFIX } from "./embedded.ts";

type TemplateOrigin = "user" | "embedded";

export interface TemplateInfo {
  name: string;
  origin: TemplateOrigin;
  /** The user file, when there is one. */
  path?: string;
  /** A user file that replaces the embedded template of the same name. */
  overrides: boolean;
}

export interface LoadedTemplate {
  name: string;
  source: string;
  origin: TemplateOrigin;
  path?: string;
  /** Partials for rendering: embedded ones, replaced or extended by the user's. */
  partials: Record<string, string>;
}

export interface InitResult {
  written: string[];
  skipped: string[];
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

function userTemplatesDir(home: string): string {
  return join(home, "templates");
}

function userPartialsDir(home: string): string {
  return join(userTemplatesDir(home), "partials");
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Names of the NAME.sh.hbs files in a folder (none when the folder does not exist). */
async function templateFilesIn(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
  return entries
    .filter((f) => f.endsWith(TEMPLATE_SUFFIX))
    .map((f) => f.slice(0, -TEMPLATE_SUFFIX.length))
    .filter((n) => NAME.test(n))
    .sort();
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if (isMissing(e)) return null;
    throw new InputError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Every template: embedded ones and user files, sorted by name; user files say what they override. */
export async function listTemplates(home: string): Promise<TemplateInfo[]> {
  const dir = userTemplatesDir(home);
  const user = new Set(await templateFilesIn(dir));
  const names = [...new Set([...Object.keys(EMBEDDED_TEMPLATES), ...user])].sort();
  return names.map((name) =>
    user.has(name)
      ? {
          name,
          origin: "user",
          path: join(dir, name + TEMPLATE_SUFFIX),
          overrides: name in EMBEDDED_TEMPLATES,
        }
      : { name, origin: "embedded", overrides: false },
  );
}

/** Embedded partials with the user's partials (templates/partials/NAME.sh.hbs) laid over them. */
async function loadPartials(home: string): Promise<Record<string, string>> {
  const partials: Record<string, string> = { ...EMBEDDED_PARTIALS };
  const dir = userPartialsDir(home);
  for (const name of await templateFilesIn(dir)) {
    const source = await readIfExists(join(dir, name + TEMPLATE_SUFFIX));
    if (source !== null) partials[name] = source;
  }
  return partials;
}

/** A template by name: the user's file if there is one, else the embedded default. */
export async function loadTemplate(home: string, name: string): Promise<LoadedTemplate> {
  const partials = await loadPartials(home);
  if (NAME.test(name)) {
    const path = join(userTemplatesDir(home), name + TEMPLATE_SUFFIX);
    const source = await readIfExists(path);
    if (source !== null) return { name, source, origin: "user", path, partials };
    const embedded = EMBEDDED_TEMPLATES[name];
    if (embedded !== undefined) return { name, source: embedded, origin: "embedded", partials };
  }
  const available = (await listTemplates(home)).map((t) => t.name);
  throw new InputError(
    `unknown template "${name}"; available: ${available.join(", ")}`,
    `Templates are the built-in ones and files ${join(userTemplatesDir(home), `NAME${TEMPLATE_SUFFIX}`)}.`,
  );
}

/**
 * Copy the default templates out for editing: one by name, or all. Only templates: chasqui's own
 * machinery lives in the job helper on the cluster, not in files a user edits. An existing file
 * is never overwritten.
 */
export async function initTemplates(home: string, name?: string): Promise<InitResult> {
  const files: { path: string; source: string }[] = [];
  const templatesDir = userTemplatesDir(home);
  const add = (n: string, source: string) =>
    files.push({ path: join(templatesDir, n + TEMPLATE_SUFFIX), source });
  if (name === undefined) {
    for (const [n, s] of Object.entries(EMBEDDED_TEMPLATES)) add(n, s);
  } else if (EMBEDDED_TEMPLATES[name] !== undefined) {
    add(name, EMBEDDED_TEMPLATES[name]);
  } else {
    throw new InputError(
      `no built-in template "${name}"; available: ${Object.keys(EMBEDDED_TEMPLATES).join(", ")}`,
    );
  }
  const result: InitResult = { written: [], skipped: [] };
  for (const f of files) {
    await mkdir(join(f.path, ".."), { recursive: true, mode: 0o700 });
    try {
      // "wx": created only if absent, so a user's edits are never replaced.
      await writeFile(f.path, f.source, { flag: "wx", mode: 0o600 });
      result.written.push(f.path);
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      result.skipped.push(f.path);
    }
  }
  return result;
}
