// The command line: commander parses argv into one typed options object per command and calls
// its handler (loaded lazily, so `--help` stays fast). Errors become exit codes here, nowhere else.
import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { ChasquiError, ExitCode, fromSystemError, isChasquiError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { type CliContext, OutputClosed, processContext, write } from "./context.ts";

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const int = (name: string) => (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
  return Number(value);
};

function buildProgram(ctx: CliContext): Command {
  const program = new Command("chasqui")
    .description("Run hundreds of batch jobs on a remote HPC cluster: one SSH login per sync.")
    .version(VERSION, "-V, --version")
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.out.write(s),
      writeErr: (s) => ctx.err.write(s),
    })
    .exitOverride();

  program
    .command("init")
    .description("create the config in $CHASQUI_HOME (default ~/.chasqui)")
    .requiredOption("--host <host>", "login host name or ~/.ssh/config alias")
    .option("--port <n>", "SSH port", int("--port"))
    .option("--user <user>", "login user name")
    .option("--identity <file>", "private key file")
    .option("--known-hosts <file>", "known_hosts file (default: OpenSSH's)")
    .option("--remote-dir <dir>", "chasqui's folder on the cluster, under the login home unless absolute")
    .option("--work-root <dir>", "where job work folders live on the cluster (e.g. scratch)")
    .addOption(new Option("--scheduler <kind>", "scheduler on the cluster").choices(["pbs", "slurm"]))
    .option(
      "--max-queued <n>",
      "most jobs of yours queued or running at once (default 40)",
      int("--max-queued"),
    )
    .option("--max-running <n>", "most jobs of yours running at once (default 30)", int("--max-running"))
    .option("--template <name>", "default batch template (default pbspro-vasp)")
    .option("--otp-command <cmd>", "command that prints a one-time code for the login prompt")
    .option("--set <KEY=VALUE>", "template variable for all jobs (repeatable)", collect, [])
    .option("--download", "fetch the results of finished jobs at every sync (download_results)")
    .option("--results-dir <dir>", "put results under <dir>/<job id> instead of each job's own folder")
    .option(
      "--trigger-host <host>",
      "login node where ending jobs run the agent (by the cluster's ssh) when compute nodes cannot qsub",
    )
    .option("--force", "replace an existing config")
    .option("--json", "print the config as JSON")
    .action(async (opts) => (await import("./commands/init.ts")).initCommand(ctx, opts));

  program
    .command("add")
    .description("add job folders (each with POSCAR, INCAR, KPOINTS, POTCAR) to the local queue")
    .argument("<dir...>", "job folders")
    .option("--name <name>", "job name (only with one folder)")
    .option("--template <name>", "batch template for these jobs")
    .option("--set <KEY=VALUE>", "template variable for these jobs (repeatable)", collect, [])
    .option("--force", "send inputs larger than max_input_mb (default 200 MB) anyway")
    .option("--json", "print the added jobs as JSON")
    .action(async (dirs, opts) => (await import("./commands/add.ts")).addCommand(ctx, dirs, opts));

  program
    .command("list")
    .alias("ls")
    .description("list jobs")
    .option("--state <state>", "only jobs in this state (e.g. RUNNING, DONE)")
    .option("--wide", "on a terminal: every column in full, whatever its width")
    .option("--json", "print an array of jobs as JSON")
    .action(async (opts) => (await import("./commands/list.ts")).listCommand(ctx, opts));

  program
    .command("show")
    .description("show one job and its history")
    .argument("<job>", "job id")
    .option("--json", "print the job as JSON")
    .action(async (job, opts) => (await import("./commands/show.ts")).showCommand(ctx, job, opts));

  program
    .command("sync")
    .description("one SSH session: upload new jobs, let the agent submit within limits, collect states")
    .option("--dry-run", "print what would be sent; connect to nothing, change nothing")
    .option("--scripts", "with --dry-run: print each batch script too")
    .option("--download", "also fetch the results of finished jobs, in the same session")
    .option("--no-download", "do not fetch results this time, whatever download_results says")
    .option("--accept-new-host-key", "trust the host key of a host seen for the first time")
    .option("--json", "print the summary as JSON")
    .option(
      "--cron",
      "as run by `chasqui cron install`: never ask, exit 4 silently when another chasqui is at " +
        "work, a dated header and one line per error (for sync.log, rotated at 1 MB)",
    )
    .action(async (opts) => (await import("./commands/sync.ts")).syncCommand(ctx, opts));

  program
    .command("cancel")
    .description(
      "cancel jobs: local ones at once; on the cluster, out of waiting/ or deleted in the\n" +
        "scheduler (qdel/scancel), in one SSH session. They end CANCELLED.",
    )
    .argument("<job...>", "job ids")
    .option("--next-sync", "do not connect now: the next `chasqui sync` cancels them on the cluster")
    .option("--accept-new-host-key", "trust the host key of a host seen for the first time")
    .option("--json", "print the result as JSON")
    .action(async (jobs, opts) => (await import("./commands/cancel.ts")).cancelCommand(ctx, jobs, opts));

  program
    .command("download")
    .description(
      "fetch results in one SSH session: by default those of finished jobs not yet home\n" +
        "(which files: download_globs; where: the job folder, or results_dir/<id>)",
    )
    .argument("[job...]", "job ids (default: every finished job whose results are not home)")
    .option("--all", "every job that has been on the cluster, running ones too (what they wrote so far)")
    .option("--force", "also jobs whose results are home already (only what changed travels)")
    .option("--accept-new-host-key", "trust the host key of a host seen for the first time")
    .option("--json", "print what was fetched as JSON")
    .action(async (jobs, opts) => (await import("./commands/download.ts")).downloadCommand(ctx, jobs, opts));

  program
    .command("retry")
    .description(
      "send FAILED, TIMEOUT, LOST or CANCELLED jobs (DONE ones with --force) again at the next sync",
    )
    .argument("<job...>", "job ids")
    .option("--restart", "keep the previous run under run.N/ and continue from its CONTCAR")
    .option("--force", "also DONE jobs (a convergence rerun)")
    .option("--json", "print the jobs as JSON")
    .action(async (jobs, opts) => (await import("./commands/retry.ts")).retryCommand(ctx, jobs, opts));

  program
    .command("status")
    .description("at a glance, without connecting: the last sync, jobs by state, the cluster's numbers then")
    .option("--json", "print the status as JSON")
    .action(async (opts) => (await import("./commands/status.ts")).statusCommand(ctx, opts));

  program
    .command("edit")
    .description("change the variables of a job not sent yet, or of one that ended (for its next retry)")
    .argument("<job>", "job id")
    .option("--set <KEY=VALUE>", "template variable for this job (repeatable)", collect, [])
    .option("--json", "print the job as JSON")
    .action(async (job, opts) => (await import("./commands/edit.ts")).editCommand(ctx, job, opts));

  program
    .command("rm")
    .description("forget jobs that are not on the cluster right now (never sent, or ended)")
    .argument("<job...>", "job ids")
    .option("--remote", "also remove their folders on the cluster, at the next sync")
    .option("--json", "print what was removed as JSON")
    .action(async (jobs, opts) => (await import("./commands/rm.ts")).rmCommand(ctx, jobs, opts));

  program
    .command("connect")
    .description(
      "open an OpenSSH master connection: one login (your second factor) at a terminal, then " +
        "sync, doctor, download and cancel ride it without one, from cron too",
    )
    .option("--for <duration>", "how long it stays open, e.g. 12h, 90m, 2d (default 12h)")
    .option("--json", "print the connection as JSON")
    .action(async (opts) => (await import("./commands/connect.ts")).connectCommand(ctx, opts));

  program
    .command("disconnect")
    .description("close the master connection `chasqui connect` opened")
    .option("--json", "print the result as JSON")
    .action(async (opts) => (await import("./commands/connect.ts")).disconnectCommand(ctx, opts));

  const cron = program.command("cron").description("run `chasqui sync` from your crontab");
  cron
    .command("install")
    .description(
      "add (or replace) one crontab line that runs `chasqui sync --cron` into $CHASQUI_HOME/sync.log",
    )
    .option("--every <interval>", "how often: 5m, 10m, 15m, 20m, 30m, 1h, 2h, ... (default 30m)")
    .option("--json", "print the line as JSON")
    .action(async (opts) => (await import("./commands/cron.ts")).cronInstall(ctx, opts));
  cron
    .command("remove")
    .description("remove chasqui's line for this $CHASQUI_HOME; the others stay as they are")
    .option("--json", "print the result as JSON")
    .action(async (opts) => (await import("./commands/cron.ts")).cronRemove(ctx, opts));
  cron
    .command("show")
    .description("print chasqui's crontab line for this $CHASQUI_HOME")
    .option("--json", "print it as JSON")
    .action(async (opts) => (await import("./commands/cron.ts")).cronShow(ctx, opts));

  const template = program.command("template").description("batch-script templates");
  template
    .command("list")
    .description("list templates (user files in $CHASQUI_HOME/templates override the built-in ones)")
    .option("--json", "print as JSON")
    .action(async (opts) => (await import("./commands/template.ts")).templateList(ctx, opts));
  template
    .command("show")
    .description("print a template's source")
    .argument("<name>", "template name")
    .action(async (name) => (await import("./commands/template.ts")).templateShow(ctx, name));
  template
    .command("init")
    .description("copy the built-in templates (or one) to $CHASQUI_HOME/templates for editing")
    .argument("[name]", "template name")
    .action(async (name) => (await import("./commands/template.ts")).templateInit(ctx, name));
  template
    .command("render")
    .description("print exactly the batch script sync would upload for a job")
    .argument("<job>", "job id")
    .action(async (job) => (await import("./commands/template.ts")).templateRender(ctx, job));

  program
    .command("doctor")
    .description("check config, host key, login, scheduler commands and the remote folder (one login)")
    .option("--accept-new-host-key", "trust the host key of a host seen for the first time")
    .option("--json", "print the checks as JSON")
    .action(async (opts) => (await import("./commands/doctor.ts")).doctorCommand(ctx, opts));

  for (const cmd of [program, ...program.commands, ...template.commands, ...cron.commands]) {
    cmd.exitOverride();
    // Usage errors are printed by reportError, like every other error.
    cmd.configureOutput({
      writeOut: (s) => ctx.out.write(s),
      writeErr: (s) => ctx.err.write(s),
      outputError: () => {},
    });
  }
  return program;
}

/** Run chasqui with `argv` (without the program name); returns the exit code. */
export async function runCli(argv: string[], ctx: CliContext = processContext()): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (e) {
    return reportError(ctx, e, argv, program);
  }
}

/** Every failure leaves here: one `chasqui: ...` line and a hint, and with --json the same as JSON. */
function reportError(ctx: CliContext, e: unknown, argv: readonly string[], program: Command): number {
  if (e instanceof OutputClosed) return ExitCode.ok;
  let error: ChasquiError;
  if (e instanceof CommanderError) {
    // --help and --version end this way too.
    if (e.exitCode === 0 || e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
    error = usageError(e, argv, program);
  } else if (isChasquiError(e)) {
    error = e;
  } else {
    error =
      fromSystemError(e) ??
      new ChasquiError(`unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  if (error.silent) return error.exitCode;
  if (argv.includes("--cron")) {
    // One line per failed run in sync.log, the hint in parentheses.
    write(
      ctx.err,
      `chasqui: ${error.message.replace(/\s*\n\s*/g, " ")}${error.hint ? ` (${error.hint})` : ""}`,
    );
  } else {
    write(ctx.err, `chasqui: ${error.message}`);
    if (error.hint) write(ctx.err, `hint: ${error.hint}`);
  }
  if (argv.includes("--json") && !error.outputWritten) {
    const json = { error: { message: error.message, hint: error.hint ?? null, exit_code: error.exitCode } };
    write(ctx.out, JSON.stringify(json, null, 2));
  }
  return error.exitCode;
}

/** commander's `error: ...` as one of ours, with the help of the command it was about. */
function usageError(e: CommanderError, argv: readonly string[], program: Command): ChasquiError {
  const message = e.message
    .replace(/^error: /, "")
    .replace(/\s*\n\s*/g, " ")
    .trim();
  const names = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  const command = argv.find((a) => names.has(a));
  const sub = command === "template" || command === "cron" ? argv[argv.indexOf(command) + 1] : undefined;
  const help = ["chasqui", command, sub && !sub.startsWith("-") ? sub : undefined, "--help"]
    .filter(Boolean)
    .join(" ");
  return new ChasquiError(message, { exitCode: ExitCode.badInput, hint: `\`${help}\` shows the usage.` });
}
