#!/usr/bin/env bash
# Soak: the launch mix (scripts/load/mix.lua) at a fixed rate for SOAK
# (600s): about half the rate the same mix reaches flat out, measured
# first (or RATE requests/s). Samples playgate's RSS every 10 s. Fails if
# any request errors, or if RSS grows by more than GROWTH_MIB (48) after
# the first minute: the caches are bounded (origin cache 32MiB, 10,000
# masters and signatures here), so memory must level off. Loopback only,
# bounded in time, everything stopped on exit.
# Env: SOAK, RATE, CONNECTIONS (64), THREADS (1), TOKENS, GROWTH_MIB.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK="${SOAK:-600}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
GROWTH_MIB="${GROWTH_MIB:-48}"
export PLAYGATE__CACHE__ORIGIN_MAX_BYTES=32MiB
export PLAYGATE__CACHE__MASTERS_MAX_ENTRIES=10000
export PLAYGATE__CACHE__SIGNATURES_MAX_ENTRIES=10000

source scripts/load/env.sh

rss_start="$(rss_kib)"
if [ -z "${RATE:-}" ]; then
  timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s scripts/load/mix.lua "http://127.0.0.1:$PG_PORT" > "$work/max.txt"
  max="$(sed -nE 's/.* rps=([0-9]+).*/\1/p' "$work/max.txt")"
  RATE=$(( max / 2 ))
fi
delay=$(( CONNECTIONS * 1000 / RATE ))
echo "soak: ${SOAK}s at about $RATE req/s ($CONNECTIONS connections, ${delay} ms apart), RSS every 10 s" >&2
( while kill -0 "$PG_PID" 2>/dev/null; do echo "$(date +%s) $(rss_kib)"; sleep 10; done ) > "$work/rss.txt" &
sampler=$!
pids+=("$sampler")
CONN_DELAY_MS="$delay" timeout $(( SOAK + 60 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK}s" --timeout 5s \
  -s scripts/load/mix.lua "http://127.0.0.1:$PG_PORT" > "$work/soak.txt"
kill "$sampler" 2>/dev/null || true
python3 - "$work/soak.txt" "$work/rss.txt" "$rss_start" "$GROWTH_MIB" "$RATE" "$SOAK" <<'PY'
import sys
soak, rss, start, growth, rate, secs = sys.argv[1:]
line = next(l for l in open(soak) if l.startswith("requests="))
r = {k: float(v) for k, v in (p.split("=") for p in line.split())}
samples = [tuple(map(int, l.split())) for l in open(rss) if len(l.split()) == 2]
t0 = samples[0][0]
after_minute = [kib for t, kib in samples if t - t0 >= 60]
mib = lambda k: k / 1024
base = after_minute[0] if after_minute else samples[-1][1]
peak = max(after_minute or [samples[-1][1]])
errors = sum(v for k, v in r.items() if k.startswith("errors_"))
print(f"soak: {secs} s of the launch mix at {rate} req/s target")
print(f"  served {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, p999 {r['p999_ms']:.2f} ms, errors {errors:.0f}")
print(f"  RSS: start {mib(int(start)):.1f} MiB, after 1 min {mib(base):.1f} MiB, end {mib(samples[-1][1]):.1f} MiB, peak after 1 min {mib(peak):.1f} MiB")
failed = []
if errors:
    failed.append(f"{errors:.0f} requests failed")
if mib(peak - base) > float(growth):
    failed.append(f"RSS grew {mib(peak - base):.1f} MiB after the first minute (bound {growth} MiB)")
if failed:
    sys.exit("soak failed: " + "; ".join(failed))
print("soak passed")
PY
