# Sourced by scripts/load.sh: what a server spends per request, counted
# from the kernel's side for a fixed run of requests.
#   per_request NAME URL [HEADER]   wrk -c$CONNECTIONS for COUNT_DURATION (3s)
#       against URL; CPU (user, kernel) from /proc/PID/stat and context
#       switches from /proc/PID/task/*/status of $COUNT_PIDS before and
#       after, each divided by the requests wrk completed;
#   syscalls NAME URL [HEADER]      a separate short pass (wrk -c16 for
#       STRACE_DURATION, 2s) under `strace -c -f` of $COUNT_PIDS: system
#       calls per request, and the three most frequent. strace slows the
#       server, so this pass is for counts, never for rates.
# Writes $work/counts-NAME.txt as key=value.
COUNT_DURATION="${COUNT_DURATION:-3s}"
STRACE_DURATION="${STRACE_DURATION:-2s}"
TICKS="$(getconf CLK_TCK)"

# user kernel ctx (ticks, ticks, switches) summed over the PIDs given.
proc_totals() {
  local u=0 s=0 c=0 p t
  for p in "$@"; do
    # Fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
    read -r pu ps < <(sed -E 's/^.*\) //' "/proc/$p/stat" | awk '{print $12, $13}')
    u=$(( u + pu )); s=$(( s + ps ))
    for t in /proc/"$p"/task/*/status; do
      c=$(( c + $(awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}' "$t" 2>/dev/null || echo 0) ))
    done
  done
  echo "$u $s $c"
}

requests_of() { sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$1"; }

per_request() { # name url [header]
  local name="$1" url="$2" out="$work/count-$1.txt"
  local -a h=()
  [ -n "${3:-}" ] && h=(-H "$3")
  read -r u0 s0 c0 < <(proc_totals $COUNT_PIDS)
  timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$COUNT_DURATION" "${h[@]}" "$url" > "$out"
  read -r u1 s1 c1 < <(proc_totals $COUNT_PIDS)
  local n; n="$(requests_of "$out")"
  python3 - "$n" "$u0" "$u1" "$s0" "$s1" "$c0" "$c1" "$TICKS" >> "$work/counts-$name.txt" <<'PY'
import sys
n, u0, u1, s0, s1, c0, c1, hz = map(int, sys.argv[1:])
us = 1e6 / hz
print(f"requests={n} user_us={(u1 - u0) * us / n:.2f} kernel_us={(s1 - s0) * us / n:.2f} ctx={(c1 - c0) / n:.3f}")
PY
}

syscalls() { # name url [header]
  local name="$1" url="$2" trace="$work/strace-$1.txt" out="$work/strace-wrk-$1.txt"
  local -a h=() attach=()
  [ -n "${3:-}" ] && h=(-H "$3")
  for p in $COUNT_PIDS; do attach+=(-p "$p"); done
  strace -c -f -q -o "$trace" "${attach[@]}" &
  local st=$!
  sleep 1
  timeout 60 wrk -t1 -c16 -d"$STRACE_DURATION" "${h[@]}" "$url" > "$out"
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  local n; n="$(requests_of "$out")"
  python3 - "$n" "$trace" >> "$work/counts-$name.txt" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
rows = []
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0].replace(".", "", 1).isdigit() and f[-1] != "total":
        rows.append((int(f[3]), f[-1]))
total = sum(c for c, _ in rows)
top = ",".join(f"{name}:{c / n:.2f}" for c, name in sorted(rows, reverse=True)[:3])
print(f"strace_requests={n} syscalls={total / n:.2f} top={top}")
PY
}
