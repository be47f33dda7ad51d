// Test driver: opens a session with the terminal prompter and runs `id -un`, as the CLI would.
// argv[2] is JSON: { target: TargetConfig, otpCommand?, acceptNewHostKey?, sshConfigFile? }.
import { createTerminalPrompter } from "../../src/cli/prompt.ts";
import { isChasquiError } from "../../src/errors.ts";
import { defaultResolveDeps, resolveTarget } from "../../src/ssh/resolve.ts";
import { execChecked, openSession } from "../../src/ssh/session.ts";

const args = JSON.parse(process.argv[2] ?? "{}");
try {
  const target = await resolveTarget(
    args.target,
    defaultResolveDeps(args.sshConfigFile ? { sshConfigFile: args.sshConfigFile } : {}),
  );
  const session = await openSession({
    target,
    otpCommand: args.otpCommand ?? null,
    prompter: createTerminalPrompter(),
    acceptNewHostKey: args.acceptNewHostKey === true,
  });
  try {
    const r = await execChecked(session, "id -un");
    process.stdout.write(`RESULT:${r.stdout.toString().trim()}\n`);
    process.stdout.write(`METHODS:${session.authMethods.map((m) => m.method).join(",")}\n`);
  } finally {
    await session.close();
  }
} catch (e) {
  process.stderr.write(`ERROR:${isChasquiError(e) ? e.exitCode : "?"}:${(e as Error).message}\n`);
  process.exitCode = isChasquiError(e) ? e.exitCode : 1;
}
