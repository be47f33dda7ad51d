// `chasqui connect` / `chasqui disconnect`: an OpenSSH master connection for the configured host,
// opened with one login at a terminal, that every later command (cron's syncs too) rides.
import { masterState, removeMasterRecord, writeMasterRecord } from "../../cluster/master.ts";
import { readConfig } from "../../config/configFile.ts";
import { formatDuration, parseDuration } from "../../core/duration.ts";
import { InputError, NeedsPersonError, RemoteError } from "../../errors.ts";
import { closeMaster, masterIsLive, openMaster } from "../../ssh/openssh.ts";
import { type CliContext, personAtTerminal, write } from "../context.ts";

const DEFAULT_FOR = "12h";
const MAX_SECONDS = 7 * 86400;

function utc(at: Date | string): string {
  return `${new Date(at).toISOString().replace("T", " ").slice(0, 16)} UTC`;
}

export async function connectCommand(ctx: CliContext, opts: { for?: string; json?: boolean }): Promise<void> {
  const seconds = parseDuration(opts.for ?? DEFAULT_FOR);
  if (seconds === null || seconds < 60 || seconds > MAX_SECONDS) {
    throw new InputError(
      `--for ${JSON.stringify(opts.for)}: expected a duration from 1m to 7d, e.g. 12h, 90m, 2d`,
      "`chasqui connect --help` shows the usage.",
    );
  }
  const { config } = await readConfig(ctx.home);
  if (config.transport === "ssh2") {
    throw new InputError(
      'transport is "ssh2" in config.json: no command would use a master connection',
      'Set "transport" to "auto" (the default) or "openssh", then connect.',
    );
  }
  const now = ctx.now();
  const until = new Date(now.getTime() + seconds * 1000);
  const state = await masterState(config, ctx.home, now);
  const record = {
    control_path: state.path,
    host: config.host,
    opened_at: now.toISOString(),
    until: until.toISOString(),
  };
  if (state.live) {
    // Already there (ours or the user's own): the new deadline counts from now.
    await writeMasterRecord(ctx.home, record);
    return done(ctx, opts, "already connected", record, seconds);
  }
  if (!personAtTerminal(process.stdin, ctx.env)) {
    throw new NeedsPersonError(
      `chasqui connect logs in to ${config.host} and needs a person at a terminal for it`,
      "Run it by hand in a terminal (e.g. each morning); syncs from cron then ride the connection.",
    );
  }
  write(
    ctx.err,
    `logging in to ${config.host} (ssh asks for what the server wants: code, push, passphrase)...`,
  );
  await openMaster(config, state.path, seconds);
  if (!(await masterIsLive(config, state.path))) {
    throw new RemoteError(`ssh logged in but no master connection answers on ${state.path}`, {
      hint: "Check that the folder of the socket is writable and local (not NFS); `control_path` in config.json moves it.",
    });
  }
  await writeMasterRecord(ctx.home, record);
  done(ctx, opts, "connected", record, seconds);
}

function done(
  ctx: CliContext,
  opts: { json?: boolean },
  what: string,
  record: { control_path: string; host: string; until: string },
  seconds: number,
): void {
  if (opts.json) {
    write(ctx.out, JSON.stringify({ connected: true, ...record }, null, 2));
    return;
  }
  write(
    ctx.out,
    `${what}: ${record.host} until ${utc(record.until)} (${formatDuration(seconds)}), socket ${record.control_path}`,
  );
  write(
    ctx.out,
    "sync, doctor, download and cancel ride it without a login, from cron too; `chasqui disconnect` closes it",
  );
}

export async function disconnectCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const { config } = await readConfig(ctx.home);
  const state = await masterState(config, ctx.home, ctx.now());
  const closed = state.live ? await closeMaster(config, state.path) : false;
  await removeMasterRecord(ctx.home);
  if (opts.json) {
    write(ctx.out, JSON.stringify({ closed, host: config.host, control_path: state.path }, null, 2));
    return;
  }
  write(
    ctx.out,
    closed
      ? `closed the master connection to ${config.host} (${state.path})`
      : `no master connection to ${config.host} was open (${state.path})`,
  );
}
