#!/usr/bin/env bash
# The main job: brings up the cluster-in-a-box, builds chasqui, creates sample VASP job folders,
# adds them and syncs through the 2FA port (TOTP answered by otp_command) until every job has
# finished and its results are home, then shows the table (with energies), one job's summary and
# history, and the files that came back.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/.bin/bun ]; then npm ci --no-audit --no-fund >/dev/null; fi
export PATH="$PWD/node_modules/.bin:$PATH"
bash test/cluster/cluster.sh up
bun build.ts >/dev/null
cluster=${CHASQUI_CLUSTER_DIR:-/var/lib/chasqui-cluster}/cluster.json
work=$(mktemp -d /tmp/chasqui-demo.XXXXXX)
export CHASQUI_HOME="$work/home"
chasqui=dist/chasqui
for name in si-bulk ge-bulk gaas-relax; do
  mkdir -p "$work/jobs/$name"
  printf '%s\n1.0\n5.43 0 0\n0 5.43 0\n0 0 5.43\nSi\n2\nDirect\n0 0 0\n0.25 0.25 0.25\n' "$name" >"$work/jobs/$name/POSCAR"
  printf 'SYSTEM = %s\nENCUT = 400\nFAKE_SECONDS = 2\n' "$name" >"$work/jobs/$name/INCAR"
  if [ "$name" = gaas-relax ]; then printf 'NSW = 3\nIBRION = 2\n' >>"$work/jobs/$name/INCAR"; fi
  printf 'Automatic\n0\nGamma\n4 4 4\n' >"$work/jobs/$name/KPOINTS"
  printf 'PAW_PBE Si 05Jan2001\n' >"$work/jobs/$name/POTCAR"
done
user=$(sed -n 's/.*"user": *"\([^"]*\)".*/\1/p' "$cluster")
state=$(dirname "$cluster")
# The 2FA port: chasqui answers the TOTP prompt through otp_command, as a TOTP user's cron would.
$chasqui init --host 127.0.0.1 --port 2223 --user "$user" --identity "$state/client/id_ed25519" \
  --known-hosts "$state/known_hosts" --otp-command "$PWD/node_modules/.bin/bun $PWD/test/cluster/totp-cli.ts" \
  --remote-dir chasqui_remote_demo --template torque-vasp --set queue=batch --set ncpus=1 --max-queued 2 \
  --download
$chasqui add "$work"/jobs/*
echo
echo "== the batch script si-bulk gets:"
$chasqui template render si-bulk
echo
for round in 1 2 3 4 5 6; do
  echo "== sync $round"
  $chasqui sync
  if ! $chasqui list | grep -qvE $'\t(DONE|FAILED|TIMEOUT|LOST|CANCELLED)\t'; then break; fi
  sleep 5
done
echo
$chasqui list
echo
$chasqui show gaas-relax
echo
echo "== results of gaas-relax, home in its own folder (inputs untouched):"
ls -l "$work/jobs/gaas-relax"
echo
echo "demo folder: $work"
