#!/usr/bin/env bash
# Fake vasp_std for the test cluster: from the outside it behaves like VASP (reads INCAR and
# POSCAR in the current folder, writes OUTCAR, OSZICAR, CONTCAR, vasprun.xml, talks on stdout).
# INCAR tags steer it: FAKE_SECONDS = x (run time, default 1), FAKE_FAIL = .TRUE. (exit 1, no
# timing block), FAKE_OVERRUN = .TRUE. (runs far past any walltime, unless its POSCAR is the CONTCAR
# of an earlier run: a restart then finishes), FAKE_BIG_MB = n (an n-MB WAVECAR), FAKE_NELM_HIT =
# .TRUE. (the last ionic step runs NELM electronic steps: not converged), FAKE_VASPRUN_MB = n (a
# vasprun.xml of about n MB).
set -euo pipefail

# The value of INCAR tag $1 (case-insensitive; "!" and "#" start comments, ";" separates tags).
incar_tag() {
  awk -v want="$1" '
    { sub(/[!#].*/, ""); n = split($0, parts, ";")
      for (i = 1; i <= n; i++) {
        if (split(parts[i], kv, "=") < 2) continue
        key = toupper(kv[1]); gsub(/[ \t]/, "", key)
        if (key != want) continue
        val = kv[2]; sub(/^[ \t]+/, "", val); sub(/[ \t].*$/, "", val)
        found = val
      } }
    END { if (found != "") print found }' INCAR
}

is_true() { [[ "${1^^}" =~ ^\.?T ]]; }

start="$(date +%s.%N)"
echo " running on    1 total cores"
echo " vasp.6.4.2 (fake) 20Dec23 complex"
if [[ ! -f INCAR ]]; then
  echo " INCAR not found: STOPPING" >&2
  exit 1
fi
if [[ ! -f POSCAR ]]; then
  echo " ERROR: the file POSCAR is missing or empty" >&2
  exit 1
fi

# CONTCAR: POSCAR with the positions nudged (as after an ionic step) and " [continued]" on its
# comment line, so a run can tell it starts from an earlier run's CONTCAR.
write_contcar() {
awk '
  NR == 1 { print ($0 ~ /\[continued\]$/) ? $0 : $0 " [continued]"; next }
  NR == 2 { print; next }
  NR <= 5 { print; next }
  NR == 6 { if ($1 ~ /^[0-9]+$/) { counts = $0; print; state = "mode"; next } print; next }
  NR == 7 && state == "" { counts = $0; print; state = "mode"; next }
  state == "mode" && /^[ \t]*[sS]/ { print; next }
  state == "mode" { print; n = split(counts, c, " "); atoms = 0; for (i = 1; i <= n; i++) atoms += c[i]
                    state = "atoms"; left = atoms; next }
  state == "atoms" && left > 0 { left--
                    printf "  %.8f  %.8f  %.8f", $1 + 0.0001, $2, $3
                    for (i = 4; i <= NF; i++) printf " %s", $i
                    printf "\n"; next }
' POSCAR >CONTCAR
}

seconds="$(incar_tag FAKE_SECONDS)"
seconds="${seconds:-1}"
nsw="$(incar_tag NSW)"
nsw="${nsw:-0}"
ibrion="$(incar_tag IBRION)"
if [[ -z "$ibrion" ]]; then
  if ((nsw > 0)); then ibrion=0; else ibrion=-1; fi
fi
fail="$(incar_tag FAKE_FAIL)"
overrun="$(incar_tag FAKE_OVERRUN)"
big_mb="$(incar_tag FAKE_BIG_MB)"
nelm_hit="$(incar_tag FAKE_NELM_HIT)"
nelm="$(incar_tag NELM)"
nelm="${nelm:-60}"
vasprun_mb="$(incar_tag FAKE_VASPRUN_MB)"
system="$(head -n 1 POSCAR)"

{
  echo " vasp.6.4.2 (fake) 20Dec23 complex"
  echo " executed on             LinuxIFC date $(date -u '+%Y.%m.%d  %H:%M:%S')"
  echo " running on    1 total cores"
  echo " POSCAR found :  $system"
  echo " INCAR:"
  sed 's/^/   /' INCAR
  echo " POSCAR:"
  sed 's/^/   /' POSCAR
} >OUTCAR

if [[ -n "$overrun" ]] && is_true "$overrun" && [[ "$system" != *"[continued]" ]]; then
  # Like a relaxation killed at its walltime: the last ionic step's CONTCAR and WAVECAR are there.
  write_contcar
  echo "fake wavefunctions of $system" >WAVECAR
  echo " DAV:   1    -0.100000000000E+02   running past the walltime on purpose"
  sleep 1000000 &
  wait $!
fi

sleep "$seconds"

if [[ -n "$fail" ]] && is_true "$fail"; then
  echo " ERROR: FAKE_FAIL requested, stopping" | tee -a OUTCAR >&2
  exit 1
fi

steps=1
((nsw > 0)) && steps=$((nsw < 3 ? nsw : 3))
: >OSZICAR
for ((i = 1; i <= steps; i++)); do
  energy="-10.$((1000 + i))"
  electronic=$((4 + i))
  if ((i == steps)) && [[ -n "$nelm_hit" ]] && is_true "$nelm_hit"; then electronic=$nelm; fi
  for ((e = 1; e <= electronic; e++)); do
    printf 'DAV: %3d    -0.%08dE+02   -0.1E-03   -0.2E-05   100   0.1E-02\n' "$e" "$((10000000 + e))" >>OSZICAR
  done
  printf '%4d F= %.8E E0= %.8E  d E =%.6E\n' "$i" "$energy" "$energy" "-0.$i" >>OSZICAR
  printf '%4d F= %.8E E0= %.8E  d E =%.6E\n' "$i" "$energy" "$energy" "-0.$i"
  printf '  free  energy   TOTEN  =       %.8f eV\n' "$energy" >>OUTCAR
done

write_contcar

if [[ -n "$big_mb" ]] && ((big_mb > 0)); then
  dd if=/dev/zero of=WAVECAR bs=1M count="$big_mb" status=none
fi

{
cat <<EOF
<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <generator>
  <i name="program" type="string">vasp </i>
  <i name="version" type="string">6.4.2 (fake) </i>
 </generator>
 <calculation>
  <energy>
   <i name="e_fr_energy">    $energy </i>
  </energy>
 </calculation>
 <finalpos/>
EOF
if [[ -n "$vasprun_mb" ]] && ((vasprun_mb > 0)); then
  # Row after row of numbers, as in a real vasprun.xml's eigenvalue and DOS blocks.
  awk -v mb="$vasprun_mb" 'BEGIN { srand(7); n = mb * 1024 * 1024 / 60
    for (i = 0; i < n; i++) printf "   <r> %12.8f %12.8f %12.8f %8.4f </r>\n", rand() * 10, rand(), rand() * 2, rand() }'
fi
echo "</modeling>"
} >vasprun.xml

end="$(date +%s.%N)"
elapsed="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')"
{
  if ((nsw > 0 && ibrion >= 0)); then
    echo " reached required accuracy - stopping structural energy minimisation"
  fi
  echo " writing wavefunctions"
  echo " General timing and accounting informations for this job:"
  echo " ========================================================"
  echo ""
  printf '                  Total CPU time used (sec):     %10s\n' "$elapsed"
  printf '                            User time (sec):     %10s\n' "$elapsed"
  printf '                          System time (sec):     %10s\n' "0.001"
  printf '                         Elapsed time (sec):     %10s\n' "$elapsed"
  echo ""
  echo "                   Maximum memory used (kb):       12345."
  echo "                   Average memory used (kb):          N/A"
} >>OUTCAR
((nsw > 0 && ibrion >= 0)) && echo " reached required accuracy - stopping structural energy minimisation"
echo " writing wavefunctions"
exit 0
