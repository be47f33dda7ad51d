# shellcheck shell=bash
# chasqui state, the cluster side of every sync: deploys the agent when its version differs,
# writes agent.conf, runs the agent when scripts wait, then reports in one reply the agent.log
# events since the sync's cursor, every completion flag, and one scheduler snapshot.
# Sent on stdin to `bash -s` after lines that set R, W, OFFSET, HEAD (the log's first line as
# the sync last saw it), CONF (agent.conf text), AGENT_B64 (the agent, base64), CANCEL (cancels
# asked for with --next-sync), OPEN (chasqui's open jobs, ID=SCHEDULER_ID or ID, one per line) and
# REMOVE (jobs forgotten with `rm --remote`, one id per line).
# Reply: sections "@@<name> <bytes>\n<bytes>\n".
set -u
shopt -s nullglob

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/chasqui-state.XXXXXX") || exit 1
OPEN=${OPEN:-}
REMOVE=${REMOVE:-}
trap 'rm -rf "$TMPD"' EXIT

section() { # NAME FILE
  local n
  n=$(wc -c <"$2")
  printf '@@%s %s\n' "$1" "${n// /}"
  cat "$2"
  printf '\n'
}

deploy_agent() {
  local want have
  printf '%s' "$AGENT_B64" | base64 -d >"$TMPD/agent.sh" || return 1
  want=$(sed -n '2s/^# chasqui-agent-version: //p' "$TMPD/agent.sh")
  have=$(sed -n '2s/^# chasqui-agent-version: //p' "$R/agent.sh" 2>/dev/null)
  if [ "$want" != "$have" ] || ! cmp -s "$TMPD/agent.sh" "$R/agent.sh"; then
    cp "$TMPD/agent.sh" "$R/.agent.sh.new" && chmod 700 "$R/.agent.sh.new" && mv -f "$R/.agent.sh.new" "$R/agent.sh" || return 1
    echo "deployed=$want"
  fi
  if ! printf '%s\n' "$CONF" | cmp -s - "$R/agent.conf"; then
    printf '%s\n' "$CONF" >"$R/.agent.conf.new" && mv -f "$R/.agent.conf.new" "$R/agent.conf" || return 1
  fi
}

read_log() {
  local log="$R/agent.log" first="" prev_first=""
  [ -f "$log" ] && first=$(head -n 1 "$log")
  [ -f "$log.1" ] && prev_first=$(head -n 1 "$log.1")
  : >"$TMPD/log_prev"
  : >"$TMPD/log"
  local size=0
  [ -f "$log" ] && size=$(wc -c <"$log")
  size=${size// /}
  if [ -n "$HEAD" ] && [ "$first" = "$HEAD" ] && [ "$size" -ge "$OFFSET" ]; then
    echo "log_read=continue"
    tail -c +"$((OFFSET + 1))" "$log" >"$TMPD/log"
  elif [ -n "$HEAD" ] && [ "$prev_first" = "$HEAD" ]; then
    echo "log_read=rotated"
    tail -c +"$((OFFSET + 1))" "$log.1" >"$TMPD/log_prev"
    [ -f "$log" ] && cat "$log" >"$TMPD/log"
  else
    if [ -n "$HEAD" ]; then echo "log_read=restart"; else echo "log_read=first"; fi
    [ -f "$log" ] && cat "$log" >"$TMPD/log"
  fi
  printf '%s' "$first" >"$TMPD/log_head"
}

# The scheduler ids the snapshot asks about: chasqui's open jobs, except those whose DONE or FAIL
# flag already tells their fate; a TIMEOUT flag's id is asked (walltime and qdel look alike).
snapshot_ids() {
  local line id sid st fsid
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    id=${line%%=*}
    sid=""
    [ "$line" = "$id" ] || sid=${line#*=}
    if [ -f "$R/completed/$id.flag" ] && { read -r st && read -r fsid; } <"$R/completed/$id.flag"; then
      if [ -z "$sid" ] || [ "$fsid" = "$sid" ]; then
        [ "$st" != TIMEOUT ] || printf '%s\n' "$fsid"
        continue
      fi
    fi
    [ -z "$sid" ] || printf '%s\n' "$sid"
  done <<<"$OPEN"
}

# `chasqui rm --remote`: a forgotten job's work folder, flag, marks and scripts go. Never a job
# the agent could still submit (a script in waiting/ or submitting/ stays, and so does the job).
remove_jobs() {
  local id
  while IFS= read -r id; do
    [[ $id =~ ^[A-Za-z0-9._-]{1,64}$ ]] && [ "$id" != . ] && [ "$id" != .. ] || continue
    if [ -e "$R/waiting/$id.sh" ] || [ -e "$R/submitting/$id.sh" ]; then
      echo "remove_refused=$id"
      continue
    fi
    rm -rf "${W:?}/$id" && rm -f "$R/completed/$id.flag" "$R/cancelled/$id.sh" "$R/cancelled/$id.mark" \
      "$R/submitted/$id.sh" "$R/rejected/$id.sh" && echo "removed=$id"
  done <<<"$REMOVE"
}

# `chasqui cancel`: the agent (deployed first, as a sync would) cancels under its lock. Its lines
# go to stdout as they are; a deploy line, if any, goes first as "@deployed=V".
cancel_main() {
  mkdir -p "$R/waiting" "$R/completed" "$W" || return 1
  CONF="$CONF"$'\n'"WORK_ROOT=$W"
  local d
  d=$(deploy_agent) || { echo "cannot write $R/agent.sh" >&2; return 1; }
  [ -z "$d" ] || printf '@%s\n' "$d"
  bash "$R/agent.sh" cancel "$@"
}

main() {
  mkdir -p "$R/waiting" "$R/completed" "$W" || return 1
  CONF="$CONF"$'\n'"WORK_ROOT=$W"
  {
    echo "home=$HOME"
    deploy_agent || echo "deploy_error=cannot write $R/agent.sh"
    [ -z "$REMOVE" ] || remove_jobs
    # cancel --next-sync: before the agent runs, so a waiting script is never submitted.
    if [ -n "$CANCEL" ]; then
      local -a cancel_args
      mapfile -t cancel_args <<<"$CANCEL"
      bash "$R/agent.sh" cancel "${cancel_args[@]}" >"$TMPD/cancel" 2>>"$TMPD/cancel.err"
      echo "cancel_rc=$?"
    fi
    local waiting=("$R"/waiting/*.sh)
    echo "waiting_before=${#waiting[@]}"
    if [ ${#waiting[@]} -gt 0 ]; then
      bash "$R/agent.sh" trigger >"$TMPD/agent.out" 2>&1
      echo "agent_rc=$?"
    fi
    waiting=("$R"/waiting/*.sh)
    echo "waiting_after=${#waiting[@]}"
    read_log
  } >"$TMPD/meta"
  local flags=("$R"/completed/*.flag)
  if [ ${#flags[@]} -gt 0 ]; then
    awk 'FNR == 1 { n = FILENAME; sub(/.*\//, "", n); sub(/\.flag$/, "", n); print "@" n } { print }' "${flags[@]}" >"$TMPD/flags"
  else
    : >"$TMPD/flags"
  fi
  # Marks left by cancels: the TIMEOUT flag of a deleted job is a cancel, not a walltime kill.
  local marks=("$R"/cancelled/*.mark) m
  : >"$TMPD/cancel_marks"
  for m in ${marks[@]+"${marks[@]}"}; do
    printf '%s\t%s\n' "$(basename "$m" .mark)" "$(head -n 1 "$m")" >>"$TMPD/cancel_marks"
  done
  local ask
  mapfile -t ask < <(snapshot_ids | sort -u)
  bash "$R/agent.sh" snapshot ${ask[@]+"${ask[@]}"} >"$TMPD/snapshot" 2>"$TMPD/snapshot.err" || true
  section meta "$TMPD/meta"
  section log_prev "$TMPD/log_prev"
  section log "$TMPD/log"
  section log_head "$TMPD/log_head"
  section flags "$TMPD/flags"
  section snapshot "$TMPD/snapshot"
  section cancel_marks "$TMPD/cancel_marks"
  [ -f "$TMPD/cancel" ] && section cancel "$TMPD/cancel"
  [ -f "$TMPD/agent.out" ] && section agent_out "$TMPD/agent.out"
  return 0
}
