#!/usr/bin/env bash
# A fake PBS Professional (qsub, qstat, qselect) for agent tests, dispatched on the name it is
# called by. State lives in $FAKE_SCHED:
#   jobs           seq TAB name TAB state TAB owner TAB exit_status (one line per job)
#   calls          one line per qsub call: name TAB cwd TAB arguments
#   violations     why a qsub call broke a rule the agent must keep (cap, two at once)
#   cap            the most unfinished jobs of the user a qsub may ever see (a test's MAX_QUEUED)
#   mode[.NAME]    what qsub does (for job NAME): ok | limit | limit-user | reject-queue | reject-unauth |
#                  submitted-then-fail | fail | killed | noid; a "once-" prefix is consumed
#   qstat.nox      qstat rejects -x with a usage error
#   qstat.fail     qstat and qselect cannot reach the server (the messages of a stopped server)
#   connections    one line per server connection a query opened: command TAB what (PBS opens
#                  one per job id given to qstat, one per qselect)
#   comment.SEQ    the job's comment attribute (e.g. "Can Never Run: ...")
#   on_qsub        a bash script run after each qsub call (e.g. to play a trigger arriving meanwhile)
# Messages are the ones a real OpenPBS 23.06 server printed (test/fixtures/pbspro).
set -u
S=${FAKE_SCHED:?FAKE_SCHED must be set}
FIX=${FAKE_FIXTURES:?FAKE_FIXTURES must be set}
ME=${USER:-$(id -un)}
SERVER=fakehost
touch "$S/jobs"

lock() { until mkdir "$S/.lk" 2>/dev/null; do :; done; }
unlock() { rmdir "$S/.lk"; }

unfinished_of_user() { awk -F'\t' -v u="$ME" '$4 == u && $3 != "F" { n++ } END { print n + 0 }' "$S/jobs"; }

add_job() { # NAME STATE
  local seq
  seq=$(cat "$S/seq" 2>/dev/null || echo 0)
  echo $((seq + 1)) >"$S/seq"
  printf '%s\t%s\t%s\t%s\t\n' "$seq" "$1" "$2" "$ME" >>"$S/jobs"
  echo "$seq.$SERVER"
}

do_qsub() {
  local args=("$@") script="" name="" queue="" i mode modefile
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      -N) name=${args[i + 1]}; i=$((i + 1)) ;;
      -q) queue=${args[i + 1]}; i=$((i + 1)) ;;
      -o | -e | -l | -A | -j) i=$((i + 1)) ;;
      *) script=${args[i]} ;;
    esac
  done
  if [ -z "$script" ] || [ ! -f "$script" ]; then
    cat "$FIX/qsub_missing_script.err" 2>/dev/null || echo "qsub: script file:: No such file or directory" >&2
    exit 1
  fi
  [ -n "$name" ] || name=$(sed -n 's/^#PBS[[:space:]]\{1,\}-N[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$script" | head -1)
  [ -n "$queue" ] || queue=$(sed -n 's/^#PBS[[:space:]]\{1,\}-q[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$script" | head -1)
  if ! mkdir "$S/.inflight" 2>/dev/null; then
    echo "two qsub calls at once ($name)" >>"$S/violations"
  fi
  lock
  printf '%s\t%s\t%s\n' "$name" "$PWD" "${args[*]}" >>"$S/calls"
  modefile="$S/mode"
  [ -f "$S/mode.$name" ] && modefile="$S/mode.$name"
  mode=$(cat "$modefile" 2>/dev/null || echo ok)
  case $mode in once-*) rm -f "$modefile"; mode=${mode#once-} ;; esac
  [ "$queue" != nosuch ] || mode=reject-queue
  if [ -f "$S/cap" ] && [ "$(unfinished_of_user)" -ge "$(cat "$S/cap")" ]; then
    echo "qsub of $name with $(unfinished_of_user) unfinished jobs (cap $(cat "$S/cap"))" >>"$S/violations"
  fi
  local rc=0
  case $mode in
    ok) add_job "$name" Q ;;
    noid) : ;;
    limit) cat "$FIX/qsub_mq3_over_limit.err" >&2; rc=38 ;;
    limit-user) cat "$FIX/qsub_mq_user_over_limit.err" >&2; rc=38 ;;
    reject-queue) cat "$FIX/qsub_bad_queue.err" >&2; rc=170 ;;
    reject-unauth) echo "qsub: Unauthorized Request " >&2; rc=159 ;;
    submitted-then-fail) add_job "$name" Q >/dev/null; echo "qsub: Error (15031) returning job id" >&2; rc=1 ;;
    fail) echo "qsub: Error (15031) something unclear" >&2; rc=1 ;;
    killed) add_job "$name" Q >/dev/null; rc=137 ;;
  esac
  unlock
  rmdir "$S/.inflight" 2>/dev/null
  if [ -f "$S/on_qsub" ]; then bash "$S/on_qsub"; fi
  exit "$rc"
}

connection() { printf '%s\t%s\n' "$1" "$2" >>"$S/connections"; }

print_record() { # SEQ NAME STATE OWNER EXIT
  printf 'Job Id: %s.%s\n' "$1" "$SERVER"
  printf '    Job_Name = %s\n' "$2"
  printf '    Job_Owner = %s@%s\n' "$4" "$SERVER"
  printf '    job_state = %s\n' "$3"
  printf '    queue = workq\n'
  printf '    Variable_List = PBS_O_HOME=/home/%s,PBS_O_LOGNAME=%s,\n\tPBS_O_PATH=/usr/bin:/bin,PBS_O_WORKDIR=/tmp\n' "$4" "$4"
  [ ! -f "$S/comment.$1" ] || printf '    comment = %s\n' "$(cat "$S/comment.$1")"
  [ -z "$5" ] || printf '    Exit_status = %s\n' "$5"
  printf '\n'
}

do_qstat() {
  local full="" hist="" ids=() a rc=0
  for a in "$@"; do
    case $a in
      -f) full=1 ;;
      -x) hist=1 ;;
      -*) echo "qstat: invalid option -- '${a#-}'" >&2; exit 2 ;;
      *) ids+=("$a") ;;
    esac
  done
  if [ -n "$hist" ] && [ -f "$S/qstat.nox" ]; then
    echo "qstat: invalid option -- 'x'" >&2
    echo "usage: qstat [-f] [ job_identifier... ]" >&2
    exit 2
  fi
  if [ -f "$S/qstat.fail" ]; then
    cat "$FIX/qstat_server_down.err" >&2
    exit 255
  fi
  [ -n "$full" ] || { echo "fake qstat only does -f" >&2; exit 2; }
  lock
  local jobs
  jobs=$(cat "$S/jobs")
  unlock
  if [ "${#ids[@]}" -eq 0 ]; then
    connection qstat all
    while IFS=$'\t' read -r seq name state owner ex; do
      [ -n "$seq" ] || continue
      [ "$state" != F ] || [ -n "$hist" ] || continue
      print_record "$seq" "$name" "$state" "$owner" "$ex"
    done <<<"$jobs"
    exit 0
  fi
  for a in "${ids[@]}"; do
    local line
    connection qstat "$a"
    line=$(awk -F'\t' -v id="${a%%.*}" '$1 == id' <<<"$jobs")
    if [ -z "$line" ]; then
      echo "qstat: Unknown Job Id $a" >&2
      rc=153
      continue
    fi
    IFS=$'\t' read -r seq name state owner ex <<<"$line"
    if [ "$state" = F ] && [ -z "$hist" ]; then
      echo "qstat: $a Job has finished, use -x or -H to obtain historical job information" >&2
      rc=35
      continue
    fi
    print_record "$seq" "$name" "$state" "$owner" "$ex"
  done
  exit "$rc"
}

do_qselect() {
  local user="" hist="" states="" name=""
  while [ $# -gt 0 ]; do
    case $1 in
      -u) user=$2; shift ;;
      -s) states=$2; shift ;;
      -N) name=$2; shift ;;
      -x) hist=1 ;;
    esac
    shift
  done
  [ ! -f "$S/qstat.fail" ] || { cat "$FIX/qselect_server_down.err" >&2; exit 162; }
  connection qselect "${user:+-u $user}${states:+ -s $states}${name:+ -N $name}${hist:+ -x}"
  lock
  awk -F'\t' -v u="$user" -v h="$hist" -v st="$states" -v n="$name" -v s="$SERVER" '
    ($4 == u || u == "") && (h != "" || $3 != "F") && (st == "" || index(st, $3) > 0) && (n == "" || $2 == n) { print $1 "." s }
  ' "$S/jobs"
  unlock
}

case $(basename "$0") in
  qsub) do_qsub "$@" ;;
  qstat) do_qstat "$@" ;;
  qselect) do_qselect "$@" ;;
  *) echo "fakepbs: called as $(basename "$0")?" >&2; exit 2 ;;
esac
