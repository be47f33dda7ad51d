// Reading and writing $CHASQUI_HOME/config.json: durable writes, and every problem reported at once.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { type Config, validateConfig } from "../core/config.ts";
import { InputError } from "../errors.ts";
import { DurableJsonFile } from "../store/durableFile.ts";

const CONFIG_FILE = "config.json";

export function configPath(home: string): string {
  return path.join(home, CONFIG_FILE);
}

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

/** The validated config; a missing or invalid file is an InputError that says how to fix it. */
export async function readConfig(home: string): Promise<LoadedConfig> {
  const file = configPath(home);
  const raw = await new DurableJsonFile<unknown>(file).read();
  if (raw === null) {
    throw new InputError(`no config in ${home}`, "Run `chasqui init --host <login host>` first.");
  }
  const check = validateConfig(raw);
  if (!check.config) {
    throw new InputError(
      `${file} has ${check.errors.length === 1 ? "a problem" : "problems"}:\n  ${check.errors.join("\n  ")}`,
      "Fix the file by hand, or run `chasqui init --force` with the right options.",
    );
  }
  return { config: check.config, warnings: check.warnings };
}

export async function configExists(home: string): Promise<boolean> {
  try {
    await fs.access(configPath(home));
    return true;
  } catch {
    return false;
  }
}

export async function writeConfig(home: string, config: Config): Promise<void> {
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  await fs.chmod(home, 0o700);
  await new DurableJsonFile<Config>(configPath(home)).write(config);
}
