#!/usr/bin/env bash
# Manifest engine speed next to m3u8-rs parsing and serialising the same
# input, both measured in this run on this machine. Prints times and
# ratios. Target (DESIGN.md): 1,200-segment media playlist signed in
# <= 150 us.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"

cargo bench --bench manifest -- --warm-up-time 2 --measurement-time 5 >/tmp/playgate-bench-manifest.log 2>&1 \
  || { cat /tmp/playgate-bench-manifest.log; exit 1; }

python3 - "$TARGET" <<'PY'
import json, sys
target = sys.argv[1]
def mean_us(name):
    with open(f"{target}/criterion/{name}/new/estimates.json") as fh:
        return json.load(fh)["mean"]["point_estimate"] / 1000.0
rows = [
    ("media_sign_1200_segments", "m3u8rs_parse_serialise_1200_segments"),
    ("media_sign_1200_segments_absolute", "m3u8rs_parse_serialise_1200_segments"),
    ("master_filter_rewrite_apple_advanced", "m3u8rs_parse_serialise_apple_advanced"),
]
print(f"{'benchmark':<40} {'mean':>10}   {'m3u8-rs parse+serialise':>24}   {'ratio':>6}")
for ours, ref in rows:
    a, b = mean_us(ours), mean_us(ref)
    print(f"{ours:<40} {a:>8.1f} us   {b:>21.1f} us   {a / b:>5.2f}x")
sign = mean_us("media_sign_1200_segments_absolute")
for name in ("media_sign_1200_segments_checked", "media_sign_1200_segments_split"):
    a = mean_us(name)
    print(f"{name:<40} {a:>8.1f} us   vs plain absolute {sign:>8.1f} us   {a / sign:>5.2f}x")
plan = mean_us("rendition_plan_flat_prefixes_3x1200")
print(f"{'rendition_plan_flat_prefixes_3x1200':<40} {plan:>8.1f} us   (once per version and cache.origin_fresh)")
print(f"target: 1,200 segments signed (absolute) <= 150 us: {'met' if sign <= 150 else 'NOT met'} ({sign:.1f} us)")
PY
