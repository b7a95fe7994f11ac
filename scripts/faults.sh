#!/usr/bin/env bash
# The slow fault tests (tests/contract/under_load.rs; `make test` runs the
# fast ones): the moto server (DynamoDB and S3) killed and started again
# with its state
#   1. under 32 viewers asking for masters for 18 s: every answer must be
#      a 200, and the last 2 s fresh again; prints requests, stale answers
#      and p50/p99/max latency before, during and after the outage;
#   2. while 8 jobs are in flight: every job must complete.
# Loopback only, about a minute, everything stopped on exit. The debug
# build `make test` made is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh >&2
# A missing tool (moto) fails the run instead of skipping the tests.
CI=true cargo test --quiet --test contract -- --ignored --nocapture --test-threads 1 under_load
