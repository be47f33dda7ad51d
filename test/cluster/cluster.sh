#!/usr/bin/env bash
# The cluster-in-a-box for tests and the demo: one-node Slurm with PBS wrappers, an sshd with a
# key-only port and a key+TOTP port, a test user and a fake VASP. Usage: cluster.sh up|down|status|reset
set -euo pipefail

STATE="${CHASQUI_CLUSTER_DIR:-/var/lib/chasqui-cluster}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
USER_NAME="chasqui"
USER_HOME="/home/$USER_NAME"
SCRATCH="$USER_HOME/scratch"
KEY_PORT=2222
TOTP_PORT=2223
HOST_ADDR="127.0.0.1"
# A fixed secret: tests compute codes from it (160 bits, base32).
TOTP_SECRET="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSPHRASE="chasqui-pass"
# Bebop nodes have 36 cores; slurmd is told to trust the configured count (config_overrides).
CPUS="${CHASQUI_CLUSTER_CPUS:-36}"
PACKAGES=(openssh-server openssh-client libpam-google-authenticator oathtool slurm-wlm slurm-wlm-torque munge)
SPANK_PBS="/usr/lib/x86_64-linux-gnu/slurm-wlm/spank_pbs.so"
PAM_SERVICE="chasqui-test-sshd"

SLURM_CONF_FILE="$STATE/slurm/slurm.conf"
MUNGE_SOCKET="$STATE/munge/munge.socket.2"
RUN="$STATE/run"
LOG="$STATE/log"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when the pid in file $1 names a live process.
pid_alive() {
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Poll a command until it succeeds or $1 seconds pass.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

as_user() {
  runuser -u "$USER_NAME" -- env -i HOME="$USER_HOME" USER="$USER_NAME" LOGNAME="$USER_NAME" \
    PATH="/usr/local/bin:/usr/bin:/bin" SLURM_CONF="$SLURM_CONF_FILE" bash -c "cd && $1"
}

with_conf() { SLURM_CONF="$SLURM_CONF_FILE" "$@"; }

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ! command -v shellcheck >/dev/null; then
    if apt-cache policy shellcheck 2>/dev/null | grep -q 'Candidate: [0-9]'; then missing+=(shellcheck); fi
  fi
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  # Packages must not start their own daemons (the system's sshd, munge, slurm stay untouched).
  local own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  if ! command -v shellcheck >/dev/null && apt-cache policy shellcheck 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    [[ " ${missing[*]} " == *" shellcheck "* ]] || missing+=(shellcheck)
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  [[ -z "$own_policy" ]] || rm -f /usr/sbin/policy-rc.d
}

setup_user() {
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --create-home --home-dir "$USER_HOME" --shell /bin/bash "$USER_NAME"
  fi
  # "!" counts as a locked account for sshd; "*" is "no password, not locked".
  usermod -p '*' "$USER_NAME"
  install -d -m 755 -o "$USER_NAME" -g "$USER_NAME" "$USER_HOME"
  install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$USER_HOME/.ssh"
  install -d -m 755 -o "$USER_NAME" -g "$USER_NAME" "$SCRATCH"

  install -d -m 755 "$STATE/client"
  [[ -f "$STATE/client/id_ed25519" ]] ||
    ssh-keygen -q -t ed25519 -N '' -C "chasqui-test" -f "$STATE/client/id_ed25519"
  [[ -f "$STATE/client/id_ed25519_enc" ]] ||
    ssh-keygen -q -t ed25519 -N "$PASSPHRASE" -C "chasqui-test-encrypted" -f "$STATE/client/id_ed25519_enc"
  chmod 600 "$STATE/client/id_ed25519" "$STATE/client/id_ed25519_enc"
  cat "$STATE/client/id_ed25519.pub" "$STATE/client/id_ed25519_enc.pub" >"$USER_HOME/.ssh/authorized_keys"
  chown "$USER_NAME:$USER_NAME" "$USER_HOME/.ssh/authorized_keys"
  chmod 600 "$USER_HOME/.ssh/authorized_keys"

  # Rewritten only when the secret or the window changed: pam_google_authenticator keeps its
  # reuse list here (each code works once). A window of 41 steps (±10 min) lets the suite log in
  # some twenty times in a few minutes without waiting for the next 30-second step.
  local ga="$USER_HOME/.google_authenticator"
  if [[ ! -f "$ga" ]] || [[ "$(head -n 1 "$ga")" != "$TOTP_SECRET" ]] || ! grep -qx '" WINDOW_SIZE 41' "$ga"; then
    printf '%s\n" TOTP_AUTH\n" WINDOW_SIZE 41\n" DISALLOW_REUSE\n' "$TOTP_SECRET" >"$ga"
  fi
  chown "$USER_NAME:$USER_NAME" "$ga"
  chmod 600 "$ga"

  # Shells that ssh does not start (cron, runuser, jobs) still find the cluster.
  local line="export SLURM_CONF=$SLURM_CONF_FILE"
  local rc
  for rc in .profile .bashrc; do
    touch "$USER_HOME/$rc"
    if ! grep -qxF "$line" "$USER_HOME/$rc"; then
      grep -v '^export SLURM_CONF=' "$USER_HOME/$rc" >"$USER_HOME/$rc.new" || true
      { echo "$line"; cat "$USER_HOME/$rc.new"; } >"$USER_HOME/$rc"
      rm -f "$USER_HOME/$rc.new"
    fi
    chown "$USER_NAME:$USER_NAME" "$USER_HOME/$rc"
  done
}

install_fakes() {
  install -m 755 "$HERE/fake-vasp.sh" /usr/local/bin/vasp_std
  install -m 755 "$HERE/fake-mpirun.sh" /usr/local/bin/mpirun
}

write_if_changed() { # path, content on stdin; returns 0 when the file changed
  local tmp
  tmp="$(mktemp "$1.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$1"
}

setup_munge() {
  install -d -m 755 -o munge -g munge "$STATE/munge"
  if [[ ! -s "$STATE/munge/munge.key" ]]; then
    dd if=/dev/urandom bs=1024 count=1 status=none >"$STATE/munge/munge.key"
  fi
  chown munge:munge "$STATE/munge/munge.key"
  chmod 400 "$STATE/munge/munge.key"
}

start_munge() {
  pid_alive "$STATE/munge/munged.pid" && return 0
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed" 9>&-
  wait_until 10 test -S "$MUNGE_SOCKET" || die "munged did not start (see $STATE/munge/munged.log)"
}

setup_slurm() {
  install -d -m 755 "$STATE/slurm" "$STATE/slurm/state" "$STATE/slurm/spool" "$RUN" "$LOG"
  touch "$STATE/jobcomp.log"
  chmod 644 "$STATE/jobcomp.log"
  local node mem changed=1
  node="$(hostname -s)"
  mem="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
  echo "required $SPANK_PBS" | write_if_changed "$STATE/slurm/plugstack.conf" || true
  write_teardown
  write_if_changed "$SLURM_CONF_FILE" <<EOF || changed=0
# Written by test/cluster/cluster.sh: a one-node cluster for chasqui's tests.
ClusterName=chasqui
SlurmctldHost=$node($HOST_ADDR)
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/slurm/state
SlurmdSpoolDir=$STATE/slurm/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
JobSubmitPlugins=pbs
PlugStackConfig=$STATE/slurm/plugstack.conf
Prolog=$STATE/slurm/prolog.sh
TaskProlog=$STATE/slurm/task_prolog.sh
Epilog=$STATE/slurm/epilog.sh
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$node NodeAddr=$HOST_ADDR CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=batch Nodes=$node Default=YES MaxTime=UNLIMITED State=UP
PartitionName=bdwall Nodes=$node Default=NO MaxTime=UNLIMITED State=UP
EOF
  SLURM_CHANGED=$changed
}

# A job's end as PBS Professional does it: every process the job leaves behind is killed, detached
# or not (setsid, nohup), and its own $TMPDIR (/var/tmp/pbs.<jobid>) is removed. Slurm with
# proctrack/linuxproc loses track of detached processes; the epilog finds them by the job id in
# their environment.
write_teardown() {
  write_if_changed "$STATE/slurm/prolog.sh" <<'EOF' || true
#!/bin/bash
# Written by test/cluster/cluster.sh: the job's own TMPDIR, as PBS makes it.
install -d -m 700 -o "$SLURM_JOB_USER" "/var/tmp/pbs.$SLURM_JOB_ID"
EOF
  write_if_changed "$STATE/slurm/task_prolog.sh" <<'EOF' || true
#!/bin/bash
# Written by test/cluster/cluster.sh: lines "export NAME=value" set the job's environment.
echo "export TMPDIR=/var/tmp/pbs.$SLURM_JOB_ID"
EOF
  write_if_changed "$STATE/slurm/epilog.sh" <<'EOF' || true
#!/bin/bash
# Written by test/cluster/cluster.sh: kill what the job left behind, remove its TMPDIR.
id=$SLURM_JOB_ID
for pass in 1 2; do
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" != "$$" ] || continue
    if grep -qxzF "SLURM_JOB_ID=$id" "$p/environ" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; fi
  done
done
rm -rf "/var/tmp/pbs.$id"
exit 0
EOF
  chmod 755 "$STATE/slurm/prolog.sh" "$STATE/slurm/task_prolog.sh" "$STATE/slurm/epilog.sh"
}

node_idle() {
  local info
  info="$(with_conf scontrol show node "$(hostname -s)" 2>/dev/null)" || return 1
  [[ "$info" == *"SlurmdStartTime="[0-9]* ]] && [[ "$info" =~ State=(IDLE|MIXED|ALLOCATED) ]]
}

start_slurm() {
  if [[ "${SLURM_CHANGED:-0}" == 1 ]] && pid_alive "$RUN/slurmctld.pid"; then
    log "slurm.conf changed: restarting slurm"
    stop_pidfile "$RUN/slurmd.pid" slurmd
    stop_pidfile "$RUN/slurmctld.pid" slurmctld
  fi
  if ! pid_alive "$RUN/slurmctld.pid"; then
    with_conf /usr/sbin/slurmctld 9>&-
  fi
  if ! pid_alive "$RUN/slurmd.pid"; then
    with_conf /usr/sbin/slurmd -N "$(hostname -s)" 9>&-
  fi
  wait_until 20 node_idle || die "the slurm node did not become idle (see $LOG/slurmctld.log, $LOG/slurmd.log)"
}

setup_sshd() {
  install -d -m 755 "$STATE/ssh" "$STATE/bin" /run/sshd
  [[ -f "$STATE/ssh/ssh_host_ed25519_key" ]] ||
    ssh-keygen -q -t ed25519 -N '' -C "chasqui-test-host" -f "$STATE/ssh/ssh_host_ed25519_key"
  [[ -f "$STATE/ssh/ssh_host_rsa_key" ]] ||
    ssh-keygen -q -t rsa -b 3072 -N '' -C "chasqui-test-host" -f "$STATE/ssh/ssh_host_rsa_key"
  chmod 600 "$STATE/ssh/ssh_host_ed25519_key" "$STATE/ssh/ssh_host_rsa_key"
  # sshd names its PAM service after the name it was started as.
  ln -sfn /usr/sbin/sshd "$STATE/bin/$PAM_SERVICE"

  cat >"/etc/pam.d/$PAM_SERVICE" <<'EOF'
# chasqui's test sshd (test/cluster/cluster.sh): TOTP as the second factor.
auth required pam_google_authenticator.so noskewadj
@include common-account
@include common-session
EOF

  SSHD_CHANGED=1
  write_if_changed "$STATE/ssh/sshd_config" <<EOF || SSHD_CHANGED=0
# Written by test/cluster/cluster.sh. Port $KEY_PORT: public key; port $TOTP_PORT: key + TOTP.
ListenAddress $HOST_ADDR
Port $KEY_PORT
Port $TOTP_PORT
HostKey $STATE/ssh/ssh_host_ed25519_key
HostKey $STATE/ssh/ssh_host_rsa_key
PidFile $RUN/sshd.pid
AllowUsers $USER_NAME
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
AuthenticationMethods publickey
PrintMotd no
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 64
SetEnv SLURM_CONF=$SLURM_CONF_FILE
Subsystem sftp internal-sftp
Match LocalPort $TOTP_PORT
  AuthenticationMethods publickey,keyboard-interactive
  KbdInteractiveAuthentication yes
EOF

  local port key
  {
    for port in "$KEY_PORT" "$TOTP_PORT"; do
      for key in ed25519 rsa; do
        printf '[%s]:%s %s\n' "$HOST_ADDR" "$port" "$(cut -d' ' -f1,2 "$STATE/ssh/ssh_host_${key}_key.pub")"
      done
    done
  } >"$STATE/known_hosts"
  chmod 644 "$STATE/known_hosts"
}

# Compute nodes reach the login node by the cluster's own ssh (chasqui's trigger_host): the test
# user has a key of its own and an alias "login-node" for the key-only port, as a site's
# host-based or key setup would give it.
setup_cluster_ssh() {
  local ssh_dir="$USER_HOME/.ssh" key="$USER_HOME/.ssh/id_cluster"
  [[ -f "$key" ]] || runuser -u "$USER_NAME" -- ssh-keygen -q -t ed25519 -N '' -C "chasqui-cluster-internal" -f "$key"
  grep -qxF "$(cat "$key.pub")" "$ssh_dir/authorized_keys" || cat "$key.pub" >>"$ssh_dir/authorized_keys"
  {
    printf '[%s]:%s %s\n' "$HOST_ADDR" "$KEY_PORT" "$(cut -d' ' -f1,2 "$STATE/ssh/ssh_host_ed25519_key.pub")"
    printf '[%s]:%s %s\n' "$HOST_ADDR" "$KEY_PORT" "$(cut -d' ' -f1,2 "$STATE/ssh/ssh_host_rsa_key.pub")"
  } >"$ssh_dir/known_hosts_cluster"
  cat >"$ssh_dir/config" <<EOF
# Written by test/cluster/cluster.sh: the login node as compute nodes see it.
Host login-node
  HostName $HOST_ADDR
  Port $KEY_PORT
  IdentityFile ~/.ssh/id_cluster
  UserKnownHostsFile ~/.ssh/known_hosts_cluster
EOF
  chown "$USER_NAME:$USER_NAME" "$ssh_dir/known_hosts_cluster" "$ssh_dir/config"
  chmod 600 "$ssh_dir/known_hosts_cluster" "$ssh_dir/config"
}

port_open() { (exec 3<>"/dev/tcp/$HOST_ADDR/$1") 2>/dev/null; }

start_sshd() {
  "$STATE/bin/$PAM_SERVICE" -t -f "$STATE/ssh/sshd_config" || die "sshd_config is invalid"
  if [[ "$SSHD_CHANGED" == 1 ]] && pid_alive "$RUN/sshd.pid"; then
    # SIGHUP re-reads the config without dropping open sessions.
    kill -HUP "$(cat "$RUN/sshd.pid")"
    sleep 0.2
  fi
  if ! pid_alive "$RUN/sshd.pid"; then
    "$STATE/bin/$PAM_SERVICE" -f "$STATE/ssh/sshd_config" -E "$LOG/sshd.log" 9>&-
  fi
  wait_until 10 port_open "$KEY_PORT" || die "sshd does not listen on $KEY_PORT (see $LOG/sshd.log)"
  wait_until 10 port_open "$TOTP_PORT" || die "sshd does not listen on $TOTP_PORT (see $LOG/sshd.log)"
}

write_cluster_json() {
  cat >"$STATE/cluster.json.tmp" <<EOF
{
  "host": "$HOST_ADDR",
  "keyPort": $KEY_PORT,
  "totpPort": $TOTP_PORT,
  "user": "$USER_NAME",
  "home": "$USER_HOME",
  "scratch": "$SCRATCH",
  "identity": "$STATE/client/id_ed25519",
  "encryptedIdentity": "$STATE/client/id_ed25519_enc",
  "passphrase": "$PASSPHRASE",
  "knownHosts": "$STATE/known_hosts",
  "totpSecret": "$TOTP_SECRET",
  "slurmConf": "$SLURM_CONF_FILE",
  "jobcompLog": "$STATE/jobcomp.log",
  "stateDir": "$STATE",
  "cpus": $CPUS,
  "partitions": ["batch", "bdwall"]
}
EOF
  mv "$STATE/cluster.json.tmp" "$STATE/cluster.json"
}

job_finished() { # scheduler id
  local info
  info="$(with_conf scontrol show job "$1" 2>/dev/null)" || return 1
  [[ "$info" =~ JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) ]]
}

# Ready means a job went through qsub, ran as the test user and finished.
probe_job() {
  local probe="$USER_HOME/.cluster-probe" id
  install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$probe"
  printf '#!/bin/bash\n#PBS -N cluster-probe\n#PBS -l walltime=00:01:00\nid -un > probe.out\n' >"$probe/probe.sh"
  chown "$USER_NAME:$USER_NAME" "$probe/probe.sh"
  id="$(as_user "cd .cluster-probe && rm -f probe.out && qsub -o /dev/null -e /dev/null probe.sh")" ||
    die "qsub of the probe job failed"
  wait_until 30 job_finished "$id" || die "probe job $id did not finish"
  [[ "$(cat "$probe/probe.out" 2>/dev/null)" == "$USER_NAME" ]] || die "probe job $id did not run as $USER_NAME"
}

cmd_up() {
  [[ "$(id -u)" == 0 ]] || die "up needs root"
  install -d -m 755 "$STATE"
  exec 9>"$STATE/.up.lock"
  flock 9
  install_packages
  install -d -m 755 "$RUN" "$LOG"
  setup_user
  install_fakes
  setup_munge
  setup_slurm
  setup_sshd
  setup_cluster_ssh
  start_munge
  start_slurm
  start_sshd
  probe_job
  write_cluster_json
  log "ready: ssh -p $KEY_PORT -i $STATE/client/id_ed25519 -o UserKnownHostsFile=$STATE/known_hosts $USER_NAME@$HOST_ADDR"
}

stop_pidfile() { # pidfile name
  local pid
  pid_alive "$1" || { rm -f "$1"; return 0; }
  pid="$(tr -dc '0-9' <"$1")"
  kill "$pid" 2>/dev/null || true
  if ! wait_until 10 eval "! kill -0 $pid 2>/dev/null"; then
    log "$2 ($pid) ignored SIGTERM: killing"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
  log "stopped $2 ($pid)"
}

cmd_down() {
  exec 9>"$STATE/.up.lock"
  flock 9
  if pid_alive "$RUN/slurmctld.pid"; then
    with_conf scancel --user="$USER_NAME" 2>/dev/null || true
  fi
  stop_pidfile "$RUN/sshd.pid" sshd
  stop_pidfile "$RUN/slurmd.pid" slurmd
  stop_pidfile "$RUN/slurmctld.pid" slurmctld
  stop_pidfile "$STATE/munge/munged.pid" munged
  rm -f "$STATE/cluster.json"
}

cmd_status() {
  local all=0 name file
  for name in munged slurmctld slurmd sshd; do
    case "$name" in
      munged) file="$STATE/munge/munged.pid" ;;
      *) file="$RUN/$name.pid" ;;
    esac
    if pid_alive "$file"; then
      printf '%-10s running (pid %s)\n' "$name" "$(tr -dc '0-9' <"$file")"
    else
      printf '%-10s stopped\n' "$name"
      all=1
    fi
  done
  if ((all == 0)); then
    with_conf sinfo 2>/dev/null || true
    with_conf squeue 2>/dev/null || true
  fi
  return "$all"
}

queue_empty() { [[ -z "$(with_conf squeue -h --user="$USER_NAME" 2>/dev/null)" ]]; }

cmd_reset() {
  pid_alive "$RUN/slurmctld.pid" || die "the cluster is not up"
  # The remote folders go first: a cancelled job's end runs the agent, which would submit the
  # next waiting script. (Jobs still writing there may keep a folder alive: removed again below.)
  find "$USER_HOME" -mindepth 1 -maxdepth 1 -name 'chasqui_remote*' -exec rm -rf {} + 2>/dev/null || true
  with_conf scancel --user="$USER_NAME"
  wait_until 60 queue_empty || {
    with_conf scancel --user="$USER_NAME"
    wait_until 30 queue_empty
  } || die "jobs of $USER_NAME are still queued"
  find "$USER_HOME" -mindepth 1 -maxdepth 1 -name 'chasqui_remote*' -exec rm -rf {} +
  install -d -m 755 -o "$USER_NAME" -g "$USER_NAME" "$SCRATCH"
  find "$SCRATCH" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 2
    ;;
esac
