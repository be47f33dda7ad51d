# shellcheck shell=bash
# chasqui upload, the cluster side. Sent on stdin to `bash -s` after lines that set R (chasqui's
# remote folder), W (the work-folder root), MODE and TX; whatever follows `main` on stdin is input.
# Content-addressed: each file body is kept once as $R/store/<sha256>; job folders get hard links
# (copies where the work root is on another file system). Nothing reaches a final name until the
# whole tar stream has arrived, so a cut connection leaves no half-written input behind.
set -u
shopt -s nullglob

# Which of the given keys the cluster lacks: sha256 hashes of file bodies (R/store/<hash>), and
# lib/job-<version>.sh for the job helper.
missing() {
  local h
  while IFS= read -r h; do
    [ -n "$h" ] || break
    case $h in
      lib/job-*.sh) [[ ${h#lib/} =~ ^job-[0-9a-f]+\.sh$ ]] && [ ! -f "$R/$h" ] && printf '%s\n' "$h" ;;
      *) [ -f "$R/store/$h" ] || printf '%s\n' "$h" ;;
    esac
  done
}

# Keeps what a job folder held before (a retried job) under run.N/, N counting up from 1.
archive_previous_run() {
  local dir=$1 n=1 entry
  while [ -e "$dir/run.$n" ]; do n=$((n + 1)); done
  mkdir "$dir/run.$n" || return 1
  LAST_RUN="run.$n"
  for entry in "$dir"/* "$dir"/.[!.]*; do
    case ${entry##*/} in run.[0-9]*) continue ;; esac
    mv -f "$entry" "$dir/run.$n/" || return 1
  done
  # The old run's completion flag goes with it, or the next sync would take it for the new run's.
  if [ -f "$R/completed/${dir##*/}.flag" ]; then mv -f "$R/completed/${dir##*/}.flag" "$dir/run.$n/chasqui.flag" || return 1; fi
}

# retry --restart: can the run in DIR be continued? Its CONTCAR must be a structure with the same
# atom counts as its POSCAR. Prints why not, and fails, when it cannot.
restart_refusal() { # DIR
  local counts
  if [ ! -d "$1" ]; then
    echo "no earlier run of it is on the cluster"
  elif ! counts=$(chasqui_structure_counts "$1/CONTCAR"); then
    if [ -s "$1/CONTCAR" ]; then echo "its CONTCAR is not a valid structure"; else echo "its CONTCAR is missing or empty"; fi
  elif [ "$counts" != "$(chasqui_structure_counts "$1/POSCAR" 2>/dev/null)" ]; then
    echo "its CONTCAR's atom counts ($counts) differ from POSCAR's"
  else
    return 1
  fi
}

# The new run starts from the structure the previous one reached. POSCAR in the folder is a hard
# link into the content store: replace the link, never write through it. WAVECAR and CHGCAR come
# back from run.N/ (moved, since VASP rewrites them in place) where VASP looks for them, unless
# the job brought its own.
restart_from_contcar() { # DIR RUN
  local f
  cp "$1/$2/CONTCAR" "$1/.POSCAR.restart" && mv -f "$1/.POSCAR.restart" "$1/POSCAR" || return 1
  for f in WAVECAR CHGCAR; do
    if [ -f "$1/$2/$f" ] && [ ! -e "$1/$f" ]; then mv "$1/$2/$f" "$1/$f" || return 1; fi
  done
  printf 'restart_from=%s\t%s\n' "${1##*/}" "$2"
}

# The job helper the new scripts source, under its versioned name, put in place by rename and
# never rewritten: jobs queued earlier may be reading the one they were rendered against.
install_job_lib() { # INCOMING
  local f
  for f in "$1"/lib/job-*.sh; do
    [ ! -e "$R/lib/${f##*/}" ] || continue
    mkdir -p "$R/lib" && chmod 644 "$f" && mv -f "$f" "$R/lib/${f##*/}" || return 1
  done
}

# The agent submits by modification time: give the scripts of this upload times one microsecond
# apart in the order the jobs were added (the order file), all of them at this second.
order_scripts() { # INCOMING
  local now i=0 id
  [ -f "$1/order" ] || return 0
  now=$(date +%s)
  while IFS= read -r id; do
    [ -f "$1/scripts/$id.sh" ] || continue
    touch -m -d "@$now.$(printf '%06d' "$i")" "$1/scripts/$id.sh" 2>/dev/null || return 0
    i=$((i + 1))
  done <"$1/order"
}

place() {
  local in="$R/.incoming/$TX" fresh=() restarts=() dir id placed=0 scripts
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
  local why
  for dir in "$in"/jobs/*; do
    id=${dir##*/}
    LAST_RUN=""
    # A restart that cannot be done is refused before anything of the job changes.
    if [ -e "$in/restart/$id" ] && why=$(restart_refusal "$W/$id"); then
      printf 'restart_refused=%s\t%s\n' "$id" "$why"
      rm -f "$in/scripts/$id.sh"
      continue
    fi
    # A job sent again (retry): an old cancel of it no longer applies.
    rm -f "$R/cancelled/$id.mark" "$R/cancelled/$id.sh"
    if [ -e "$W/$id" ]; then
      archive_previous_run "$W/$id" || return 1
      local files=("$dir"/* "$dir"/.[!.]*)
      if [ ${#files[@]} -gt 0 ]; then mv -f -t "$W/$id" "${files[@]}" || return 1; fi
    else
      fresh+=("$dir")
    fi
    placed=$((placed + 1))
    if [ -e "$in/restart/$id" ]; then restarts+=("$id:$LAST_RUN"); fi
  done
  if [ ${#fresh[@]} -gt 0 ]; then mv -t "$W" "${fresh[@]}" || return 1; fi
  local r
  for r in ${restarts[@]+"${restarts[@]}"}; do restart_from_contcar "$W/${r%%:*}" "${r#*:}" || return 1; done
  scripts=("$in"/scripts/*.sh)
  install_job_lib "$in" || return 1
  order_scripts "$in"
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
