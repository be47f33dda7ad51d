# chasqui upload, the cluster side. Sent on stdin to `bash -s` after lines that set R (chasqui's
# remote folder), W (the work-folder root), MODE and TX; whatever follows `main` on stdin is input.
# Content-addressed: each file body is kept once as $R/store/<sha256>; job folders get hard links
# (copies where the work root is on another file system). Nothing reaches a final name until the
# whole tar stream has arrived, so a cut connection leaves no half-written input behind.
set -u
shopt -s nullglob

missing() {
  local h
  while IFS= read -r h; do
    [ -n "$h" ] || break
    [ -f "$R/store/$h" ] || printf '%s\n' "$h"
  done
}

# Keeps what a job folder held before (a retried job) under run.N/, N counting up from 1.
archive_previous_run() {
  local dir=$1 n=1 entry
  while [ -e "$dir/run.$n" ]; do n=$((n + 1)); done
  mkdir "$dir/run.$n" || return 1
  for entry in "$dir"/* "$dir"/.[!.]*; do
    case ${entry##*/} in run.[0-9]*) continue ;; esac
    mv -f "$entry" "$dir/run.$n/" || return 1
  done
  # The old run's completion flag goes with it, or the next sync would take it for the new run's.
  if [ -f "$R/completed/${dir##*/}.flag" ]; then mv -f "$R/completed/${dir##*/}.flag" "$dir/run.$n/chasqui.flag" || return 1; fi
}

place() {
  local in="$R/.incoming/$TX" fresh=() dir id placed=0 scripts
  # The payload must be applied whole even if the connection drops once it has arrived.
  trap '' HUP PIPE
  rm -rf "$in"
  mkdir -p "$in" || return 1
  if ! tar -xz -C "$R" -f -; then
    rm -rf "$in"
    echo "upload incomplete: the tar stream ended early or was damaged; nothing was placed" >&2
    return 3
  fi
  local blobs=("$in"/blobs/*)
  if [ ${#blobs[@]} -gt 0 ]; then mv -f -t "$R/store" "${blobs[@]}" || return 1; fi
  for dir in "$in"/jobs/*; do
    id=${dir##*/}
    if [ -e "$W/$id" ]; then
      archive_previous_run "$W/$id" || return 1
      local files=("$dir"/* "$dir"/.[!.]*)
      if [ ${#files[@]} -gt 0 ]; then mv -f -t "$W/$id" "${files[@]}" || return 1; fi
    else
      fresh+=("$dir")
    fi
    placed=$((placed + 1))
  done
  if [ ${#fresh[@]} -gt 0 ]; then mv -t "$W" "${fresh[@]}" || return 1; fi
  scripts=("$in"/scripts/*.sh)
  if [ ${#scripts[@]} -gt 0 ]; then mv -f -t "$R/waiting" "${scripts[@]}" || return 1; fi
  rm -rf "$in"
  echo "placed_jobs=$placed"
  echo "placed_scripts=${#scripts[@]}"
}

main() {
  mkdir -p "$R/store" "$R/waiting" "$R/.incoming" "$W" || return 1
  case $MODE in
    missing) missing ;;
    place) place ;;
    *) echo "unknown mode $MODE" >&2; return 2 ;;
  esac
}
