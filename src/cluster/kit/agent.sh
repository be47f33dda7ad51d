#!/usr/bin/env bash
# chasqui-agent-version: 4
# The chasqui agent: submits the batch scripts in waiting/ under the user's queue limits, one agent
# at a time, and reports the scheduler's view of the user's jobs. Layout and events: docs/REMOTE.md.
#   bash R/agent.sh run | trigger [--from-job [--within S] [--job ID] [--here]]
#                   | snapshot [SCHEDULER_ID...] | cancel ID[=SCHEDULER_ID]... | version
set -u

if [ -z "${BASH_VERSINFO[0]:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "chasqui agent: needs bash 4 or newer" >&2
  exit 2
fi

R=$(cd "$(dirname "$0")" && pwd -P) || exit 1
TAB=$'\t'
LOCK="$R/agent.lock"
PENDING="$R/agent.pending"
LOG="$R/agent.log"
WAITING="$R/waiting"
SUBMITTING="$R/submitting"
SUBMITTED="$R/submitted"
REJECTED="$R/rejected"
CANCELLED="$R/cancelled"
AGENT_USER=${USER:-}
[ -n "$AGENT_USER" ] || AGENT_USER=$(id -un)
HOST=$(uname -n)
STALE_SECONDS=600       # a lock whose owner has not written for this long is stale (any host)
LOG_ROTATE_BYTES=16777216
DETAIL_MAX=1000
FROM_JOB=""
SELF_ID=""              # the calling batch job (trigger --from-job): it is ending, do not count it
DEADLINE=""             # inside a job (trigger --within N): no qsub starts after this epoch second
VIA=""                  # trigger_host: the compute node that asked for this run
HAVE_LOCK=""
TMPD=""

# ---------------------------------------------------------------------------- config

load_conf() {
  MAX_QUEUED=40
  MAX_RUNNING=30
  SCHEDULER=pbs
  WORK_ROOT="$R/jobs"
  QSUB_TIMEOUT=120
  TRIGGER_HOST=""
  local line key val
  if [ -f "$R/agent.conf" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line%$'\r'}
      case $line in '' | '#'*) continue ;; esac
      key=${line%%=*}
      val=${line#*=}
      [ "$key" != "$line" ] || continue
      case $key in
        MAX_QUEUED) [[ $val =~ ^[0-9]+$ ]] && MAX_QUEUED=$((10#$val)) ;;
        MAX_RUNNING) [[ $val =~ ^[0-9]+$ ]] && MAX_RUNNING=$((10#$val)) ;;
        QSUB_TIMEOUT) [[ $val =~ ^[1-9][0-9]*$ ]] && QSUB_TIMEOUT=$((10#$val)) ;;
        SCHEDULER) SCHEDULER=$val ;;
        TRIGGER_HOST) [[ $val =~ ^[A-Za-z0-9._@:-]*$ ]] && TRIGGER_HOST=$val ;;
        WORK_ROOT) [ -z "$val" ] || WORK_ROOT=$val ;;
      esac
    done <"$R/agent.conf"
  fi
  case $SCHEDULER in
    pbs | slurm) ;;
    *)
      echo "chasqui agent: agent.conf: SCHEDULER must be pbs or slurm, not '$SCHEDULER'" >&2
      exit 2
      ;;
  esac
  # Like remote_dir, a relative work root is relative to the login home.
  case $WORK_ROOT in /*) ;; *) WORK_ROOT="$HOME/$WORK_ROOT" ;; esac
  TIMEOUT_CMD=()
  if command -v timeout >/dev/null 2>&1; then
    if timeout -k 1 5 true 2>/dev/null; then
      TIMEOUT_CMD=(timeout -k 10 "$QSUB_TIMEOUT")
    else
      TIMEOUT_CMD=(timeout "$QSUB_TIMEOUT")
    fi
  fi
}

make_tmp() {
  [ -n "$TMPD" ] && return 0
  # Under the remote folder, never in $TMPDIR: a batch job's $TMPDIR is removed when it ends, and
  # PBS kills the job's processes at that moment too.
  TMPD=$(mktemp -d "$R/.tmp.XXXXXX") || {
    echo "chasqui agent: cannot create a temporary folder" >&2
    exit 1
  }
}

cleanup() {
  [ -z "$HAVE_LOCK" ] || lock_release
  [ -z "$TMPD" ] || rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

now() { date +%s; }

# ---------------------------------------------------------------------------- lock

lock_write_owner() {
  local tmp="$LOCK/owner.$$"
  printf '%s %s %s\n' "$HOST" "$$" "$(now)" >"$tmp" 2>/dev/null && mv -f "$tmp" "$LOCK/owner" 2>/dev/null
}

# True while the lock still names this process (another agent may have judged it stale).
lock_is_mine() {
  local host pid epoch
  read -r host pid epoch <"$LOCK/owner" 2>/dev/null || return 1
  [ "$host" = "$HOST" ] && [ "$pid" = "$$" ]
}

# Stale: the owner is on this host and its pid is dead, or it has not written for STALE_SECONDS.
lock_is_stale() {
  local host="" pid="" epoch=""
  if ! read -r host pid epoch <"$LOCK/owner" 2>/dev/null || [ -z "$epoch" ]; then
    # No owner yet: being created right now, or its creator died before writing. Judge by age.
    [ -d "$LOCK" ] && [ -n "$(find "$LOCK" -maxdepth 0 -mmin +$((STALE_SECONDS / 60)) 2>/dev/null)" ]
    return
  fi
  [[ $pid =~ ^[0-9]+$ && $epoch =~ ^[0-9]+$ ]] || return 0
  if [ "$host" = "$HOST" ] && ! kill -0 "$pid" 2>/dev/null; then return 0; fi
  [ $(($(now) - epoch)) -gt "$STALE_SECONDS" ]
}

# Break a stale lock. Only the holder of agent.lock.break may do it, and it checks again under
# that lock, so two agents breaking at once cannot both remove a lock (nor a fresh one).
lock_break() {
  local grave
  if ! mkdir "$LOCK.break" 2>/dev/null; then
    # A breaker that died mid-break (a few milliseconds of work): clear its lock after a minute.
    if [ -n "$(find "$LOCK.break" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
      grave="$R/.agent.lock.break.dead.$HOST.$$"
      mv "$LOCK.break" "$grave" 2>/dev/null && rm -rf "$grave"
    fi
    return 1
  fi
  if lock_is_stale; then
    grave="$R/.agent.lock.stale.$HOST.$$"
    if mv "$LOCK" "$grave" 2>/dev/null; then rm -rf "$grave"; fi
  fi
  rmdir "$LOCK.break" 2>/dev/null
  return 0
}

lock_try() {
  local attempt
  for attempt in 1 2 3; do
    if mkdir "$LOCK" 2>/dev/null; then
      if lock_write_owner; then
        HAVE_LOCK=1
        return 0
      fi
      rm -rf "$LOCK"
      echo "chasqui agent: cannot write $LOCK/owner" >&2
      return 1
    fi
    if [ ! -d "$LOCK" ] && [ "$attempt" -eq 3 ]; then
      echo "chasqui agent: cannot create $LOCK" >&2
      return 1
    fi
    lock_is_stale || return 1
    lock_break || return 1
  done
  return 1
}

lock_release() {
  if lock_is_mine; then
    rm -f "$LOCK/owner" "$LOCK/owner.$$"
    rmdir "$LOCK" 2>/dev/null
  fi
  HAVE_LOCK=""
}

# ---------------------------------------------------------------------------- log

# One complete line per event, appended with one printf, only while holding the lock.
log_event() { # EVENT JOB_ID DETAIL
  local detail=${3:-}
  detail=${detail//[$'\t\r\n']/ }
  [ "${#detail}" -le "$DETAIL_MAX" ] || detail="${detail:0:DETAIL_MAX}..."
  printf '%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "$detail" >>"$LOG"
}

rotate_log() {
  local size
  [ -f "$LOG" ] || return 0
  size=$(wc -c <"$LOG" 2>/dev/null) || return 0
  [ "${size// /}" -le "$LOG_ROTATE_BYTES" ] || mv -f "$LOG" "$LOG.1"
}

# Scheduler ids this job was already known by (SUBMIT/RECOVER lines), space separated.
known_ids() { # JOB_ID
  local f files=()
  for f in "$LOG.1" "$LOG"; do [ -f "$f" ] && files+=("$f"); done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk -F'\t' -v id="$1" '$3 == id && ($2 == "SUBMIT" || $2 == "RECOVER") { printf "%s ", $4 }' "${files[@]}"
}

# ---------------------------------------------------------------------------- scheduler view

# Every question to the scheduler is bounded whatever the user's history: PBS opens one server
# connection per job id given to qstat (each holds a privileged port for a minute), and a server
# keeps weeks of finished jobs. So the limits come from two qselect calls (the user's unfinished
# jobs, and those running), a job name is looked up only when a submission is in doubt, and the
# sync's snapshot asks about chasqui's own open jobs by id. Errors go to $TMPD/query.err.
#
# A view: one line per job, <scheduler_id> TAB <name> TAB <state> TAB <exit_status> TAB <comment>
# TAB <native state>. States: PBS letters as the scheduler prints them (Q R H E F X W T S B M U C),
# Slurm's codes mapped onto them (the code itself in the last column); names may be empty where
# the question did not need them (qselect gives ids only).

have() { command -v "$1" >/dev/null 2>&1; }

usage_error() { grep -qiE 'usage|invalid option|illegal option|unknown option|unrecognized option|conflicting' "$TMPD/query.err"; }

# Every error line says a job we asked about has gone (between qselect and qstat, or finished
# without -x), or there is no error text at all (the Torque wrapper exits 153 when it found nothing).
only_vanished_errors() { ! grep -v -iE 'unknown job id|job has finished|^[[:space:]]*$' "$TMPD/query.err" >/dev/null; }

# The user's unfinished jobs, for the limits (names empty with qselect).
active_view() {
  case $SCHEDULER in
    slurm) slurm_query | awk -F'\t' '$3 !~ /^[CFX]$/' ;;
    *) pbs_active ;;
  esac
  return "${PIPESTATUS[0]}"
}

pbs_active() {
  local all run rc
  if ! have qselect; then
    # Slurm's PBS wrappers have no qselect: one qstat -f of the server's unfinished jobs.
    pbs_full | awk -F'\t' '$3 !~ /^[CFX]$/'
    return "${PIPESTATUS[0]}"
  fi
  all=$(qselect -u "$AGENT_USER" 2>"$TMPD/query.err") || return
  run=$(qselect -u "$AGENT_USER" -s RE 2>"$TMPD/query.err")
  rc=$?
  [ "$rc" -eq 0 ] || return "$rc"
  printf '%s\n' "$run" | awk -v all="$all" '
    NF { r[$1] = 1 }
    END { n = split(all, a, "\n"); for (i = 1; i <= n; i++) if (a[i] != "") printf "%s\t\t%s\t\t\t%s\n", a[i], (a[i] in r) ? "R" : "Q", (a[i] in r) ? "R" : "Q" }
  '
}

# Ids of the jobs named NAME in a view ("ID<TAB>NAME<TAB>..." lines) on stdin.
ids_in_view() { # NAME
  awk -F'\t' -v n="$1" 'NF >= 3 && $2 == n { printf "%s ", $1 }'
}

# Ids of the user's jobs named NAME just before its qsub. Where the scheduler cannot be asked by
# name (Slurm; Slurm's PBS wrappers have no qselect) that means listing every job, finished ones
# too: done once per round, not once per submission. While this agent holds the lock no one else
# submits chasqui's names, so the round's list stays true for the names still to go.
ids_named_before() { # NAME
  if [ "$SCHEDULER" != slurm ] && have qselect; then
    ids_named "$1"
    return
  fi
  if [ ! -s "$TMPD/round_view" ]; then
    case $SCHEDULER in
      slurm) slurm_query >"$TMPD/round_view" ;;
      *) pbs_full -x >"$TMPD/round_view" ;;
    esac || {
      local rc=$?
      rm -f "$TMPD/round_view"
      return "$rc"
    }
    # An empty list is a list: mark it as read.
    [ -s "$TMPD/round_view" ] || printf '\n' >"$TMPD/round_view"
  fi
  ids_in_view "$1" <"$TMPD/round_view"
}

# Ids of the user's jobs named NAME, finished ones included (for a submission in doubt): asked
# now, never from the round's list.
ids_named() { # NAME
  local out rc
  case $SCHEDULER in
    slurm)
      out=$(slurm_query) || return
      ;;
    *)
      if have qselect; then
        out=$(qselect -x -u "$AGENT_USER" -N "$1" 2>"$TMPD/query.err")
        rc=$?
        if [ "$rc" -ne 0 ] && usage_error; then
          out=$(qselect -u "$AGENT_USER" -N "$1" 2>"$TMPD/query.err")
          rc=$?
        fi
        [ "$rc" -eq 0 ] || return "$rc"
        printf '%s\n' "$out" | awk 'NF { printf "%s ", $1 }'
        return 0
      fi
      out=$(pbs_full -x) || return
      ;;
  esac
  printf '%s\n' "$out" | ids_in_view "$1"
}

# The scheduler id of a job named NAME whose id is not in EXCLUDE (space separated). Fails with
# 1 when there is none, 2 when the scheduler could not be asked.
find_by_name() { # NAME EXCLUDE
  local ids
  ids=$(ids_named "$1") || return 2
  awk -v ids="$ids" -v ex="$2" '
    BEGIN {
      k = split(ex, e, " "); for (i = 1; i <= k; i++) x[e[i]] = 1
      n = split(ids, a, " "); for (i = 1; i <= n; i++) if (!(a[i] in x)) { print a[i]; exit 0 }
      exit 1
    }'
}

# qstat -f [-x] [IDS...] as a view: history first (-x), without it where qstat has no -x.
pbs_full() { # [-x] [IDS...]
  local out rc hist=()
  if [ "${1:-}" = -x ]; then
    hist=(-x)
    shift
  fi
  out=$(qstat -f ${hist[@]+"${hist[@]}"} "$@" 2>"$TMPD/query.err")
  rc=$?
  if [ "$rc" -ne 0 ] && [ -z "$out" ] && [ ${#hist[@]} -gt 0 ] && usage_error; then
    out=$(qstat -f "$@" 2>"$TMPD/query.err")
    rc=$?
  fi
  if [ "$rc" -ne 0 ] && only_vanished_errors; then rc=0; fi
  printf '%s\n' "$out" | parse_pbs_full
  return "$rc"
}

# `qstat -f` records start at "Job Id:"; PBS Professional indents attributes with 4 spaces and
# continues wrapped values on lines starting with a TAB; the Torque wrapper indents with a TAB and
# does not wrap. Records of other users are dropped (Job_Owner = user@host).
parse_pbs_full() {
  awk -v user="$AGENT_USER" '
    function clean(v) { gsub(/[\t\r\n]/, " ", v); return v }
    function flush(   o) {
      if (id != "") {
        o = a["Job_Owner"]; sub(/@.*/, "", o)
        if (o == "" || o == user)
          printf "%s\t%s\t%s\t%s\t%s\t%s\n", id, a["Job_Name"], a["job_state"], a["Exit_status"] a["exit_status"], clean(a["comment"]), a["job_state"]
      }
      id = ""; style = ""; last = ""; split("", a)
    }
    { sub(/\r$/, "") }
    /^Job Id:/ { flush(); id = $0; sub(/^Job Id:[ \t]*/, "", id); sub(/[ \t]+$/, "", id); next }
    id == "" { next }
    /^[ \t]/ {
      first = substr($0, 1, 1)
      if (style == "") style = (first == "\t") ? "tab" : "space"
      if (style == "space" && first == "\t") { if (last != "") { c = $0; sub(/^\t+/, "", c); a[last] = a[last] c }; next }
      line = $0; sub(/^[ \t]+/, "", line)
      p = index(line, " = ")
      if (p == 0) next
      last = substr(line, 1, p - 1); a[last] = substr(line, p + 3)
      next
    }
    END { flush() }
  '
}

# The user's jobs as Slurm keeps them (finished ones for MinJobAge only: bounded). The pending
# reason is the comment; the last column keeps Slurm's own code (CA cancelled, TO timeout, ...).
slurm_query() {
  local out rc
  out=$(squeue -h -t all -u "$AGENT_USER" -o "%i${TAB}%j${TAB}%t${TAB}%r" 2>"$TMPD/query.err")
  rc=$?
  if [ "$rc" -ne 0 ] && [ -z "$out" ] && usage_error; then
    out=$(squeue -h -u "$AGENT_USER" -o "%i${TAB}%j${TAB}%t${TAB}%r" 2>"$TMPD/query.err")
    rc=$?
  fi
  printf '%s\n' "$out" | awk -F'\t' '
    BEGIN {
      m["PD"] = "Q"; m["RQ"] = "Q"; m["RF"] = "Q"; m["RS"] = "Q"; m["RV"] = "Q"
      m["R"] = "R"; m["CG"] = "R"; m["CF"] = "R"; m["SI"] = "R"; m["SO"] = "R"
      m["S"] = "H"; m["ST"] = "H"; m["RH"] = "H"; m["RD"] = "H"; m["SE"] = "H"
      m["CD"] = "F"; m["CA"] = "F"; m["F"] = "F"; m["TO"] = "F"; m["NF"] = "F"; m["PR"] = "F"
      m["BF"] = "F"; m["OOM"] = "F"; m["DL"] = "F"; m["RE"] = "F"
    }
    NF >= 3 && $1 != "" {
      s = ($3 in m) ? m[$3] : $3
      c = (s == "Q" && $4 != "None") ? $4 : ""
      printf "%s\t%s\t%s\t\t%s\t%s\n", $1, $2, s, c, $3
    }
  '
  return "$rc"
}

# What the sync needs: the fate of chasqui's own open jobs (IDS, by scheduler id: state, exit
# status, the scheduler's comment) and the user's counts. Connections: 2 + one per id on PBS.
snapshot_view() { # IDS...
  local rc
  case $SCHEDULER in
    slurm)
      slurm_query
      return
      ;;
  esac
  active_view >"$TMPD/active"
  rc=$?
  [ "$rc" -eq 0 ] || return "$rc"
  : >"$TMPD/asked"
  [ $# -eq 0 ] || pbs_full -x "$@" >"$TMPD/asked" || return
  # The jobs asked about as qstat describes them, then the user's other unfinished jobs (by id).
  awk -F'\t' 'FNR == NR { print; seen[$1] = 1; next } !($1 in seen)' "$TMPD/asked" "$TMPD/active"
}

# "<queued incl. running> <running>" over a view, leaving out the calling job.
count_jobs() { # VIEW
  printf '%s\n' "$1" | awk -F'\t' -v self="$SELF_ID" '
    NF >= 3 && $1 != "" && $1 != self {
      if ($3 !~ /^[CFX]$/) q++
      if ($3 ~ /^[REB]$/) r++
    }
    END { printf "%d %d\n", q, r }
  '
}

# ---------------------------------------------------------------------------- scripts

valid_id() { [[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]] && [ "$1" != "." ] && [ "$1" != ".." ]; }

# Job ids of DIR/*.sh, oldest first (modification time, then name).
list_scripts() { # DIR
  local out id
  [ -d "$1" ] || return 0
  if out=$(find "$1" -maxdepth 1 -type f -name '*.sh' -printf '%T@\t%f\n' 2>/dev/null); then
    out=$(printf '%s\n' "$out" | LC_ALL=C sort -t "$TAB" -k1,1n -k2,2 | cut -f2)
  else
    out=$(cd "$1" && ls -1tr -- *.sh 2>/dev/null)
  fi
  while IFS= read -r id; do
    id=${id%.sh}
    [ -n "$id" ] && valid_id "$id" && printf '%s\n' "$id"
  done <<<"$out"
}

# The scheduler job name from the script's #PBS -N or #SBATCH --job-name=/-J line.
script_job_name() { # SCRIPT
  awk '
    function out(v) { gsub(/^["\047]|["\047]$/, "", v); print v; exit }
    { sub(/\r$/, "") }
    /^#PBS[ \t]/ { for (i = 2; i < NF; i++) if ($i == "-N") out($(i + 1)) }
    /^#SBATCH[ \t]/ {
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^--job-name=/) { v = $i; sub(/^--job-name=/, "", v); out(v) }
        if (($i == "-J" || $i == "--job-name") && i < NF) out($(i + 1))
        if ($i ~ /^-J./) out(substr($i, 3))
      }
    }
  ' "$1" 2>/dev/null
}

# Run qsub/sbatch from the job's work folder, output paths on the command line (the Torque
# wrapper ignores #PBS -o/-e). Sets QSUB_RC, QSUB_ID and QSUB_MSG (stdout+stderr, one line).
run_qsub() { # SCRIPT WORKDIR
  local cmd
  case $SCHEDULER in
    slurm) cmd=(sbatch --parsable -o "$2/chasqui.out" -e "$2/chasqui.err" "$1") ;;
    *) cmd=(qsub -o "$2/chasqui.out" -e "$2/chasqui.err" "$1") ;;
  esac
  local limit=("${TIMEOUT_CMD[@]+"${TIMEOUT_CMD[@]}"}")
  if [ -n "$DEADLINE" ] && [ ${#limit[@]} -gt 0 ]; then
    # Inside a job: a qsub must not outlive the trigger's time (the job's end would kill it).
    limit=("${limit[@]:0:${#limit[@]}-1}" "$((DEADLINE - $(now)))")
  fi
  (cd "$2" && exec ${limit[@]+"${limit[@]}"} "${cmd[@]}") >"$TMPD/qsub.out" 2>"$TMPD/qsub.err" </dev/null
  QSUB_RC=$?
  QSUB_ID=$(awk 'NF { l = $1 } END { print l }' "$TMPD/qsub.out")
  QSUB_ID=${QSUB_ID%%;*}
  QSUB_MSG=$(cat "$TMPD/qsub.out" "$TMPD/qsub.err" 2>/dev/null)
  QSUB_MSG=${QSUB_MSG//[$'\t\r\n']/ }
  while [[ $QSUB_MSG == *"  "* ]]; do QSUB_MSG=${QSUB_MSG//  / }; done
  QSUB_MSG=${QSUB_MSG# }
  QSUB_MSG=${QSUB_MSG% }
}

# limit: the user's queue limit (try later); reject: the scheduler refused this script;
# ambiguous: anything else (the job may or may not exist).
classify_failure() { # MESSAGE RC
  local re_limit='would exceed.*limit|maximum number of jobs|QOSMaxSubmitJob|AssocMaxSubmitJob|MaxSubmitJobs|job submit limit|submit limit reached'
  local re_transient='timed out|unable to contact|zero bytes|connection refused|communication failure|cannot connect|try again|temporarily|not responding|server busy'
  local re_reject='unknown queue|bad uid|unauthorized request|invalid account|illegal attribute|unknown resource|violates queue|is mandatory|invalid partition|invalid qos|invalid user|invalid (generic|gres|feature|node|time|job)|node configuration is not available|queue is not enabled|no default queue|there was an error running the slurm sbatch command|error: invalid|unknown option|invalid option|unrecognized option|script file.*no such file'
  local verdict=ambiguous
  shopt -s nocasematch
  if [ "$2" -eq 124 ] || [ "$2" -eq 137 ]; then
    verdict=ambiguous
  elif [[ $1 =~ $re_limit ]]; then
    verdict=limit
  elif [[ $1 =~ $re_transient ]]; then
    verdict=ambiguous
  elif [[ $1 =~ $re_reject ]]; then
    verdict=reject
  fi
  shopt -u nocasematch
  printf '%s\n' "$verdict"
}

# ---------------------------------------------------------------------------- run

move() { mv -f "$1" "$2" 2>/dev/null; }

# A claimed script the scheduler has (SUBMIT: qsub said so; RECOVER: found by name): to
# submitted/, its claim and check gone, the event logged.
settle_submitted() { # ID EVENT SCHEDULER_ID
  move "$SUBMITTING/$1.sh" "$SUBMITTED/$1.sh" && rm -f "$SUBMITTING/$1.claim" "$SUBMITTING/$1.check"
  log_event "$2" "$1" "$3"
}

# A script left in submitting/ by an agent that died: submitted (found by name) or back to waiting/.
recover_leftover() { # ID
  local id=$1 script="$SUBMITTING/$1.sh" claim="$SUBMITTING/$1.claim" name sid t=""
  local grace=$((QSUB_TIMEOUT + 60))
  [ "${#TIMEOUT_CMD[@]}" -gt 0 ] || grace=$STALE_SECONDS
  if [ -f "$claim" ] && read -r t <"$claim" && [[ $t =~ ^[0-9]+$ ]] && [ $(($(now) - t)) -lt "$grace" ]; then
    return 0 # its qsub may still be running (it outlives the agent until its timeout)
  fi
  name=$(script_job_name "$script")
  if [ -z "$name" ]; then
    move "$script" "$REJECTED/$id.sh" && rm -f "$claim"
    log_event SUBMIT_ERROR "$id" "left in submitting/ by an agent that died, and the script names no job to look for"
    return 0
  fi
  sid=$(find_by_name "$name" "$(known_ids "$id")")
  case $? in
    0)
      settle_submitted "$id" RECOVER "$sid"
      return 0
      ;;
    1) ;;
    *) return 0 ;; # the scheduler could not be asked: decide next time
  esac
  move "$script" "$WAITING/$id.sh" && rm -f "$claim"
  : >"$SUBMITTING/$id.check"
  log_event RETRY "$id" "left in submitting/ by an agent that died; no job named $name in the scheduler"
}

# One pass over waiting/. Returns nothing; updates the log.
run_round() {
  local waiting=() leftovers=() id view qrc counts queued running submitted=0 n i
  local script wd name sid verdict excl reason arc before
  mkdir -p "$WAITING" "$SUBMITTING" "$SUBMITTED" "$REJECTED" "$R/completed" 2>/dev/null
  rm -f "$TMPD/round_view"
  mapfile -t waiting < <(list_scripts "$WAITING")
  mapfile -t leftovers < <(list_scripts "$SUBMITTING")
  [ "${#waiting[@]}" -gt 0 ] || [ "${#leftovers[@]}" -gt 0 ] || return 0
  lock_is_mine || return 0
  rotate_log
  # Temporary folders of agents that were killed (a job's end, SIGKILL) are an hour old at most.
  find "$R" -maxdepth 1 -name '.tmp.*' -type d -mmin +60 -exec rm -rf {} + 2>/dev/null
  log_event START - "${#waiting[@]} waiting${FROM_JOB:+, from job ${SELF_ID:-?}${VIA:+ via $VIA}}"

  view=$(active_view)
  qrc=$?
  if [ "$qrc" -ne 0 ]; then
    log_event END - "scheduler query failed (rc=$qrc): $(head -c 300 "$TMPD/query.err" 2>/dev/null)"
    return 0
  fi

  for id in ${leftovers[@]+"${leftovers[@]}"}; do recover_leftover "$id"; done
  counts=$(count_jobs "$view")
  queued=${counts% *}
  running=${counts#* }

  n=${#waiting[@]}
  for ((i = 0; i < n; i++)); do
    id=${waiting[i]}
    if [ "$queued" -ge "$MAX_QUEUED" ] || [ "$running" -ge "$MAX_RUNNING" ]; then
      if [ "$queued" -ge "$MAX_QUEUED" ]; then
        reason="max_queued $MAX_QUEUED reached ($queued queued or running)"
      else
        reason="max_running $MAX_RUNNING reached ($running running)"
      fi
      log_event DEFER "$id" "$reason; $((n - i)) waiting"
      break
    fi
    lock_is_mine || break # another agent judged us stale: stop at once
    if [ -n "$DEADLINE" ] && [ $(($(now) + 2)) -ge "$DEADLINE" ]; then
      log_event DEFER "$id" "the job's time for this trigger is up; $((n - i)) waiting for the next trigger or sync"
      break
    fi
    lock_write_owner      # heartbeat
    script="$SUBMITTING/$id.sh"
    move "$WAITING/$id.sh" "$script" || continue # gone (cancelled) or taken
    now >"$SUBMITTING/$id.claim"
    name=$(script_job_name "$script")
    wd="$WORK_ROOT/$id"

    # An earlier outcome was ambiguous: look for it by name before sending it again.
    if [ -e "$SUBMITTING/$id.check" ] && [ -n "$name" ] && sid=$(find_by_name "$name" "$(known_ids "$id")"); then
      settle_submitted "$id" RECOVER "$sid"
      continue
    fi
    if [ ! -d "$wd" ]; then
      move "$script" "$REJECTED/$id.sh"
      rm -f "$SUBMITTING/$id.claim" "$SUBMITTING/$id.check"
      log_event SUBMIT_ERROR "$id" "work folder $wd does not exist"
      continue
    fi

    # Jobs of this name the scheduler knows before this qsub (a hand-made one, one from an earlier
    # remote folder): if the qsub's outcome is unclear, none of them can be the one it made.
    before=""
    if [ -n "$name" ]; then
      before=$(ids_named_before "$name")
      qrc=$?
      if [ "$qrc" -ne 0 ]; then
        move "$script" "$WAITING/$id.sh"
        rm -f "$SUBMITTING/$id.claim"
        log_event END - "scheduler query failed (rc=$qrc): $(head -c 300 "$TMPD/query.err" 2>/dev/null)"
        return 0
      fi
    fi
    run_qsub "$script" "$wd"
    if [ "$QSUB_RC" -eq 0 ] && [[ $QSUB_ID =~ ^[A-Za-z0-9._@:-]+(\[[0-9]*\])?[A-Za-z0-9._@:-]*$ ]]; then
      settle_submitted "$id" SUBMIT "$QSUB_ID"
      queued=$((queued + 1))
      submitted=$((submitted + 1))
      continue
    fi
    if [ "$QSUB_RC" -eq 0 ]; then
      verdict=ambiguous
      QSUB_MSG="qsub exited 0 without a job id${QSUB_MSG:+: $QSUB_MSG}"
    else
      verdict=$(classify_failure "$QSUB_MSG" "$QSUB_RC")
    fi
    [ -n "$QSUB_MSG" ] || QSUB_MSG="exit status $QSUB_RC, no message"

    case $verdict in
      limit)
        move "$script" "$WAITING/$id.sh"
        rm -f "$SUBMITTING/$id.claim"
        log_event DEFER "$id" "$QSUB_MSG; $((n - i)) waiting"
        break
        ;;
      reject)
        if [ -n "$FROM_JOB" ]; then
          # Inside a job qsub may be forbidden or half-configured: leave it to the next sync.
          move "$script" "$WAITING/$id.sh"
          rm -f "$SUBMITTING/$id.claim"
          log_event DEFER "$id" "refused from inside a job, left for the next sync: $QSUB_MSG"
          break
        fi
        move "$script" "$REJECTED/$id.sh"
        rm -f "$SUBMITTING/$id.claim" "$SUBMITTING/$id.check"
        log_event SUBMIT_ERROR "$id" "$QSUB_MSG"
        ;;
      *)
        if [ -z "$name" ]; then
          # Nothing to look for: never risk a second submission.
          move "$script" "$REJECTED/$id.sh"
          rm -f "$SUBMITTING/$id.claim" "$SUBMITTING/$id.check"
          log_event SUBMIT_ERROR "$id" "unclear qsub failure and the script names no job to look for: $QSUB_MSG"
          continue
        fi
        excl="$(known_ids "$id") $before"
        sid=$(find_by_name "$name" "$excl")
        arc=$?
        if [ "$arc" -eq 0 ]; then
          settle_submitted "$id" RECOVER "$sid"
          queued=$((queued + 1))
          submitted=$((submitted + 1))
          continue
        fi
        move "$script" "$WAITING/$id.sh"
        : >"$SUBMITTING/$id.check"
        rm -f "$SUBMITTING/$id.claim"
        if [ "$arc" -eq 1 ]; then
          log_event RETRY "$id" "$QSUB_MSG; no job named $name in the scheduler"
        else
          log_event RETRY "$id" "$QSUB_MSG; the scheduler query failed too (rc=$arc)"
        fi
        break
        ;;
    esac
  done
  log_event END - "submitted $submitted, $(list_scripts "$WAITING" | wc -l | tr -d ' ') waiting"
}

# Holding the lock: rounds until no trigger arrived meanwhile (inside a job: until time is up;
# agent.pending stays for the next agent).
run_locked() {
  while :; do
    if [ -n "$DEADLINE" ] && [ "$(now)" -ge "$DEADLINE" ]; then return 0; fi
    rm -f "$PENDING"
    run_round
    [ -e "$PENDING" ] || return 0
    lock_is_mine || return 0
  done
}

cmd_run() { # quiet_if_busy
  load_conf
  make_tmp
  if ! lock_try; then
    [ -n "${1:-}" ] || echo "chasqui agent: another agent holds $LOCK" >&2
    return 75
  fi
  while :; do
    run_locked
    lock_release
    # A trigger that came between our last check and the release found the lock taken: look again.
    [ -e "$PENDING" ] || return 0
    lock_try || return 0
  done
}

# trigger: run now, or leave agent.pending for the agent that holds the lock.
# trigger --from-job [--within SECONDS] [--job SCHEDULER_ID] [--here]: from a batch script that
# is about to end. Everything happens before it returns (the job's end kills what it leaves
# behind), no qsub starts after SECONDS (default 60), and the calling job does not count toward
# the limits. With TRIGGER_HOST in agent.conf the run happens there, by the cluster's own ssh
# (--here marks that run); a node without the scheduler's commands leaves it to the next sync.
cmd_trigger() {
  local within=60 here=""
  while [ $# -gt 0 ]; do
    case $1 in
      --from-job) FROM_JOB=1 ;;
      --within) [[ ${2:-} =~ ^[1-9][0-9]{0,4}$ ]] && within=$2; shift ;;
      --job) SELF_ID=${2:-}; shift ;;
      --here) here=1 ;;
    esac
    shift
  done
  touch "$PENDING" 2>/dev/null || : >>"$PENDING"
  if [ -n "$FROM_JOB" ]; then
    [ -n "$SELF_ID" ] || SELF_ID=${PBS_JOBID:-${SLURM_JOB_ID:-}}
    valid_sched_id "$SELF_ID" || SELF_ID=""
    DEADLINE=$(($(now) + within))
    load_conf
    if [ -n "$TRIGGER_HOST" ] && [ -z "$here" ]; then
      trigger_remote "$within"
      return 0
    fi
    [ -z "$here" ] || VIA=${SSH_CONNECTION%% *}
    local need=qsub query=qstat
    [ "$SCHEDULER" != slurm ] || { need=sbatch query=squeue; }
    # No scheduler commands on this node: the next sync submits instead.
    have "$need" && have "$query" || return 0
  fi
  cmd_run quiet
  return 0
}

valid_sched_id() {
  local re='^[A-Za-z0-9][][A-Za-z0-9._@:-]{0,127}$'
  [[ $1 =~ $re ]]
}

# The same trigger on TRIGGER_HOST (a login node the compute nodes reach without a password).
trigger_remote() { # WITHIN
  local cmd rc
  cmd="bash $(printf '%q' "$R/agent.sh") trigger --from-job --here --within $(($1 - 2)) --job $(printf '%q' "${SELF_ID:-none}")"
  local limit=()
  [ ${#TIMEOUT_CMD[@]} -eq 0 ] || limit=(timeout -k 2 "$1")
  ${limit[@]+"${limit[@]}"} ssh -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=yes \
    "$TRIGGER_HOST" "$cmd" </dev/null >/dev/null 2>"$R/.trigger-host.err.$$"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "chasqui agent: could not run the agent on trigger_host $TRIGGER_HOST (exit $rc): $(head -c 300 "$R/.trigger-host.err.$$" | tr '\n' ' ')" >&2
  fi
  rm -f "$R/.trigger-host.err.$$"
}

cmd_snapshot() { # IDS...
  local view rc id ids=()
  load_conf
  make_tmp
  for id in "$@"; do valid_sched_id "$id" && ids+=("$id"); done
  view=$(snapshot_view ${ids[@]+"${ids[@]}"})
  rc=$?
  [ -z "$view" ] || printf '%s\n' "$view"
  if [ "$rc" -ne 0 ]; then
    printf '#error=%s\n' "$(head -c 300 "$TMPD/query.err" | tr '\t\r\n' '   ')"
  fi
  printf '#rc=%s\n' "$rc"
}

# ---------------------------------------------------------------------------- cancel

# Under the lock, so no agent claims a script between our look and our move. A job still in
# waiting/ is moved to cancelled/; a submitted one is deleted in the scheduler by the id given
# (ID=SCHEDULER_ID, from the workstation's store) or else the last one agent.log knows for it.
# One line per job: ID TAB removed|deleted|gone|unknown|error TAB detail.
# True unless one scheduler query says SCHEDULER_ID is neither queued nor running (a failed query
# says true: nothing is concluded from missing information).
still_active() { # SCHEDULER_ID
  local view
  view=$(active_view 2>/dev/null) || return 0
  printf '%s\n' "$view" | awk -F'\t' -v s="$1" '$1 == s && $3 !~ /^[CFX]$/ { f = 1 } END { exit !f }'
}

cmd_cancel() {
  local arg id sid ids waited=0 msg rc
  load_conf
  make_tmp
  # Agents hold the lock for a moment at a time: poll often (five times a second) for a minute.
  until lock_try 2>/dev/null; do
    waited=$((waited + 1))
    if [ "$waited" -ge $((${CANCEL_WAIT_SECONDS:-60} * 5)) ]; then
      echo "chasqui agent: another agent holds $LOCK; nothing was cancelled" >&2
      return 75
    fi
    sleep 0.2
  done
  mkdir -p "$CANCELLED" 2>/dev/null
  for arg in "$@"; do
    id=${arg%%=*}
    sid=""
    [ "$arg" = "$id" ] || sid=${arg#*=}
    if ! valid_id "$id"; then
      printf '%s\terror\tnot a job id\n' "${id//[$'\t\n']/ }"
      continue
    fi
    if move "$WAITING/$id.sh" "$CANCELLED/$id.sh"; then
      log_event CANCEL "$id" "removed from waiting/"
      printf '%s\tremoved\t\n' "$id"
      continue
    fi
    if [ -e "$SUBMITTING/$id.sh" ]; then
      printf '%s\terror\tan agent that stopped left it half submitted; run chasqui sync, then cancel again\n' "$id"
      continue
    fi
    if [ -z "$sid" ]; then
      ids=$(known_ids "$id")
      ids=${ids% }
      sid=${ids##* }
    fi
    if [ -z "$sid" ]; then
      if [ -e "$REJECTED/$id.sh" ]; then
        printf '%s\tgone\trejected by the scheduler earlier\n' "$id"
      else
        printf '%s\tunknown\tneither waiting nor submitted\n' "$id"
      fi
      continue
    fi
    # The mark comes first: the job's SIGTERM trap writes TIMEOUT, as for a walltime kill, and the
    # sync reads this mark to know better. Kept only if the delete went through.
    if ! { printf '%s\n' "$sid" >"$CANCELLED/.$id.mark.$$" && mv -f "$CANCELLED/.$id.mark.$$" "$CANCELLED/$id.mark"; }; then
      printf '%s\terror\tcannot write %s\n' "$id" "$CANCELLED/$id.mark"
      continue
    fi
    case $SCHEDULER in
      slurm) msg=$(scancel "$sid" 2>&1) ;;
      *) msg=$(qdel "$sid" 2>&1) ;;
    esac
    rc=$?
    msg=${msg//[$'\t\r\n']/ }
    if [ "$rc" -eq 0 ] && ! [[ $msg =~ [Ee]rror ]]; then
      log_event CANCEL "$id" "deleted $sid in the scheduler"
      printf '%s\tdeleted\t%s\n' "$id" "$sid"
    elif printf '%s' "$msg" | grep -qiE 'unknown job|has finished|already (completing|completed|finished)|invalid job id|job has completed'; then
      rm -f "$CANCELLED/$id.mark"
      printf '%s\tgone\t%s: %s\n' "$id" "$sid" "$msg"
    elif still_active "$sid"; then
      rm -f "$CANCELLED/$id.mark"
      printf '%s\terror\t%s: %s\n' "$id" "$sid" "${msg:-exit status $rc}"
    else
      # An unexplained refusal for a job the scheduler no longer runs: it finished first (Slurm's
      # qdel wrapper says nothing then). Its flag tells how.
      rm -f "$CANCELLED/$id.mark"
      printf '%s\tgone\t%s: no longer queued or running\n' "$id" "$sid"
    fi
  done
  lock_release
  return 0
}

cmd_version() { sed -n '2s/^# chasqui-agent-version: //p' "$0"; }

case ${1:-} in
  run) cmd_run ;;
  trigger)
    shift
    cmd_trigger "$@"
    ;;
  snapshot)
    shift
    cmd_snapshot "$@"
    ;;
  cancel)
    shift
    cmd_cancel "$@"
    ;;
  version) cmd_version ;;
  *)
    echo "usage: bash agent.sh run | trigger [--from-job [--within S] [--job ID] [--here]] | snapshot [SCHEDULER_ID...] | cancel ID[=SCHEDULER_ID]... | version" >&2
    exit 2
    ;;
esac
