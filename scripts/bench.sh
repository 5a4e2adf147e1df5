#!/usr/bin/env bash
# Benchmarks against Python Keras on this machine (see bench/bench.ts). BENCH_QUICK=1 for a short run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
exec node --require ts-node/register/transpile-only bench/bench.ts
