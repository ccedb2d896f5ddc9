#!/usr/bin/env bash
# tests/run.sh - the one test runner (`make test` calls it after building):
#   1. every Criterion unit binary under $BUILD/tests/unit/ (recursively),
#   2. every tests/integration/test_*.py with Debian's /usr/bin/python3,
#   3. node --test tests/node/ (npm ws client), then cargo test in
#      bindings/rust (the Rust bindings; CARGO overrides which cargo),
#   4. every libFuzzer target $BUILD/fuzz/fuzz_* (tests/fuzz/), briefly,
#   5. with ASAN_BUILD set (make test sets build/asan), the unit and
#      integration suites again against that sanitizer build, as "asan ...".
# Prints a one-line summary per suite, the full output of every suite that
# failed, and last of all exactly "tests: N passed, N failed". Exits non-zero
# if anything failed or if nothing ran. A suite that cannot run (missing
# binary or tool) counts as one failure, never as skipped; so does a
# skipped unittest or node test.
#
# Environment: BUILD (default "build"), PYTHON (default /usr/bin/python3),
# NODE (default node), SUITE_TIMEOUT seconds per suite (default 240),
# FUZZ_TEST_TIME seconds per fuzz target (default 10), ASAN_BUILD (default
# unset: no sanitizer pass),
# VERBOSE=1 to print every suite's full output.
set -u

BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
export BUILD
ASAN_BUILD=${ASAN_BUILD:-}
case $ASAN_BUILD in '' | /*) ;; *) ASAN_BUILD=$PWD/$ASAN_BUILD ;; esac
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
# run_unit_suites PREFIX: every unit binary under $BUILD/tests/unit, each
# suite named PREFIX"unit:...". The sanitizer pass calls it again.
run_unit_suites() {
  local prefix=$1
  unit_dir=$BUILD/tests/unit
  if [ ! -d "$unit_dir" ]; then
    log=$logdir/unit-missing.log
    echo "run.sh: $unit_dir does not exist (unit tests not built)" >"$log"
    record "${prefix}unit: $unit_dir" 0 1 missing "$log"
  else
    found=0
    while IFS= read -r -d '' bin; do
      found=1
      name=${prefix}unit:${bin#"$BUILD"/tests/unit/}
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
      record "${prefix}unit: $unit_dir" 0 1 missing "$log"
    fi
  fi
}
run_unit_suites ""

# --------------------------------------------------------- integration
shopt -s nullglob
# run_integration_suites PREFIX: every tests/integration/test_*.py against
# $BUILD, each suite named PREFIX"integration:...". The sanitizer pass
# calls it again.
run_integration_suites() {
  local prefix=$1
  py_suites=(tests/integration/test_*.py)
  if [ ! -x "$PYTHON" ]; then
    log=$logdir/python-missing.log
    echo "run.sh: $PYTHON not found (apt-get install python3)" >"$log"
    record "${prefix}integration: python" 0 1 missing "$log"
  elif [ ${#py_suites[@]} = 0 ]; then
    log=$logdir/python-none.log
    echo "run.sh: no tests/integration/test_*.py" >"$log"
    record "${prefix}integration: python" 0 1 missing "$log"
  else
    for suite in "${py_suites[@]}"; do
      name=${prefix}integration:$(basename "$suite")
      log=$logdir/$(basename "$suite").log
      run_logged "$log" "$PYTHON" -m unittest -v "$suite"
      # unittest's summary: "Ran N tests" then "OK" or
      # "FAILED (failures=F, errors=E, skipped=S)". Subtest failures are
      # counted by unittest in failures, possibly several per test.
      ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" |
        tail -n 1)
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
}
run_integration_suites ""

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

# ---------------------------------------------------------------- rust
# run_rust_suite PREFIX: `cargo test` in bindings/rust (the crate's unit,
# integration and doc tests, and its examples run as processes), built in
# $BUILD/rust and linked against the shared library of the build under
# test: lib/ for the default build, $BUILD/lib for a variant build (make
# BUILD=... LIBDIR=$BUILD/lib). A library built with AddressSanitizer
# needs the ASan runtime loaded before anything else, which a Rust program
# does not link: then the test programs (not cargo and rustc) run with it
# in LD_PRELOAD, through cargo's target runner. cargo is looked for in
# PATH, then where rustup puts it; `make deps` installs Debian's when
# there is none.
run_rust_suite() {
  local name=${1}rust:bindings/rust log=$logdir/${1// /_}rust.log
  local cargo=${CARGO:-} c libdir host runner_var
  if [ -z "$cargo" ]; then
    for c in "$(command -v cargo 2>/dev/null)" \
        "${CARGO_HOME:-${HOME:-/root}/.cargo}/bin/cargo" \
        /root/.cargo/bin/cargo /usr/local/cargo/bin/cargo; do
      if [ -n "$c" ] && [ -x "$c" ]; then cargo=$c; break; fi
    done
  fi
  libdir=$ROOT/lib
  if [ "$(cd "$BUILD" 2>/dev/null && pwd -P)" != "$(cd "$ROOT/build" 2>/dev/null &&
        pwd -P)" ] && [ -e "$BUILD/lib/libwschat.so" ]; then
    libdir=$BUILD/lib
  fi
  if [ -z "$cargo" ]; then
    echo "run.sh: cargo not found (make deps installs it)" >"$log"
    record "$name" 0 1 missing "$log"
    return
  fi
  if [ ! -e "$libdir/libwschat.so" ]; then
    echo "run.sh: $libdir/libwschat.so not built" >"$log"
    record "$name" 0 1 missing "$log"
    return
  fi
  local -x CARGO_TARGET_DIR=$BUILD/rust WSCHAT_LIB_DIR=$libdir
  if readelf -d "$libdir/libwschat.so" 2>/dev/null | grep -q 'libasan'; then
    host=$("$cargo" -vV | sed -n 's/^host: //p')
    runner_var=CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUNNER
    local -x "$runner_var=env LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)"
  fi
  run_logged "$log" "$cargo" test --offline --no-fail-fast \
    --manifest-path bindings/rust/Cargo.toml
  # One "test result: ok. N passed; M failed; I ignored; ..." line per
  # test program (doc tests included); ignored tests count as failures.
  read -r pass fail < <(sed -n \
    's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' \
    "$log" | awk '{p += $1; f += $2 + $3; n++} END {print (n ? p : 0), (n ? f : -1)}')
  if [ "$fail" = -1 ]; then
    fail=1
    echo "run.sh: no cargo test result line (exit $status)" >>"$log"
  elif [ "$status" != 0 ] && [ "$fail" = 0 ]; then
    fail=1
    echo "run.sh: exit status $status with no failure counted" >>"$log"
  fi
  record "$name" "$pass" "$fail" "$status" "$log"
}
run_rust_suite ""

# ---------------------------------------------------------------- fuzz
# Each target runs for FUZZ_TEST_TIME seconds on a scratch copy of its seed
# corpus (tests/fuzz/corpus/TARGET), so a regression that the seeds or a
# short search reach fails here. A crash, sanitizer report or failed
# invariant makes libFuzzer exit non-zero; its output (stack, input) is
# shown as the suite's log.
FUZZ_TEST_TIME=${FUZZ_TEST_TIME:-10}
fuzz_srcs=(tests/fuzz/fuzz_*.c)
if [ ${#fuzz_srcs[@]} = 0 ]; then
  log=$logdir/fuzz-none.log
  echo "run.sh: no tests/fuzz/fuzz_*.c" >"$log"
  record "fuzz: tests/fuzz" 0 1 missing "$log"
fi
for src in "${fuzz_srcs[@]}"; do
  target=$(basename "$src" .c)
  name=fuzz:$target
  log=$logdir/$target.log
  bin=$BUILD/fuzz/$target
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin not built (make fuzz-build)" >"$log"
    record "$name" 0 1 missing "$log"
    continue
  fi
  corpus=$logdir/corpus-$target
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null
  dict=()
  [ -f tests/fuzz/"$target".dict ] && dict=(-dict=tests/fuzz/"$target".dict)
  run_logged "$log" "$bin" -max_total_time="$FUZZ_TEST_TIME" \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$logdir/$target-" \
    "$corpus"
  if [ "$status" = 0 ] && grep -q '^Done [0-9]* runs' "$log"; then
    pass=1
    fail=0
  else
    pass=0
    fail=1
    echo "run.sh: $target exited $status (a crash, a sanitizer report or" \
      "a failed invariant: see above), or did not finish its run" >>"$log"
  fi
  record "$name" "$pass" "$fail" "$status" "$log"
done

# ------------------------------------------------------- sanitizer pass
# With ASAN_BUILD set (make test builds build/asan with AddressSanitizer and
# UBSan, and sets it), the unit and integration suites run a second time
# against that build, named "asan unit:..." and "asan integration:...". Any
# sanitizer report aborts the process and so fails the suite that caused
# it; LeakSanitizer checks every server at its exit. Not run again: the node
# suites (the ws client and the Chromium browser test: the same server
# paths the Python suites drive, and Chromium alone costs most of a minute)
# and the fuzz targets (built with ASan and UBSan already). `make
# test-asan` runs every suite against build/asan.
run_sanitizer_pass() {
  local -x BUILD=$1
  local -x ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  local -x UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  local logdir=$logdir/asan
  mkdir -p "$logdir"
  run_unit_suites "asan "
  run_integration_suites "asan "
}
if [ -n "$ASAN_BUILD" ]; then
  run_sanitizer_pass "$ASAN_BUILD"
fi

echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$total_pass" -gt 0 ]
