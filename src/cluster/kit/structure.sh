# shellcheck shell=bash
# One rule for "is this a structure VASP can start from", shared by the job helper (judging a
# finished run's CONTCAR for its flag) and the upload (refusing a restart it cannot do). It is
# put in front of both when they are sent (core/jobLib.ts, cluster/upload.ts).

# A POSCAR-format structure (scale, three lattice vectors, optional species line, counts, optional
# "Selective dynamics", coordinate mode, one position per atom): prints its atom counts, or fails.
chasqui_structure_counts() { # FILE
  [ -s "$1" ] || return 1
  awk '
    function num(x) { return x ~ /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eEdD][-+]?[0-9]+)?$/ }
    function fail() { bad = 1; exit }
    NR == 2 { if (!num($1)) fail() }
    NR >= 3 && NR <= 5 { if (NF < 3 || !num($1) || !num($2) || !num($3)) fail() }
    NR == 6 && $1 ~ /^[0-9]+$/ { cl = 6 }
    NR == 7 && cl == 0 { cl = 7 }
    cl > 0 && NR == cl {
      for (i = 1; i <= NF; i++) { if ($i !~ /^[0-9]+$/) fail(); n += $i; counts = counts " " $i }
      if (n <= 0) fail()
      mode = NR + 1; next
    }
    mode > 0 && NR == mode {
      if ($1 ~ /^[sS]/) { mode++; next }
      if ($1 !~ /^[dDcCkK]/) fail()
      first = NR + 1; next
    }
    first > 0 && NR >= first && NR < first + n {
      if (NF < 3 || !num($1) || !num($2) || !num($3)) fail()
      got++
    }
    END { if (bad || n <= 0 || got != n) exit 1; print substr(counts, 2) }
  ' "$1"
}
