# shellcheck shell=bash
# chasqui download, the cluster side. Sent on stdin to `bash -s` after lines that set W (the
# work-folder root), SPEC (one line per job: its id, then the file-name patterns to fetch, all
# TAB-separated) and HAVE (what the workstation already has: id TAB name TAB size TAB sha256; a
# size of -1 means "keep the local file, never send it", e.g. an input of the job).
# Replies with "@@manifest <bytes>\n", the manifest (one line per matching file: id TAB name TAB
# size TAB send|same|kept; a folder that is not there: id TAB TAB TAB missing), then one gzipped
# tar stream of <id>/<name> for every file marked send. Only the top level of a work folder is
# looked at: earlier runs (run.N/), subfolders and links stay on the cluster.
set -u

declare -A HAVE_SIZE=() HAVE_SUM=() GLOBS=()

load_spec() {
  local id name size sum line
  while IFS=$'\t' read -r id name size sum; do
    [ -n "$id" ] && [ -n "$name" ] || continue
    HAVE_SIZE["$id/$name"]=$size
    HAVE_SUM["$id/$name"]=$sum
  done <<<"$HAVE"
  while IFS= read -r line; do
    id=${line%%$'\t'*}
    [[ $id =~ ^[A-Za-z0-9._-]{1,64}$ ]] && [ "$id" != . ] && [ "$id" != .. ] || continue
    [ "$line" != "$id" ] || continue
    GLOBS["$id"]=${line#*$'\t'}
  done <<<"$SPEC"
}

# Sets VERDICT (no subshell: this runs once per file, for hundreds of jobs). Hashes only a file
# whose size matches what the workstation has.
verdict() { # ID NAME SIZE PATH
  local key="$1/$2" sum
  VERDICT=send
  [ -n "${HAVE_SIZE[$key]+set}" ] || return 0
  if [ "${HAVE_SIZE[$key]}" = -1 ]; then
    VERDICT=kept
  elif [ "${HAVE_SIZE[$key]}" = "$3" ]; then
    sum=$(sha256sum <"$4") && [ "${sum%% *}" = "${HAVE_SUM[$key]}" ] && VERDICT=same
  fi
  return 0
}

list_matches() { # MANIFEST LIST
  local id dirs=() size dir name g
  local -a pats
  for id in "${!GLOBS[@]}"; do
    if [ -d "$W/$id" ]; then dirs+=("$W/$id"); else printf '%s\t\t\tmissing\n' "$id" >>"$1"; fi
  done
  [ "${#dirs[@]}" -gt 0 ] || return 0
  # One find for every folder: %h is the folder, %f the name (NUL-terminated).
  find "${dirs[@]}" -mindepth 1 -maxdepth 1 -type f -printf '%s\t%h\t%f\0' |
    while IFS=$'\t' read -r -d '' size dir name; do
      case $name in .* | *$'\t'* | *$'\n'*) continue ;; esac
      id=${dir##*/}
      IFS=$'\t' read -r -a pats <<<"${GLOBS[$id]}"
      for g in "${pats[@]}"; do
        # shellcheck disable=SC2053 # the pattern is meant to match as a glob
        if [[ $name == $g ]]; then
          verdict "$id" "$name" "$size" "$dir/$name"
          printf '%s\t%s\t%s\t%s\n' "$id" "$name" "$size" "$VERDICT" >>"$1"
          [ "$VERDICT" != send ] || printf '%s/%s\0' "$id" "$name" >>"$2"
          break
        fi
      done
    done
}

main() {
  local tmp n
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/chasqui-download.XXXXXX") || return 1
  trap 'rm -rf "$tmp"' RETURN
  load_spec
  : >"$tmp/manifest"
  : >"$tmp/list"
  list_matches "$tmp/manifest" "$tmp/list" || return 1
  n=$(wc -c <"$tmp/manifest")
  printf '@@manifest %s\n' "${n// /}"
  cat "$tmp/manifest"
  # gzip -1: results are mostly text and squeeze well even so; the default level made the
  # cluster's one core the bottleneck (about 20 MB/s).
  set -o pipefail
  tar -C "$W" --null --no-recursion -T "$tmp/list" -cf - | gzip -1
}
