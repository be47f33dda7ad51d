# shellcheck shell=bash
# chasqui doctor: what the cluster side looks like, one key=value per line. Sent on stdin to
# `bash -s` after lines that set R (chasqui's remote folder, relative to the login home),
# SCHED (pbs or slurm) and QUEUE (the queue or partition jobs go to; may be empty).
set -u
cd "$HOME" 2>/dev/null || true
one_line() { tr '\t\r\n' '   ' | sed 's/  */ /g; s/^ //; s/ $//' | head -c 400; }
echo "login_shell=${SHELL:-unknown}"
echo "bash=${BASH_VERSION:-unknown}"
echo "home=$HOME"
echo "host=$(hostname 2>/dev/null || echo unknown)"
for cmd in qsub qstat qdel sbatch squeue tar; do
  echo "cmd_$cmd=$(command -v "$cmd" 2>/dev/null || true)"
done

# Ask the scheduler itself: a server that does not answer makes every sync useless.
server_check() {
  local out rc
  if [ "$SCHED" = slurm ]; then
    out=$(squeue -h -u "${USER:-$(id -un)}" -o %i 2>&1)
    rc=$?
  else
    out=$(qstat -B 2>&1)
    rc=$?
    # Slurm's PBS wrappers and some Torque versions have no -B: the queue list asks the server too.
    if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -qiE 'usage|requires an argument|invalid option|unknown option'; then
      out=$(qstat -Q 2>&1)
      rc=$?
    fi
  fi
  echo "server_rc=$rc"
  echo "server_said=$(printf '%s' "$out" | tail -n 3 | one_line)"
}

# The queue jobs go to: does it exist, is it enabled and started (PBS), is it up (Slurm)?
queue_check() {
  local out rc
  [ -n "$QUEUE" ] || return 0
  if [ "$SCHED" = slurm ]; then
    out=$(sinfo -h -p "$QUEUE" -o %a 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] || [ -n "$out" ] || rc=1
    echo "queue_rc=$rc"
    echo "queue_state=$(printf '%s' "$out" | one_line)"
    return 0
  fi
  out=$(qstat -Q "$QUEUE" 2>&1)
  rc=$?
  echo "queue_rc=$rc"
  if [ "$rc" -eq 0 ]; then
    # Header "Queue Max Tot Ena Str ...": Ena and Str are columns 4 and 5 of the queue's line.
    printf '%s\n' "$out" | awk -v q="$QUEUE" '$1 == q { print "queue_enabled=" $4; print "queue_started=" $5; exit }'
  else
    echo "queue_said=$(printf '%s' "$out" | one_line)"
  fi
}

if [ "$SCHED" = slurm ]; then asker="squeue"; else asker="qstat"; fi
if command -v "$asker" >/dev/null 2>&1; then
  server=$(server_check)
  printf '%s\n' "$server"
  [ "$server" != "${server#server_rc=0}" ] && queue_check
fi

probe="$R/.chasqui-doctor.$$"
if mkdir -p "$R" 2>/dev/null && : >"$probe" 2>/dev/null; then
  rm -f "$probe"
  echo "remote_writable=yes"
else
  echo "remote_writable=no"
fi
echo "remote_free_kb=$(df -Pk "$R" 2>/dev/null | awk 'NR==2 {print $4}')"
if [ -f "$R/agent.sh" ]; then
  echo "agent_version=$(sed -n '2s/^# chasqui-agent-version: //p' "$R/agent.sh")"
else
  echo "agent_version="
fi
