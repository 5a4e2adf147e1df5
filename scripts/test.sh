#!/usr/bin/env bash
# The test suite: type check, then the unit tests (test/unit/, no network loaded) and the tests that train,
# export, and run the notebooks through the real kernel (test/*.test.ts), with Node's test runner. Notebooks run
# on the fast budget unless INCEPTION_LAB_BUDGET says otherwise. Arguments, if any, name the test files to run
# (one at a time, in that order); --unit runs the fast tier alone (npm run test:unit: under a minute).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export INCEPTION_LAB_BUDGET="${INCEPTION_LAB_BUDGET:-fast}"
if [ "${1:-}" = "--unit" ]; then
  echo "[test] type check (tsc --noEmit)"
  tsc --noEmit -p .
  unit=(test/unit/*.test.ts)
  echo "[test] ${#unit[@]} unit test files (no network loaded), two at a time"
  # A failing file's report is printed whole; passing files print nothing.
  printf '%s\n' "${unit[@]}" | xargs -P 2 -I{} bash -c 'report="$(node --require ts-node/register/transpile-only --test --test-force-exit --test-reporter=spec "{}" 2>&1)" || { printf "%s\n[test] {}: FAILED\n" "$report"; exit 255; }' \
    || { echo "[test] FAILED (the report above says why)" >&2; exit 1; }
  echo "[test] every unit test file passed"
  exit 0
fi
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

# One test file: Node's runner in a process of its own. A file whose tests are done exits even if a test
# left a server or timer open (--test-force-exit): CI fails on the test, it does not hang until its limit.
run_file() {
  node --require ts-node/register/transpile-only --test --test-force-exit --test-reporter=spec "$1"
}

if [ $# -gt 0 ]; then
  echo "[test] $# test files, budget $INCEPTION_LAB_BUDGET"
  status=0
  for file in "$@"; do run_file "$file" || status=1; done
  exit $status
fi

# Several files at a time (INCEPTION_LAB_TEST_JOBS, default 2). One file alone leaves a core idle for a fifth
# to a half of its time (Python and TensorFlow starting, JupyterLab, the browser, images decoding): measured
# here, the whole suite took 18 min one file at a time and 11 min two at a time (before the TFLite and
# multi-worker files; CI took 28 min with them and setup). Three at a time gained nothing measurable: each file
# ran 1.7-2.2x as long as two at a time (tflite 538 s against 242 s), the cores already full. Longest first, so
# the workers end together; the rest follow in name order.
LONGEST=(tutorials tflite export cli multi-worker faults browser readme training files-safety graph-cache model inside precision fit device long-session reliability)
# Alone, after the rest: they compare a predicted time with a measured one, which another file would skew.
ALONE=(cost advise)
ordered=()
for name in "${LONGEST[@]}"; do ordered+=("test/$name.test.ts"); done
for file in test/*.test.ts test/unit/*.test.ts; do
  name="$(basename "$file" .test.ts)"
  [[ " ${LONGEST[*]} ${ALONE[*]} " == *" $name "* ]] || ordered+=("$file")
done
for file in "${ordered[@]}"; do [ -f "$file" ] || { echo "[test] scripts/test.sh lists $file, which does not exist" >&2; exit 1; }; done
jobs="${INCEPTION_LAB_TEST_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]?$ ]] || { echo "[test] INCEPTION_LAB_TEST_JOBS=$jobs: give a whole number of test files to run at a time, 1 to 99" >&2; exit 2; }
echo "[test] ${#ordered[@]} test files $jobs at a time, then ${#ALONE[@]} alone; budget $INCEPTION_LAB_BUDGET"

logs="$(mktemp -d "${TMPDIR:-/tmp}/inception-lab-tests-XXXXXX")"
trap 'rm -rf "$logs"' EXIT
export -f run_file
export logs
# Each file's report is printed whole when it ends (never interleaved); its name is kept if it failed.
printf '%s\n' "${ordered[@]}" | xargs -P "$jobs" -I{} bash -c '
  file="{}"; log="$logs/$(basename "$file").log"; started=$SECONDS
  if run_file "$file" >"$log" 2>&1; then result=passed; else result=FAILED; echo "$file" >>"$logs/failed"; fi
  { cat "$log"; echo "[test] $file: $result in $((SECONDS - started)) s"; } | flock "$logs" cat' || true
for name in "${ALONE[@]}"; do
  file="test/$name.test.ts"
  started=$SECONDS
  if run_file "$file"; then echo "[test] $file: passed in $((SECONDS - started)) s"; else echo "$file" >>"$logs/failed"; echo "[test] $file: FAILED"; fi
done
if [ -s "$logs/failed" ]; then
  echo "[test] FAILED: $(wc -l <"$logs/failed") test files:" >&2
  sed 's/^/  /' "$logs/failed" >&2
  exit 1
fi
echo "[test] every test file passed"
