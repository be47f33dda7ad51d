#!/usr/bin/env bash
# Fake mpirun for the test cluster: drops launcher options (-np 4, -n 4, --bind-to core, ...) and
# runs the program once.
set -euo pipefail

while (($# > 0)); do
  case "$1" in
    --) shift; break ;;
    -np | -n | --np | -c | -N | -ppn | --ppn | -npernode | --npernode | -hostfile | --hostfile | \
      -machinefile | --machinefile | -f | -hosts | --host | -host | --map-by | --bind-to | --rank-by | \
      -genv | -env | -x | --mca | -mca | -wdir | --wdir)
      # -genv/-env/--mca take two values, the rest one.
      case "$1" in
        -genv | -env | --mca | -mca) shift $(($# < 3 ? $# : 3)) ;;
        *) shift $(($# < 2 ? $# : 2)) ;;
      esac
      ;;
    -*) shift ;;
    *) break ;;
  esac
done
(($# > 0)) || { echo "mpirun: no program given" >&2; exit 1; }
exec "$@"
