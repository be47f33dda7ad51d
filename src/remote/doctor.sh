# chasqui doctor: what the cluster side looks like, one key=value per line. Sent on stdin to
# `bash -s` after a line that sets R (chasqui's remote folder, relative to the login home).
set -u
cd "$HOME" 2>/dev/null || true
echo "login_shell=${SHELL:-unknown}"
echo "bash=${BASH_VERSION:-unknown}"
echo "home=$HOME"
echo "host=$(hostname 2>/dev/null || echo unknown)"
for cmd in qsub qstat qdel sbatch squeue tar; do
  echo "cmd_$cmd=$(command -v "$cmd" 2>/dev/null || true)"
done
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
