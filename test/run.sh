#!/usr/bin/env bash
# The whole test suite, from a clean clone, as root: installs what it needs, brings the
# cluster-in-a-box up, checks types/lint/format, builds the binary, runs every test, then the
# Deno smoke test. Prints a final line "N passed, N failed".
#   bash test/run.sh           the suite (tests that take a scheduler's minute are skipped)
#   bash test/run.sh --slow    the suite and the slow tests (what CI runs)
#   bash test/run.sh FILE...   only these test files (bun test arguments), one after another
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

step() { printf '\n== %s\n' "$*"; }
fail_setup() { echo "setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "node packages"
if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null || fail_setup "npm ci"
fi
export PATH="$PWD/node_modules/.bin:$PATH"

step "cluster-in-a-box"
bash test/cluster/cluster.sh up || fail_setup "cluster.sh up"

step "shellcheck, cron"
# cron: `chasqui cron install` is tested against the real crontab command and cron daemon too.
if ! command -v shellcheck >/dev/null 2>&1 || ! command -v crontab >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends shellcheck cron >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y --no-install-recommends shellcheck cron >/dev/null; } ||
    fail_setup "apt-get install shellcheck cron"
fi

step "types, lint, format, shell, unused code"
static_failed=0
tsc --noEmit -p . || static_failed=$((static_failed + 1))
biome check . || static_failed=$((static_failed + 1))
# Every shell file we ship or test with (the rendered templates are checked by their own test).
git ls-files -z '*.sh' | xargs -0 shellcheck -S warning || static_failed=$((static_failed + 1))
# No file, export or dependency that nothing uses.
knip || static_failed=$((static_failed + 1))

step "build"
bun build.ts || fail_setup "bun build.ts"

step "bun test"
if [ "${1:-}" = "--slow" ]; then
  export CHASQUI_SLOW_TESTS=1
  shift
fi
# Tests that share the test cluster's account (they reset its remote folders and queue, or count
# its sshd log) run one file after another; the others run beside them on the second core.
is_cluster_file() {
  case "$1" in
  test/ssh/* | test/templates/cluster.test.ts | test/e2e/doctor.test.ts | test/e2e/results.test.ts | \
    test/e2e/selfFeeding.test.ts | test/e2e/sync.test.ts | test/e2e/transfer.test.ts | \
    test/e2e/faults.test.ts | test/e2e/remoteTrouble.test.ts | test/e2e/secrets.test.ts | \
    test/e2e/unattended.test.ts) return 0 ;;
  esac
  return 1
}
cluster_files=() local_files=()
while IFS= read -r f; do
  if is_cluster_file "$f"; then cluster_files+=("$f"); else local_files+=("$f"); fi
done < <(find test -name '*.test.ts' | sort)
logs=()
run_group() { # NAME FILE...: bun test in the background, output to a log printed at the end
  local log
  log=$(mktemp "/tmp/chasqui-test-$1.XXXXXX")
  logs+=("$log")
  shift
  bun test --timeout 120000 "$@" >"$log" 2>&1 &
}
if [ $# -gt 0 ]; then
  run_group args "$@"
else
  echo "${#cluster_files[@]} files on the test cluster, ${#local_files[@]} beside them"
  run_group cluster "${cluster_files[@]}"
  run_group local "${local_files[@]}"
fi
test_rc=0
for job in $(jobs -p); do wait "$job" || test_rc=1; done
passed=0 failed=0 failures=$(mktemp /tmp/chasqui-test-failures.XXXXXX)
for log in "${logs[@]}"; do
  cat "$log"
  # Each failing test with what bun printed before it (the error, expected and received), kept
  # for the end of the output, where a reader of a long CI log looks first.
  awk '/^[0-9]+ tests? failed:$/ { exit } # bun lists them again at its end
    /\.test\.ts:$/ { file = $0; n = 0; next }
    /^# Unhandled error/ { print file; block = 1; dashes = 0 } # e.g. a file that does not load
    block { print; if (/^-+$/ && ++dashes == 2) { print ""; block = 0 } n = 0; next }
    /^\((pass|skip|todo)\)/ { n = 0; next }
    /^\(fail\)/ { print file; for (i = 0; i < n; i++) print buf[i]; print; print ""; n = 0; next }
    { if (n == 60) { for (i = 1; i < n; i++) buf[i - 1] = buf[i]; n-- } buf[n++] = $0 }' "$log" >>"$failures"
  p=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  passed=$((passed + p)) failed=$((failed + f))
  rm -f "$log"
done
# bun exits 1 with "0 fail" when e.g. a file fails to load: count that as a failure.
unexplained=0
if [ "$test_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1 unexplained=1; fi

step "deno smoke"
if bash test/deno-smoke.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

failed=$((failed + static_failed))
if [ -s "$failures" ]; then
  step "failed tests"
  cat "$failures"
fi
rm -f "$failures"
[ "$unexplained" -eq 0 ] || echo "bun test failed with no failed test: look above for a file that did not load"
[ "$static_failed" -eq 0 ] || echo "$static_failed static check(s) failed: see \"types, lint, format, shell, unused code\" above"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
