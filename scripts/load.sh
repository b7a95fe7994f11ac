#!/usr/bin/env bash
# Authorised master requests/s: playgate (release build, local mode, a real
# ffmpeg clip, viewer JWT on every request, cookies set on every response)
# next to nginx serving the same filtered master as a static file, both on
# loopback, measured in this run with the same wrk settings. Prints
# requests/s, p50/p99 and the ratio. Target (issue 7): ratio >= 0.7.
#
# Bounded: ROUNDS (3) alternating wrk runs per server of DURATION (5s)
# each; everything started here is stopped on exit. Env: ROUNDS,
# DURATION, CONNECTIONS (64), THREADS (1),
# PROFILE=FILE (a perf profile of playgate during its run).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
TARGET="${CARGO_TARGET_DIR:-target}"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "building playgate (release)…" >&2
cargo build --quiet --release --bin playgate
BIN="$TARGET/release/playgate"

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

"$BIN" keygen --out "$work/keys" >/dev/null
sed -e "s|^listen = .*|listen = \"127.0.0.1:$PG_PORT\"|" \
    -e "s|^public_url = .*|public_url = \"http://127.0.0.1:$PG_PORT\"|" \
    -e "s|^base_url = .*|base_url = \"http://127.0.0.1:$PG_PORT/cdn\"|" \
    -e "s|^root = .*|root = \"$work/data\"|" \
    -e "s|^sqlite_path = .*|sqlite_path = \"$work/data/playgate.db\"|" \
    -e "s|keys/dev/|$work/keys/|g" \
    config/local.toml > "$work/playgate.toml"
"$BIN" check-config --config "$work/playgate.toml" >/dev/null
bash scripts/make-clip.sh "$work/clip" 4
"$BIN" publish --config "$work/playgate.toml" --asset load "$work/clip" >/dev/null

"$BIN" serve --config "$work/playgate.toml" >"$work/playgate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PG_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
token="$("$BIN" token --config "$work/playgate.toml" --sub load --tier free --ttl 1h)"
master="http://127.0.0.1:$PG_PORT/v1/play/load/master.m3u8"

mkdir -p "$work/www"
chmod 755 "$work" "$work/www"  # nginx workers run unprivileged
curl -fsS -H "Authorization: Bearer $token" "$master" > "$work/www/master.m3u8"
chmod 644 "$work/www/master.m3u8"
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  types { application/vnd.apple.mpegurl m3u8; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/www;
    location / { add_header Cache-Control "private, no-store"; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$NGINX_PORT/master.m3u8" >/dev/null 2>&1 && break
  sleep 0.1
done

run_wrk() { # name url [header]
  local out="$work/wrk-$1.txt"
  if [ -n "${3:-}" ]; then
    timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$3" "$2" >"$out"
  else
    timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2" >"$out"
  fi
  if grep -q "Non-2xx" "$out"; then echo "$1: some responses were not 2xx:" >&2; cat "$out" >&2; exit 1; fi
}
# Warm both (caches, page cache), then measure.
DURATION=2s run_wrk warm-pg "$master" "Authorization: Bearer $token"
DURATION=2s run_wrk warm-nginx "http://127.0.0.1:$NGINX_PORT/master.m3u8"
if [ -n "${PROFILE:-}" ]; then  # PROFILE=out.data: perf profile of playgate under load
  perf record -F 999 -g -o "$PROFILE" -p "${pids[0]}" -- sleep 4 >/dev/null 2>&1 &
  perf_pid=$!
fi
# Alternate the two, ROUNDS times, so a burst of noise on this shared
# machine hits both; the report takes each side's median.
for round in $(seq 1 "$ROUNDS"); do
  run_wrk "playgate-$round" "$master" "Authorization: Bearer $token"
  [ -n "${PROFILE:-}" ] && [ "$round" = 1 ] && wait "$perf_pid"
  run_wrk "nginx-$round" "http://127.0.0.1:$NGINX_PORT/master.m3u8"
done

python3 - "$work" "$DURATION" "$CONNECTIONS" "$THREADS" "$ROUNDS" <<'PY'
import re, statistics, sys
work, duration, conns, threads, rounds = sys.argv[1:]
def parse(name):
    text = open(f"{work}/wrk-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, pct(50), pct(99)
def median(side):
    runs = [parse(f"{side}-{r}") for r in range(1, int(rounds) + 1)]
    return [statistics.median(col) for col in zip(*runs)], [r[0] for r in runs]
pg, pg_runs = median("playgate")
ng, ng_runs = median("nginx")
print(f"wrk -t{threads} -c{conns} -d{duration} x {rounds} alternating rounds, loopback, same filtered master (free tier); medians")
print(f"{'server':<34} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}   runs req/s")
print(f"{'playgate (JWT + filter + cookies)':<34} {pg[0]:>10.0f} {pg[1]:>8.2f} {pg[2]:>8.2f}   {' '.join(f'{r:.0f}' for r in pg_runs)}")
print(f"{'nginx (static file)':<34} {ng[0]:>10.0f} {ng[1]:>8.2f} {ng[2]:>8.2f}   {' '.join(f'{r:.0f}' for r in ng_runs)}")
print(f"ratio playgate/nginx: {pg[0] / ng[0]:.2f} (target >= 0.7)")
PY
