#!/usr/bin/env python3
"""Run a command on a real pseudo-terminal and answer it like a person.

usage: pty_drive.py STEPS_JSON -- COMMAND...
STEPS_JSON is a list of [text_to_wait_for, keys_to_type]. Prints the whole transcript, then
exits with the command's exit code (124 when a wait or the command exceeds its deadline).
"""
import json
import os
import pty
import select
import sys
import time

DEADLINE_S = 60.0


def main() -> int:
    steps = json.loads(sys.argv[1])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    transcript = b""
    deadline = time.monotonic() + DEADLINE_S
    seen = 0  # transcript offset after the last matched prompt

    def pump(timeout: float) -> bool:
        nonlocal transcript
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        transcript += data
        return True

    alive = True
    for want, keys in steps:
        want_b = want.encode()
        while alive and want_b not in transcript[seen:]:
            if time.monotonic() > deadline:
                sys.stdout.write(transcript.decode(errors="replace"))
                sys.stdout.write(f"\n[pty_drive: timed out waiting for {want!r}]\n")
                os.kill(pid, 9)
                return 124
            alive = pump(0.2)
        if want_b not in transcript[seen:]:
            break
        seen = transcript.index(want_b, seen) + len(want_b)
        os.write(fd, keys.encode())
    while alive and time.monotonic() < deadline:
        alive = pump(0.2)
    if alive:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    if alive:
        return 124
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())
