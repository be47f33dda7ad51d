// `chasqui cron install|remove|show`: one crontab line per CHASQUI_HOME that runs `chasqui sync
// --cron`, added once (a second install replaces it), the user's other lines untouched.
import * as path from "node:path";
import { readConfig } from "../../config/configFile.ts";
import {
  cronLine,
  EVERY_FORMS,
  findCronLine,
  parseEvery,
  withCronLine,
  withoutCronLine,
} from "../../core/crontab.ts";
import { InputError } from "../../errors.ts";
import { userCrontab } from "../../unattended/crontabFile.ts";
import { type CliContext, write } from "../context.ts";

/** How to run this very chasqui from cron: the compiled binary, or the runtime and the script. */
function selfCommand(): string[] {
  const script = process.argv[1] ?? "";
  // A compiled binary sees its own code under /$bunfs; its path is execPath.
  if (script === "" || script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/"))
    return [process.execPath];
  return [process.execPath, path.resolve(script)];
}

export async function cronInstall(ctx: CliContext, opts: { every?: string; json?: boolean }): Promise<void> {
  const every = parseEvery(opts.every ?? "30m");
  if (every === null) {
    throw new InputError(`--every ${JSON.stringify(opts.every)}: cron can run a sync every ${EVERY_FORMS}`);
  }
  const self = selfCommand();
  if ([ctx.home, ...self].some((p) => /[\n\r]/.test(p))) {
    throw new InputError(
      `a path of this chasqui has a line break in it (${JSON.stringify(ctx.home)}): a crontab line cannot hold it`,
      "Point CHASQUI_HOME at a folder without one.",
    );
  }
  // Only a home with a valid config gets a line: a broken one would fail every half hour.
  const { config } = await readConfig(ctx.home);
  const crontab = userCrontab(ctx.env);
  const before = await crontab.read();
  const line = cronLine({ every, home: ctx.home, command: self });
  const after = withCronLine(before, ctx.home, line);
  const changed = after !== before;
  if (changed) await crontab.write(after);
  if (opts.json) {
    write(ctx.out, JSON.stringify({ installed: true, changed, where: crontab.where, line }, null, 2));
    return;
  }
  write(ctx.out, `${changed ? "installed in" : "already in"} ${crontab.where}:\n  ${line}`);
  write(ctx.out, `every run appends to ${path.join(ctx.home, "sync.log")}`);
  if (config.transport !== "ssh2" && config.otp_command === null) {
    write(
      ctx.out,
      `a login to ${config.host} that asks for a second factor cannot be answered from cron: \`chasqui connect\` at a terminal opens a connection the runs ride`,
    );
  }
}

export async function cronRemove(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const crontab = userCrontab(ctx.env);
  const before = await crontab.read();
  const line = findCronLine(before, ctx.home);
  if (line !== null) await crontab.write(withoutCronLine(before, ctx.home));
  if (opts.json) {
    write(ctx.out, JSON.stringify({ removed: line !== null, where: crontab.where, line }, null, 2));
    return;
  }
  write(
    ctx.out,
    line === null
      ? `no chasqui line for ${ctx.home} in ${crontab.where}`
      : `removed from ${crontab.where}:\n  ${line}`,
  );
}

export async function cronShow(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const crontab = userCrontab(ctx.env);
  const line = findCronLine(await crontab.read(), ctx.home);
  if (opts.json) {
    write(ctx.out, JSON.stringify({ installed: line !== null, where: crontab.where, line }, null, 2));
    return;
  }
  write(
    ctx.out,
    line === null ? `not installed (\`chasqui cron install\` adds a line to ${crontab.where})` : line,
  );
}
