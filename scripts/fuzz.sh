#!/usr/bin/env bash
# Hostile input at volume: every property test over the master filter,
# media signer, MPD filter, policy decoder and verifier, cookie parser and
# the edge's path handling, CASES (100,000) cases each, release build.
# Prints the time each suite took. By hand (minutes): `make test` runs the
# same properties with a few thousand cases.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${CASES:-100000}"
echo "building the property tests (release)…" >&2
cargo test --release --no-run --lib --test hostile --test hls_master --test hls_media >/dev/null 2>&1
for t in hostile hls_master hls_media; do
  start=$(date +%s)
  PLAYGATE_FUZZ_CASES="$CASES" cargo test --release --quiet --test "$t" -- --test-threads 2 2>&1 | grep -E "test result|panicked|FAILED" || true
  echo "$t: $CASES cases per property in $(( $(date +%s) - start )) s"
done
# Cookie and URL scopes over random nested, flat and mixed layouts.
start=$(date +%s)
PLAYGATE_FUZZ_CASES="$CASES" cargo test --release --quiet --lib hls::scope::tests::layouts 2>&1 | grep -E "test result|panicked|FAILED" || true
echo "scope layouts: $CASES cases in $(( $(date +%s) - start )) s"
