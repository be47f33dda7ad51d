// File-system errors said in words: a sentence and a hint, never an errno code, exit 1.
import { describe, expect, test } from "bun:test";
import { ExitCode, FileError, fromSystemError } from "../../src/errors.ts";

const sysError = (code: string, syscall: string, path: string) =>
  Object.assign(new Error(`${code}: something, ${syscall} '${path}'`), { code, syscall, path });

describe("file-system problems", () => {
  test.each([
    ["EROFS", "open", "cannot open /h/jobs.json: the file system is read-only"],
    ["ENOSPC", "write", "cannot write /h/jobs.json: the disk is full"],
    ["EACCES", "mkdir", "cannot create the folder /h/jobs.json: permission denied"],
    ["ENOTDIR", "open", "cannot open /h/jobs.json: a file is where a folder should be"],
    ["EDQUOT", "write", "cannot write /h/jobs.json: your disk quota is used up"],
  ])("%s during %s", (code, syscall, message) => {
    const e = fromSystemError(sysError(code, syscall, "/h/jobs.json"))!;
    expect(e.message).toBe(message);
    expect(e.hint).toBeTruthy();
    expect(e.exitCode).toBe(ExitCode.failure);
    expect(`${e.message} ${e.hint}`).not.toMatch(/\bE[A-Z]{3,}\b/);
  });

  test("an error that is not a file-system one is left alone", () => {
    expect(fromSystemError(new Error("boom"))).toBeNull();
    expect(fromSystemError(Object.assign(new Error("x"), { code: "ERR_SOMETHING" }))).toBeNull();
  });

  test("FileError names the file and the reason", () => {
    const e = new FileError("write", "/h/config.json", sysError("EACCES", "open", "/h/config.json"));
    expect(e.message).toBe("cannot write /h/config.json: permission denied");
  });
});
