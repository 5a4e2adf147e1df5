#!/usr/bin/env bash
# The test suite: type check, then the unit tests and the notebook runs (test/*.test.ts) with
# Node's test runner. Notebooks run on the fast budget unless INCEPTION_LAB_BUDGET says otherwise.
# Arguments, if any, name the test files to run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export INCEPTION_LAB_BUDGET="${INCEPTION_LAB_BUDGET:-fast}"
echo "[test] type check (tsc --noEmit)"
tsc --noEmit -p .
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/*.test.ts)
echo "[test] ${#files[@]} test files, budget $INCEPTION_LAB_BUDGET"
# One file at a time: the tests train networks and each wants both cores.
exec node --require ts-node/register/transpile-only --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
