#!/usr/bin/env bun
// Entry point and the one exit point: runs the command line and turns errors into exit codes.
import { runCli } from "./cli/program.ts";

process.exitCode = await runCli(process.argv.slice(2));
