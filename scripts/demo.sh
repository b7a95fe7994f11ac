#!/usr/bin/env bash
# The local stack: dev keys if missing, a build, a server in the background
# on the configured address, a generated demo clip ingested through the
# local pipeline (ffmpeg), then a playable URL.
# `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-config/local.toml}"
BIN="${CARGO_TARGET_DIR:-target}/debug/playgate"

cargo build --quiet --bin playgate
if [ ! -f keys/dev/cloudfront_private.pem ]; then
  "$BIN" keygen --out keys/dev
elif [ ! -f keys/dev/content_kek ]; then
  # A key set from before encryption: add the key that wraps content keys.
  "$BIN" keygen --out keys/dev --kek-only
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

# A demo asset: a generated 20 s 720p clip, ingested through the real
# pipeline (upload → probe → ladder → ffmpeg → publish). Reused by later runs.
token="$("$BIN" token --config "$CONFIG" --sub demo-viewer --tier free --ttl 1h)"
asset="$(cat data/demo-asset 2>/dev/null || true)"
if [ -z "$asset" ] || ! curl -fsS -o /dev/null "$base/v1/play/$asset/master.m3u8?token=$token"; then
  echo "making a 20 s demo clip with ffmpeg and ingesting it…"
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=20" \
    -f lavfi -i "sine=frequency=440:duration=20" \
    -c:v libx264 -preset veryfast -c:a aac -shortest data/demo-source.mp4
  url="$("$BIN" ingest --config "$CONFIG" --title "Demo clip (ffmpeg test pattern)" data/demo-source.mp4)"
  asset="$(sed -n 's|.*/v1/play/\([^/]*\)/master.m3u8$|\1|p' <<<"$url")"
  echo "$asset" > data/demo-asset
fi
curl -fsS -o /dev/null "$base/v1/play/$asset/master.m3u8?token=$token" \
  || { echo "the demo master did not answer 200; see data/playgate.log" >&2; exit 1; }
cat <<MSG
playgate is running (pid $(cat data/playgate.pid), log data/playgate.log)
  play it in a browser (hls.js; pick the tier to see the ladder change):
    $base/demo?asset=$asset&tier=free&autoplay=1
  the free tier's master (cookie delivery; the response sets the edge cookies):
    $base/v1/play/$asset/master.m3u8?token=$token
  health $base/healthz · readiness $base/readyz · metrics $base/metrics
Stop it with: make stop
MSG
