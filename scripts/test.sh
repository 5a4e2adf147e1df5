#!/usr/bin/env bash
# The test suite: type check, then the unit tests and the notebook runs (test/*.test.ts) with
# Node's test runner. Notebooks run on the fast budget unless INCEPTION_LAB_BUDGET says otherwise.
# Arguments, if any, name the test files to run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export INCEPTION_LAB_BUDGET="${INCEPTION_LAB_BUDGET:-fast}"
# The browser test needs Debian's Chromium (playwright's own browser download fails offline).
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[test] installing Debian's chromium for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
      || { echo "[test] FAILED to install chromium with apt-get: install it, or set CHROMIUM=/path/to/chromium" >&2; exit 1; }
  else
    echo "[test] the browser test needs Chromium: sudo apt-get install chromium (or set CHROMIUM=/path/to/chromium)" >&2
    exit 1
  fi
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
echo "[test] type check (tsc --noEmit)"
tsc --noEmit -p .
files=("$@")
# Node's runner takes files in name order: tutorials.test.ts (the notebooks) comes last.
[ ${#files[@]} -gt 0 ] || files=(test/*.test.ts)
echo "[test] ${#files[@]} test files, budget $INCEPTION_LAB_BUDGET"
# One file at a time: the tests train networks and each wants both cores. A test file whose tests are
# done exits even if a test left a server or timer open (--test-force-exit): CI fails on the test, it
# does not hang until its time limit.
exec node --require ts-node/register/transpile-only --test --test-concurrency=1 --test-force-exit --test-reporter=spec "${files[@]}"
