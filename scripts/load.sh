#!/usr/bin/env bash
# Load on loopback, bounded in time, everything stopped on exit.
#
# 1. Authorised master requests/s: playgate (release build, local mode, a
#    real ffmpeg clip, viewer JWT on every request, cookies set on every
#    response) next to nginx serving the same filtered master as a static
#    file, with the same wrk settings in this run: ROUNDS (3) alternating
#    runs of DURATION (5s) each, medians, the ratio (target >= 0.8).
#    Then, for each server, what a request costs as the kernel counts it
#    (scripts/load/counts.sh): user and kernel CPU and context switches
#    per request over a 3 s run, and system calls per request under
#    `strace -c -f` in a separate 2 s pass.
# 2. The launch mix (scripts/load/mix.lua): 80% masters over TOKENS (1000)
#    viewer tokens and 3 tiers, 15% URL-mode media playlists, 5% cookie
#    signing, for MIX_DURATION (10s) flat out: requests/s, p50/p99/p999,
#    errors. Then the same mix at half that rate: p99 at half load.
# 3. The key endpoint under the launch mix: while the mix runs flat out,
#    two light probes (wrk -c2 each, at the same time) ask for a content
#    key (the free viewer's cookie) and for the master; their p50/p99 and
#    the ratio key/master (target <= 1.2).
# Env: ROUNDS, DURATION, MIX_DURATION, CONNECTIONS (64), THREADS (1),
# TOKENS, PROFILE=FILE (a perf profile of playgate during its run).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5s}"
MIX_DURATION="${MIX_DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"

source scripts/load/env.sh

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
print(f"ratio playgate/nginx: {pg[0] / ng[0]:.2f} (target >= 0.8)")
PY

# 1b. The cost of one request, counted.
source scripts/load/counts.sh
nginx_master="$(cat "$work/nginx.pid")"
nginx_pids="$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')"
COUNT_PIDS="$PG_PID" per_request playgate "$master" "Authorization: Bearer $token"
COUNT_PIDS="$nginx_pids" per_request nginx "http://127.0.0.1:$NGINX_PORT/master.m3u8"
COUNT_PIDS="$PG_PID" syscalls playgate "$master" "Authorization: Bearer $token"
COUNT_PIDS="$nginx_pids" syscalls nginx "http://127.0.0.1:$NGINX_PORT/master.m3u8"
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
def kv(name):
    out = {}
    for line in open(f"{work}/counts-{name}.txt"):
        for pair in line.split():
            k, v = pair.split("=", 1)
            out[k] = v
    return out
print()
print("per request (user/kernel CPU and context switches over a 3 s run; system calls under strace -c -f in a separate 2 s pass)")
print(f"{'server':<10} {'user us':>8} {'kernel us':>10} {'ctx sw':>7} {'syscalls':>9}   most frequent (per request)")
for name in ("playgate", "nginx"):
    r = kv(name)
    print(f"{name:<10} {float(r['user_us']):>8.2f} {float(r['kernel_us']):>10.2f} {float(r['ctx']):>7.3f} {float(r['syscalls']):>9.2f}   {r['top']}")
PY

# 2. The mix, flat out, then at half the rate it reached.
mix() { # name [delay ms per connection]
  CONN_DELAY_MS="${2:-}" timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$MIX_DURATION" \
    -s scripts/load/mix.lua "http://127.0.0.1:$PG_PORT" > "$work/mix-$1.txt"
  grep '^requests=' "$work/mix-$1.txt"
}
DURATION=2s mix warm >/dev/null
full="$(mix full)"
rps="$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$full")"
delay=$(( CONNECTIONS * 1000 * 2 / rps ))
half="$(mix half "$delay")"
python3 - "$full" "$half" "$CONNECTIONS" "$THREADS" "$MIX_DURATION" "$TOKENS" <<'PY'
import sys
full, half, conns, threads, duration, tokens = sys.argv[1:]
def kv(line):
    return {k: float(v) for k, v in (p.split("=") for p in line.split())}
f, h = kv(full), kv(half)
print()
print(f"launch mix: 80% masters ({tokens} tokens, free/standard/premium), 15% URL-mode media playlists, 5% cookie signing; wrk -t{threads} -c{conns} -d{duration}")
print(f"{'run':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p999 ms':>8} {'errors':>7}")
for name, r in (("flat out", f), ("half rate (fixed delay)", h)):
    errors = sum(v for k, v in r.items() if k.startswith("errors_"))
    print(f"{name:<28} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['p999_ms']:>8.2f} {errors:>7.0f}")
if any(v for k, v in {**f, **h}.items() if k.startswith("errors_")):
    sys.exit("some requests failed")
PY

# 3. Key endpoint vs master, both measured while the mix runs flat out.
probe_secs=$(( ${MIX_DURATION%s} - 2 ))
[ "$probe_secs" -ge 2 ] || probe_secs=2
mix keyload >/dev/null &
mix_pid=$!
sleep 1
timeout 120 wrk -t1 -c2 -d"${probe_secs}s" --latency -H "Cookie: $key_cookie" "$key_url" > "$work/probe-key.txt" &
key_probe=$!
timeout 120 wrk -t1 -c2 -d"${probe_secs}s" --latency -H "Authorization: Bearer $token" "$master" > "$work/probe-master.txt"
wait "$key_probe" "$mix_pid"
for f in probe-key probe-master; do
  if grep -q "Non-2xx" "$work/$f.txt"; then echo "$f: some responses were not 2xx:" >&2; cat "$work/$f.txt" >&2; exit 1; fi
done
python3 - "$work" "$probe_secs" <<'PY'
import re, sys
work, secs = sys.argv[1:]
def parse(name):
    text = open(f"{work}/probe-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, pct(50), pct(99)
k, m = parse("key"), parse("master")
print()
print(f"key endpoint vs master under the launch mix (flat out); probes wrk -t1 -c2 -d{secs}s each, at the same time")
print(f"{'probe':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
print(f"{'key (cookie, 16 bytes)':<34} {k[0]:>8.0f} {k[1]:>8.2f} {k[2]:>8.2f}")
print(f"{'master (JWT, free tier)':<34} {m[0]:>8.0f} {m[1]:>8.2f} {m[2]:>8.2f}")
print(f"ratio key/master: p50 {k[1] / m[1]:.2f}, p99 {k[2] / m[2]:.2f} (target <= 1.2)")
PY
