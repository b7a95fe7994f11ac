# Sourced by scripts/load.sh and scripts/soak.sh: builds playgate (release),
# starts it in local mode on loopback with a real ffmpeg clip published as
# asset `load`, and writes $work/mix.tsv: master requests over TOKENS
# viewer tokens spread across the free/standard/premium tiers, URL-mode
# media playlists (tier `mobile`), and cookie signing with an API key.
# Also the clip encrypted (`publish --encrypt`) as asset `load-enc`, and
# a free viewer's key request for it: $key_url with $key_cookie.
# Leaves: $BIN, $work, $PG_PORT, $PG_PID, $pids, $master, $token; a trap
# stops everything on exit. Env: TOKENS (1000), PLAYGATE_BIN (a binary to
# measure instead of building this checkout's).
# Other settings: PLAYGATE__SECTION__KEY variables in the environment.
set -euo pipefail
TARGET="${CARGO_TARGET_DIR:-target}"
TOKENS="${TOKENS:-1000}"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ -n "${PLAYGATE_BIN:-}" ]; then
  BIN="$PLAYGATE_BIN"  # another build (e.g. an earlier commit's), measured by these scripts
else
  echo "building playgate (release)…" >&2
  cargo build --quiet --release --bin playgate
  BIN="$TARGET/release/playgate"
fi

work="$(mktemp -d /tmp/playgate-load.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT="$(free_port)"
NGINX_PORT="$(free_port)"
API_KEY="load-$(openssl rand -hex 16)"
API_SHA="$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)"

"$BIN" keygen --out "$work/keys" >/dev/null
sed -e "s|^listen = .*|listen = \"127.0.0.1:$PG_PORT\"|" \
    -e "s|^public_url = .*|public_url = \"http://127.0.0.1:$PG_PORT\"|" \
    -e "s|^base_url = .*|base_url = \"http://127.0.0.1:$PG_PORT/cdn\"|" \
    -e "s|^root = .*|root = \"$work/data\"|" \
    -e "s|^sqlite_path = .*|sqlite_path = \"$work/data/playgate.db\"|" \
    -e "s|keys/dev/|$work/keys/|g" \
    config/local.toml > "$work/playgate.toml"
cat >> "$work/playgate.toml" <<TOML

[tiers.mobile]
rank = 5
max_height = 480
delivery = "urls"

[[auth.api_keys]]
name = "load-backend"
sha256 = "$API_SHA"
scopes = ["playgate:sign"]
TOML
"$BIN" check-config --config "$work/playgate.toml" >/dev/null
bash scripts/make-clip.sh "$work/clip" 4
"$BIN" publish --config "$work/playgate.toml" --asset load "$work/clip" >/dev/null
# Encrypted (HLS only: clear-key protection has no DASH).
mkdir -p "$work/clip-enc" && cp -r "$work/clip/hls" "$work/clip-enc/"
"$BIN" publish --config "$work/playgate.toml" --asset load-enc --encrypt "$work/clip-enc" >/dev/null

"$BIN" serve --config "$work/playgate.toml" >"$work/playgate.log" 2>&1 &
PG_PID=$!
pids+=("$PG_PID")
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PG_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
token="$("$BIN" token --config "$work/playgate.toml" --sub load --tier free --ttl 2h)"
master="http://127.0.0.1:$PG_PORT/v1/play/load/master.m3u8"
# The key endpoint: the 360p key of load-enc with the cookie a free
# viewer's master sets.
key_cookie="$(curl -fsS -o /dev/null -D - -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$PG_PORT/v1/play/load-enc/master.m3u8" \
  | sed -n 's/^[Ss]et-[Cc]ookie: \(playgate-keys=[^;]*\).*/\1/p' | tr -d '\r')"
key_url="$(grep '^#EXT-X-KEY:' "$work/data/assets/load-enc/v1/hls/360p/index.m3u8" | head -n1 | sed 's/.*URI="\([^"]*\)".*/\1/')"
[ -n "$key_cookie" ] && [ -n "$key_url" ] || { echo "no key cookie or key URI for load-enc" >&2; exit 1; }
curl -fsS -o /dev/null -H "Cookie: $key_cookie" "$key_url" || { echo "the key request fails" >&2; exit 1; }

echo "minting $TOKENS viewer tokens…" >&2
tiers=(free standard premium)
: > "$work/mix.tsv"
for i in $(seq 1 "$TOKENS"); do
  tier="${tiers[$(( i % 3 ))]}"
  t="$("$BIN" token --config "$work/playgate.toml" --sub "viewer-$i" --tier "$tier" --ttl 2h)"
  printf 'master\tGET\t/v1/play/load/master.m3u8\tBearer %s\n' "$t" >> "$work/mix.tsv"
done
# URL delivery: the media playlists a mobile viewer's master points at.
mobile="$("$BIN" token --config "$work/playgate.toml" --sub mobile --tier mobile --ttl 2h)"
curl -fsS -H "Authorization: Bearer $mobile" "$master" \
  | grep "^http" | sed "s|^http://127.0.0.1:$PG_PORT||" \
  | while read -r path; do printf 'media\tGET\t%s\t\n' "$path"; done >> "$work/mix.tsv"
printf 'sign\tPOST\t/v1/sign/cookies\tBearer %s\t{"asset":"load","tier":"free"}\n' "$API_KEY" >> "$work/mix.tsv"
[ "$(grep -c '^media' "$work/mix.tsv")" -gt 0 ] || { echo "no URL-mode media playlists in the mobile master" >&2; exit 1; }
export MIX_FILE="$work/mix.tsv"

# One of each, to fail early with a clear message.
for kind in master media sign; do
  line="$(grep -m1 "^$kind" "$work/mix.tsv")"
  IFS=$'\t' read -r _ method path auth body <<<"$line"
  args=(-fsS -o /dev/null -X "$method")
  [ -n "$auth" ] && args+=(-H "Authorization: $auth")
  [ -n "$body" ] && args+=(-H "Content-Type: application/json" --data "$body")
  curl "${args[@]}" "http://127.0.0.1:$PG_PORT$path" || { echo "the $kind request fails" >&2; exit 1; }
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$PG_PID/status"; }
