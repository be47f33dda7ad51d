import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { shellQuote } from "../../src/core/layout.ts";
import { shellWord, splitUtf8Runs } from "../../src/ssh/quote.ts";

describe("shellQuote", () => {
  test.each([
    ["", "''"],
    ["plain-word_1.txt", "plain-word_1.txt"],
    ["a b", "'a b'"],
    ["it's", "'it'\\''s'"],
    ["a=b", "'a=b'"],
    ["~/x", "'~/x'"],
  ])("%j → %s", (input, expected) => {
    expect(shellQuote(input)).toBe(expected);
  });
  test("NUL cannot be passed", () => {
    expect(() => shellQuote("a\0b")).toThrow(/NUL/);
    expect(() => shellWord(Buffer.from([0x61, 0]))).toThrow(/NUL/);
  });
});

describe("splitUtf8Runs", () => {
  test("separates well-formed UTF-8 from other bytes", () => {
    const b = Buffer.from([0x61, 0xc3, 0xa9, 0xff, 0xfe, 0x0a, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80]);
    expect(splitUtf8Runs(b).map((r) => [r.valid, r.bytes.toString("hex")])).toEqual([
      [true, "61c3a9"],
      [false, "fffe"],
      [true, "0a"],
      [false, "eda080"],
      [true, "f09f9880"],
    ]);
  });
});

describe("shellWord through a local sh (the remote one is tested in session.test.ts)", () => {
  test("non-UTF-8 bytes and trailing newlines arrive unchanged", () => {
    const samples = [
      Buffer.from([0xff, 0x0a, 0x0a]),
      Buffer.from("\n\n"),
      Buffer.from([0x80, 0x27, 0x5c, 0x24]),
    ];
    for (const s of samples) {
      const out = execFileSync("sh", ["-c", `printf %s ${shellWord(s)}`]);
      expect(out.toString("hex")).toBe(s.toString("hex"));
    }
    expect(shellWord(Buffer.from("plain"))).toBe("plain");
  });
});
