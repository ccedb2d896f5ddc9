#!/usr/bin/env bash
# tests/run.sh - the one test runner (`make test` calls it after building):
#   1. every Criterion unit binary under $BUILD/tests/unit/ (recursively),
#   2. every tests/integration/test_*.py with Debian's /usr/bin/python3,
#   3. node --test tests/node/ (npm ws client).
# Prints a one-line summary per suite, the full output of every suite that
# failed, and last of all exactly "tests: N passed, N failed". Exits non-zero
# if anything failed or if nothing ran. A suite that cannot run (missing
# binary or tool) counts as one failure, never as skipped; so does a
# skipped unittest or node test.
#
# Environment: BUILD (default "build"), PYTHON (default /usr/bin/python3),
# NODE (default node), SUITE_TIMEOUT seconds per suite (default 240),
# VERBOSE=1 to print every suite's full output.
set -u

BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
export BUILD
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-/usr/bin/python3}
NODE=${NODE:-node}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-240}
VERBOSE=${VERBOSE:-0}

total_pass=0
total_fail=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/wschat-tests.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

# record NAME PASSED FAILED STATUS LOG
record() {
  local name=$1 pass=$2 fail=$3 status=$4 log=$5 mark=ok
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  [ "$fail" -gt 0 ] && mark=FAIL
  printf '%-4s %-52s %4d passed %4d failed (exit %s)\n' \
    "$mark" "$name" "$pass" "$fail" "$status"
  if [ "$fail" -gt 0 ] || [ "$VERBOSE" = 1 ]; then
    echo "---- output of $name ----"
    cat "$log"
    echo "---- end of $name ----"
  fi
}

# run_logged LOG CMD... : run with a time limit, output to LOG; sets $status.
run_logged() {
  local log=$1
  shift
  timeout --kill-after=10 "$SUITE_TIMEOUT" "$@" >"$log" 2>&1 </dev/null
  status=$?
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "run.sh: suite killed after ${SUITE_TIMEOUT}s" >>"$log"
  fi
}

# ---------------------------------------------------------------- unit
unit_dir=$BUILD/tests/unit
if [ ! -d "$unit_dir" ]; then
  log=$logdir/unit-missing.log
  echo "run.sh: $unit_dir does not exist (unit tests not built)" >"$log"
  record "unit: $unit_dir" 0 1 missing "$log"
else
  found=0
  while IFS= read -r -d '' bin; do
    found=1
    name=unit:${bin#"$BUILD"/tests/unit/}
    log=$logdir/$(echo "$name" | tr '/:' '__').log
    run_logged "$log" "$bin" --jobs=2
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a 'Synthesis: Tested:' |
      tail -n 1)
    if [ -n "$line" ]; then
      num() { echo "$line" | sed -n "s/.*$1: *\([0-9]*\).*/\1/p"; }
      pass=$(num Passing); failing=$(num Failing); crashing=$(num Crashing)
      fail=$(( ${failing:-0} + ${crashing:-0} ))
      pass=${pass:-0}
      if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
        echo "run.sh: exit status $status despite no failure" >>"$log"
        fail=1
      fi
    else
      pass=0
      fail=0
      if [ "$status" != 0 ]; then
        fail=1
        echo "run.sh: exited $status without a Synthesis line" >>"$log"
      fi
    fi
    record "$name" "$pass" "$fail" "$status" "$log"
  done < <(find "$unit_dir" -type f -perm -u+x -print0 | sort -z)
  if [ "$found" = 0 ]; then
    log=$logdir/unit-none.log
    echo "run.sh: no unit test binary under $unit_dir" >"$log"
    record "unit: $unit_dir" 0 1 missing "$log"
  fi
fi

# --------------------------------------------------------- integration
shopt -s nullglob
py_suites=(tests/integration/test_*.py)
if [ ! -x "$PYTHON" ]; then
  log=$logdir/python-missing.log
  echo "run.sh: $PYTHON not found (apt-get install python3)" >"$log"
  record "integration: python" 0 1 missing "$log"
elif [ ${#py_suites[@]} = 0 ]; then
  log=$logdir/python-none.log
  echo "run.sh: no tests/integration/test_*.py" >"$log"
  record "integration: python" 0 1 missing "$log"
else
  for suite in "${py_suites[@]}"; do
    name=integration:$(basename "$suite")
    log=$logdir/$(basename "$suite").log
    run_logged "$log" "$PYTHON" -m unittest -v "$suite"
    # unittest's summary: "Ran N tests" then "OK" or
    # "FAILED (failures=F, errors=E, skipped=S)". Subtest failures are
    # counted by unittest in failures, possibly several per test.
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -n 1)
    summary=$(grep -E '^(OK|FAILED)( \(.*\))?$' "$log" | tail -n 1)
    failures=$(echo "$summary" | sed -n 's/.*failures=\([0-9]*\).*/\1/p')
    errors=$(echo "$summary" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
    skipped=$(echo "$summary" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p')
    unexpected=$(echo "$summary" |
      sed -n 's/.*unexpected successes=\([0-9]*\).*/\1/p')
    if [ -z "$ran" ] || [ -z "$summary" ]; then
      pass=0
      fail=1
      echo "run.sh: no unittest summary (exit $status)" >>"$log"
    else
      # Count failing tests, not failing subtests: a test with failed
      # subtests prints one "... FAIL"/"... ERROR" line (or several
      # sub-lines); count distinct failing test ids from the header lines.
      bad=$(grep -E '^(FAIL|ERROR|UNEXPECTED SUCCESS): ' "$log" |
        sed -E 's/^[A-Z ]+: ([^ ]+ \([^)]*\)).*/\1/' | sort -u | wc -l)
      fail=$bad
      if [ "$fail" = 0 ] && [ $(( ${failures:-0} + ${errors:-0} +
            ${unexpected:-0} )) -gt 0 ]; then
        fail=$(( ${failures:-0} + ${errors:-0} + ${unexpected:-0} ))
      fi
      # Skips are not passes: a skipped test counts as failed, since a
      # suite must never be silently skipped.
      fail=$(( fail + ${skipped:-0} ))
      pass=$(( ran - fail ))
      [ "$pass" -lt 0 ] && pass=0
      if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
        fail=1
        echo "run.sh: exit status $status with no failure counted" >>"$log"
      fi
    fi
    record "$name" "$pass" "$fail" "$status" "$log"
  done
fi

# ---------------------------------------------------------------- node
log=$logdir/node.log
node_tests=(tests/node/*.test.mjs tests/node/*.test.js)
if ! command -v "$NODE" >/dev/null 2>&1; then
  echo "run.sh: $NODE not found (apt-get install nodejs)" >"$log"
  record "node: tests/node" 0 1 missing "$log"
elif [ ${#node_tests[@]} = 0 ]; then
  echo "run.sh: no tests/node/*.test.mjs" >"$log"
  record "node: tests/node" 0 1 missing "$log"
elif [ ! -d tests/node_modules/ws ]; then
  echo "run.sh: tests/node_modules/ws missing (run make deps, or" \
    "npm ci in tests/)" >"$log"
  record "node: tests/node" 0 1 missing "$log"
else
  run_logged "$log" "$NODE" --test --test-reporter=tap "${node_tests[@]}"
  pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  skipped=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  todo=$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  if [ -z "$pass" ] || [ -z "$fail" ]; then
    pass=0
    fail=1
    echo "run.sh: no TAP summary from node --test (exit $status)" >>"$log"
  else
    fail=$(( fail + ${cancelled:-0} + ${skipped:-0} + ${todo:-0} ))
    if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
      fail=1
      echo "run.sh: exit status $status with no failure counted" >>"$log"
    fi
  fi
  record "node: tests/node" "$pass" "$fail" "$status" "$log"
fi

echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$total_pass" -gt 0 ]
