#!/usr/bin/env bash
# tests/valgrind/run.sh - `make test-valgrind`: the integration run of
# tests/valgrind/scenario.py with examples/echo and wschatd started under
# valgrind's memcheck, then a check of every valgrind log.
#
# It passes only if the scenario passes (each server exits 0 after its
# SIGTERM; --error-exitcode makes a server that had any memory error or a
# definite or indirect leak exit 1) and every server's log shows
# "ERROR SUMMARY: 0 errors", nothing definitely or indirectly lost, and
# nothing still in use at exit: the library frees all its memory
# (wschat_library_shutdown() confirms it in wschatd), and OpenSSL and libuv
# free theirs at exit, so "still reachable" is expected to be zero too.
# VALGRIND_ALLOW_REACHABLE=1 accepts still-reachable blocks (for a system
# whose C library or libcrypto keeps some).
#
# Prints one line per server process and, last, "test-valgrind: PASS" or
# "test-valgrind: FAIL (...)"; exits 0 only on PASS.
#
# VALGRIND_FULL=1 also runs the chat and echo integration suites
# (test_chat_json, test_chat_text, test_echo_client, test_echo_raw) with
# every server they start under valgrind: about 150 more servers and three
# more minutes. Their time limits are not all scaled for valgrind, so on a
# heavily loaded machine they can time out where the scenario does not.
#
# Environment: BUILD (default "build"), PYTHON (default /usr/bin/python3),
# VALGRIND (default valgrind), KEEP_LOGS=1 to keep the valgrind logs,
# VALGRIND_FULL.
set -u

BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
export BUILD
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-/usr/bin/python3}
VALGRIND=${VALGRIND:-valgrind}

fail() {
  echo "test-valgrind: FAIL ($*)"
  exit 1
}

command -v "$VALGRIND" >/dev/null 2>&1 ||
  fail "$VALGRIND not found: make deps installs it"
for bin in "$BUILD/examples/echo" "$BUILD/cmd/wschatd"; do
  [ -x "$bin" ] || fail "$bin is missing: build it with make"
done

logdir=$(mktemp -d "${TMPDIR:-/tmp}/wschat-valgrind.XXXXXX")
if [ "${KEEP_LOGS:-0}" = 1 ]; then
  echo "test-valgrind: logs kept in $logdir"
else
  trap 'rm -rf "$logdir"' EXIT
fi

# One log per process (%p); the servers' own stderr stays separate.
export WSCHAT_TEST_WRAPPER="$VALGRIND --tool=memcheck --leak-check=full \
--show-leak-kinds=all --errors-for-leak-kinds=definite,indirect \
--error-exitcode=1 --num-callers=30 --log-file=$logdir/vg.%p.log"
# Under memcheck a server starts and stops about ten times slower.
export WSCHAT_TEST_SLOWDOWN=${WSCHAT_TEST_SLOWDOWN:-15}

start=$(date +%s)
suites=(tests/valgrind/scenario.py)
if [ "${VALGRIND_FULL:-0}" = 1 ]; then
  suites+=(tests/integration/test_chat_json.py
    tests/integration/test_chat_text.py tests/integration/test_echo_client.py
    tests/integration/test_echo_raw.py)
fi
status=0
for suite in "${suites[@]}"; do
  "$PYTHON" -m unittest -v "$suite" >>"$logdir/scenario.out" 2>&1 || status=$?
done
took=$(($(date +%s) - start))
ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' \
  "$logdir/scenario.out" | awk '{n += $1} END {print n}')
if [ "$status" != 0 ]; then
  echo "---- scenario output"
  cat "$logdir/scenario.out"
  echo "---- end of scenario output"
  echo "scenario: FAILED (exit $status) after ${took}s"
else
  echo "scenario: ${ran:-?} tests passed in ${took}s"
fi

# Every server's log: the command, then the summary lines checked.
bad=0
n=0
for log in "$logdir"/vg.*.log; do
  [ -f "$log" ] || continue
  n=$((n + 1))
  cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -n 1)
  errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" |
    tail -n 1 | tr -d ,)
  inuse=$(sed -n 's/.*in use at exit: \([0-9,]*\) bytes.*/\1/p' "$log" |
    tail -n 1 | tr -d ,)
  definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" |
    tail -n 1 | tr -d ,)
  indirect=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" |
    tail -n 1 | tr -d ,)
  reachable=$(sed -n 's/.*still reachable: \([0-9,]*\) bytes.*/\1/p' "$log" |
    tail -n 1 | tr -d ,)
  # With nothing in use at exit valgrind prints no LEAK SUMMARY at all.
  if [ "${inuse:-x}" = 0 ]; then
    definite=0 indirect=0 reachable=0
  fi
  printf '%s\n  errors %s, in use at exit %s bytes, definitely lost %s, ' \
    "${cmd:-?}" "${errors:-?}" "${inuse:-?}" "${definite:-?}"
  printf 'indirectly lost %s, still reachable %s\n' "${indirect:-?}" \
    "${reachable:-?}"
  why=
  if [ -z "$errors" ] || [ -z "$inuse" ]; then
    why="no summary (did the process exit normally?)"
  elif [ "$errors" != 0 ]; then
    why="$errors errors"
  elif [ "${definite:-x}" != 0 ] || [ "${indirect:-x}" != 0 ]; then
    why="leaks"
  elif [ "${reachable:-x}" != 0 ] && [ "${VALGRIND_ALLOW_REACHABLE:-0}" != 1 ]
  then
    why="still reachable at exit"
  fi
  if [ -n "$why" ]; then
    bad=$((bad + 1))
    echo "  FAIL: $why; the log:"
    cat "$log"
  fi
done

# One echo server and two wschatd servers: fewer logs means a server did
# not run under valgrind at all.
want=3
[ "$bad" = 0 ] || fail "$bad of $n servers had errors or leaks"
[ "$status" = 0 ] || fail "the scenario failed"
[ "$n" -ge "$want" ] || fail "$n valgrind logs, want $want"
echo "test-valgrind: PASS ($n servers under memcheck: 0 errors, 0 leaks)"
