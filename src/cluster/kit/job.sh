# shellcheck shell=bash
# chasqui job helper: every batch script chasqui renders sources it, then defines job() (the
# command) and, where it has one, succeeded() (the success rule), and calls chasqui_run:
#
#   . R/lib/job-<version>.sh JOB_ID ATTEMPT REMOTE_DIR WORK_DIR [MODULES] || exit 1
#   job() { mpirun vasp_std; }
#   succeeded() { grep -qF "General timing and accounting informations for this job" OUTCAR; }
#   chasqui_run
#
# It writes the completion flag R/completed/<id>.flag (format: docs/REMOTE.md), with a summary of
# the VASP run, then runs the agent so the queue feeds itself. Deployed by the upload under a
# versioned name that is never overwritten, so a job queued before an upgrade keeps its helper.
#   DONE    = job() exited 0 and succeeded() holds (no succeeded(): exit 0 is enough)
#   FAIL    = anything else (exit code kept)
#   TIMEOUT = SIGTERM while the command ran (walltime, qdel)

# Not -e: a failing step must still reach the code that writes the completion flag.
set -u
export CHASQUI_JOB_ID=$1
export CHASQUI_ATTEMPT=$2
export CHASQUI_REMOTE=$3
export CHASQUI_WORKDIR=$4
chasqui_modules=${5:-}
CHASQUI_SCHEDULER_ID="${PBS_JOBID:-${SLURM_JOB_ID:-unknown}}"
export CHASQUI_SCHEDULER_ID
chasqui_pid=""          # the command, once started (its own process group)
chasqui_terms=0         # how many SIGTERMs this script has received
chasqui_flag_written="" # the flag is written once, whatever arrives afterwards

chasqui_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
chasqui_started=$(date +%s)

# What the flag brings home about the VASP run in this folder, as KEY=VALUE lines (docs/REMOTE.md):
# final energy, ionic steps, whether a relaxation reached the required accuracy, the last
# electronic step count against NELM, wall time, and whether CONTCAR can seed a restart.
chasqui_vasp_summary() {
  local counts f files=()
  for f in INCAR OSZICAR OUTCAR; do [ ! -r "$f" ] || files+=("$f"); done
  [ ${#files[@]} -eq 0 ] || awk -v nelm_default=60 '
    function tag(line, want,   n, parts, i, kv, key, val) {
      sub(/[!#].*/, "", line); n = split(line, parts, ";")
      for (i = 1; i <= n; i++) {
        if (split(parts[i], kv, "=") < 2) continue
        key = toupper(kv[1]); gsub(/[ \t]/, "", key)
        if (key != want) continue
        val = kv[2]; sub(/^[ \t]+/, "", val); sub(/[ \t].*$/, "", val)
        return val
      }
      return ""
    }
    FILENAME == "INCAR" {
      v = tag($0, "NELM"); if (v != "") nelm = v
      v = tag($0, "NSW"); if (v != "") nsw = v
      v = tag($0, "IBRION"); if (v != "") ibrion = v
      next
    }
    FILENAME == "OSZICAR" {
      if ($2 == "F=") { ionic++; f = $3; e0 = ($4 == "E0=") ? $5 : ""; inblock = 0; next }
      if ($1 ~ /^[A-Z][A-Z ]*:$/ && $2 ~ /^[0-9]+$/) {
        if (!inblock) { elec = 0; inblock = 1 }
        elec = $2 + 0
      }
      next
    }
    FILENAME == "OUTCAR" {
      if (/free  energy   TOTEN/) toten = $(NF - 1)
      if (/reached required accuracy/) reached = 1
      next
    }
    END {
      if (nelm == "") nelm = nelm_default
      if (nsw == "") nsw = 0
      if (ibrion == "") ibrion = (nsw + 0 > 1) ? 0 : -1
      if (f != "") { printf "energy=%.8f\n", f; if (e0 != "") printf "energy_e0=%.8f\n", e0 }
      else if (toten != "") printf "energy=%.8f\n", toten
      if (ionic > 0) printf "ionic_steps=%d\n", ionic
      if (elec > 0) printf "electronic_steps=%d\nnelm=%d\n", elec, nelm
      if (nsw + 0 > 0 && ibrion + 0 >= 1 && ibrion + 0 <= 3) printf "relaxation=%s\n", reached ? "reached" : "not_reached"
    }
  ' "${files[@]}" 2>/dev/null
  echo "elapsed=$(($(date +%s) - chasqui_started))"
  if [ ! -s CONTCAR ]; then
    echo "contcar=missing"
  elif counts=$(chasqui_structure_counts CONTCAR) && [ "$counts" = "$(chasqui_structure_counts POSCAR 2>/dev/null)" ]; then
    echo "contcar=valid"
  else
    echo "contcar=invalid"
  fi
}

# Write R/completed/<id>.flag atomically: a temp file in the same folder, then mv.
chasqui_write_flag() { # STATUS EXIT_CODE
  [ -z "$chasqui_flag_written" ] || return 0
  chasqui_flag_written=$1
  local dir="$CHASQUI_REMOTE/completed"
  local tmp="$dir/.$CHASQUI_JOB_ID.flag.$$.tmp"
  mkdir -p "$dir" &&
    {
      printf '%s\n%s\n%s\n%s\n' "$1" "$CHASQUI_SCHEDULER_ID" "$2" "$(chasqui_now)"
      # Bounded: a walltime kill leaves seconds before SIGKILL, and the flag must land first.
      [ "$PWD" != "$CHASQUI_WORKDIR" ] || timeout 5 bash -c "$(declare -f chasqui_vasp_summary chasqui_structure_counts); chasqui_started=$chasqui_started; chasqui_vasp_summary" 2>/dev/null
    } >"$tmp" &&
    mv -f "$tmp" "$dir/$CHASQUI_JOB_ID.flag" ||
    echo "chasqui: could not write the completion flag in $dir" >&2
}

# Let the agent submit what is waiting before this job ends: the scheduler kills every process a
# job leaves behind (PBS Professional at once, Slurm with cgroups) and removes its $TMPDIR, so the
# agent runs here, in the foreground, and starts no qsub after SECONDS. Harmless where qsub does
# not work on compute nodes (trigger_host runs it on a login node; else the next sync submits).
chasqui_trigger_agent() { # SECONDS
  [ -f "$CHASQUI_REMOTE/agent.sh" ] || return 0
  local bound=()
  if command -v timeout >/dev/null 2>&1; then bound=(timeout -k 2 "$(($1 + 15))"); fi
  (trap - TERM; cd "$CHASQUI_REMOTE" && exec ${bound[@]+"${bound[@]}"} bash "$CHASQUI_REMOTE/agent.sh" trigger --from-job --within "$1") \
    </dev/null >/dev/null
}

# The one way out once the outcome is known: flag, agent, exit code.
chasqui_finish() { # STATUS EXIT_CODE
  # From here on the outcome is decided: a late SIGTERM must not turn DONE/FAIL into TIMEOUT.
  trap '' TERM
  chasqui_write_flag "$1" "$2"
  echo "chasqui: $1 (exit code $2) at $(chasqui_now)" >&2
  # After a SIGTERM the scheduler's SIGKILL is seconds away: only a short turn then.
  if [ "$1" = TIMEOUT ]; then chasqui_trigger_agent 4; else chasqui_trigger_agent 60; fi
  exit "$2"
}

# A walltime kill (or qdel/scancel) sends SIGTERM to the whole job, then SIGKILL a few seconds
# later: write TIMEOUT first, then pass the signal on. A SIGTERM that arrives after the command
# has ended says nothing about how it ended, so it is only counted (see the epilogue).
# shellcheck disable=SC2317 # reached through the trap
chasqui_on_term() {
  chasqui_terms=$((chasqui_terms + 1))
  if [ -n "$chasqui_pid" ] && ! kill -0 "$chasqui_pid" 2>/dev/null; then
    return 0
  fi
  trap '' TERM
  chasqui_write_flag TIMEOUT 143
  [ -z "$chasqui_pid" ] || kill -TERM -- "-$chasqui_pid" 2>/dev/null
  chasqui_finish TIMEOUT 143
}
trap chasqui_on_term TERM

# Modules to load (space separated), with `module load`; nothing when empty.
chasqui_load_modules() { # MODULES
  local init list
  [ -n "$1" ] || return 0
  # Site init scripts and `module` itself often use unset variables: not under set -u.
  set +u
  if ! command -v module >/dev/null 2>&1; then
    for init in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh /usr/share/lmod/lmod/init/bash; do
      if [ -r "$init" ]; then
        # shellcheck disable=SC1090
        . "$init" && break
      fi
    done
  fi
  read -r -a list <<<"$1"
  if ! module load "${list[@]}"; then
    set -u
    echo "chasqui: module load $1 failed" >&2
    chasqui_finish FAIL 1
  fi
  set -u
}

# The script's own success rule, when it has one (for VASP: OUTCAR's closing timing section).
chasqui_succeeded() {
  if declare -F succeeded >/dev/null; then succeeded >/dev/null 2>&1; else true; fi
}

# Runs job() and reports how it ended: the one way a batch script ends.
chasqui_run() {
  {
    echo "# chasqui job $CHASQUI_JOB_ID, attempt $CHASQUI_ATTEMPT, scheduler id $CHASQUI_SCHEDULER_ID"
    echo "# host $(hostname), started $(chasqui_now)"
  } >stdout
  # In the background, so the TERM trap runs at once instead of after the command; in its own
  # process group (set -m), so a signal the command sends to its group (an MPI launcher cleaning up
  # after a failed rank, `kill 0`) cannot reach this script and pass for a walltime kill. The group
  # notes the command's exit code itself: bash's `wait` cannot tell an exit status of 143 from a
  # wait cut short by SIGTERM.
  chasqui_status_file="$CHASQUI_WORKDIR/.chasqui_exit_code"
  rm -f "$chasqui_status_file"
  set -m
  {
    set +u
    job
    echo "$?" >"$chasqui_status_file"
  } >>stdout &
  chasqui_pid=$!
  set +m
  # Returns when the command ends, or early when SIGTERM arrives: then the trap has either exited
  # (the command was still running: TIMEOUT) or found the command already gone.
  wait "$chasqui_pid"
  chasqui_rc=$?
  # The command is over: a SIGTERM from now on is only counted.
  trap 'chasqui_terms=$((chasqui_terms + 1))' TERM
  if [ -s "$chasqui_status_file" ]; then
    # The command ended by itself, or died of a signal and its group noted the exit code.
    chasqui_rc=$(cat "$chasqui_status_file")
    rm -f "$chasqui_status_file"
  fi
  # The command died of a signal and this script has heard none: when the scheduler kills a job it
  # signals each process in turn, and under load the script's own SIGTERM can come a good while
  # after the command's. Give it two seconds (the SIGKILL comes 10 s after on PBS, 30 s on Slurm).
  chasqui_grace=0
  while [ "$chasqui_rc" -gt 128 ] && [ "$chasqui_terms" -eq 0 ] && [ "$chasqui_grace" -lt 20 ]; do
    sleep 0.1
    chasqui_grace=$((chasqui_grace + 1))
  done
  trap '' TERM
  if [ "$chasqui_terms" -gt 0 ] && [ "$chasqui_rc" -gt 128 ]; then
    # Killed by a signal while the job itself got SIGTERM (walltime, qdel): the scheduler signals
    # every process of the job in no fixed order, so the command may die of it first, even before
    # this script hears it.
    chasqui_finish TIMEOUT "$chasqui_rc"
  fi
  if [ "$chasqui_rc" -eq 0 ] && chasqui_succeeded; then
    chasqui_finish DONE 0
  else
    chasqui_finish FAIL "$chasqui_rc"
  fi
}

# A job starts in $HOME on PBS Professional: go to the work folder ourselves.
if ! cd "$CHASQUI_WORKDIR"; then
  echo "chasqui: cannot enter the work folder $CHASQUI_WORKDIR" >&2
  chasqui_finish FAIL 1
fi
echo "chasqui: job $CHASQUI_JOB_ID attempt $CHASQUI_ATTEMPT, scheduler id $CHASQUI_SCHEDULER_ID, on $(hostname) at $(chasqui_now)" >&2
chasqui_load_modules "$chasqui_modules"
