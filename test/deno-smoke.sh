#!/usr/bin/env bash
# The source runs unchanged under Deno: init, add, list, template render on a temporary home.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
home=$(mktemp -d)
jobs=$(mktemp -d)
trap 'rm -rf "$home" "$jobs"' EXIT
export CHASQUI_HOME="$home/chasqui"
run() { "$deno" run -A --quiet src/main.ts "$@"; }
mkdir -p "$jobs/si-bulk"
for f in POSCAR INCAR KPOINTS POTCAR; do echo "$f of si-bulk" > "$jobs/si-bulk/$f"; done
run init --host cluster.example.org --set account=demo >/dev/null
run add "$jobs/si-bulk" >/dev/null
out=$(run list --json)
echo "$out" | grep -q '"id": "si-bulk"' || { echo "deno: list does not show the job"; exit 1; }
script=$(run template render si-bulk)
echo "$script" | grep -q '^#PBS' || { echo "deno: rendered script has no #PBS lines"; exit 1; }
echo "deno smoke: ok"
