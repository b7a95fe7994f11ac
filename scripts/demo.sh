#!/usr/bin/env bash
# The local stack: dev keys if missing, a build, a server in the background
# on the configured address, then the URLs it serves. `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-config/local.toml}"
BIN="${CARGO_TARGET_DIR:-target}/debug/playgate"

cargo build --quiet --bin playgate
if [ ! -f keys/dev/cloudfront_private.pem ]; then
  "$BIN" keygen --out keys/dev
fi
"$BIN" check-config --config "$CONFIG" >/dev/null

mkdir -p data
if [ -f data/playgate.pid ] && kill -0 "$(cat data/playgate.pid)" 2>/dev/null; then
  echo "stopping the previous demo server (pid $(cat data/playgate.pid))"
  kill "$(cat data/playgate.pid)" || true
  sleep 1
fi
nohup "$BIN" serve --config "$CONFIG" >data/playgate.log 2>&1 &
echo $! > data/playgate.pid

base="$(sed -n 's/^public_url = "\(.*\)"/\1/p' "$CONFIG" | head -n1)"
for _ in $(seq 1 100); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat data/playgate.pid)" 2>/dev/null; then
    echo "playgate exited; its log:" >&2; cat data/playgate.log >&2; exit 1
  fi
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null

token="$("$BIN" token --config "$CONFIG" --sub demo-viewer --tier free --ttl 1h)"
cat <<MSG
playgate is running (pid $(cat data/playgate.pid), log data/playgate.log)
  health:     $base/healthz
  readiness:  $base/readyz
  metrics:    $base/metrics
  a viewer token for tier "free" (1 h):
    $token
Stop it with: make stop
MSG
