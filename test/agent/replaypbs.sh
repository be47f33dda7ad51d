#!/usr/bin/env bash
# Plays back real PBS Professional captures (test/fixtures/pbspro) for agent tests: qstat,
# qselect and qsub answer with the capture named for their argument list in $FAKE_SCHED/replay
# (lines "<command> <arguments> TAB <capture>"). `qstat -f -x ID...` with no line of its own
# answers each id from its "qstat -f -x ID" line, as PBS does (one record, one connection, per id).
# Every call is counted in $FAKE_SCHED/connections.
set -u
S=${FAKE_SCHED:?FAKE_SCHED must be set}
FIX=${FAKE_FIXTURES:?FAKE_FIXTURES must be set}
cmd=$(basename "$0")

capture_for() { awk -F'\t' -v k="$1" '$1 == k { print $2; exit }' "$S/replay" 2>/dev/null; }

play() { # CAPTURE
  cat "$FIX/$1.out"
  cat "$FIX/$1.err" >&2
  return "$(cat "$FIX/$1.rc")"
}

key="$cmd $*"
cap=$(capture_for "$key")
if [ -n "$cap" ]; then
  printf '%s\t%s\n' "$cmd" "$*" >>"$S/connections"
  play "$cap"
  exit
fi
if [ "$cmd" = qstat ] && [ "${1:-}" = -f ] && [ "${2:-}" = -x ] && [ $# -gt 2 ]; then
  shift 2
  rc=0
  for id in "$@"; do
    printf '%s\t%s\n' qstat "-f -x $id" >>"$S/connections"
    cap=$(capture_for "qstat -f -x $id")
    if [ -z "$cap" ]; then
      echo "qstat: Unknown Job Id $id" >&2
      rc=153
      continue
    fi
    play "$cap" || rc=$?
  done
  exit "$rc"
fi
echo "replaypbs: no capture for: $key" >&2
exit 99
