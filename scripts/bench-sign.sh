#!/usr/bin/env bash
# Cold signing throughput per core vs `openssl speed rsa2048`, both
# measured in this run on this machine. Prints signs/s and the ratio.
# Target (DESIGN.md): RSA ratio >= 0.9.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"

cargo bench --bench sign -- --warm-up-time 2 --measurement-time 5 >/tmp/playgate-bench-sign.log 2>&1 \
  || { cat /tmp/playgate-bench-sign.log; exit 1; }
openssl_line="$(openssl speed -seconds 3 rsa2048 2>/dev/null | grep -E '^rsa +2048')"
openssl_signs="$(awk '{print $(NF-1)}' <<<"$openssl_line")"

python3 - "$TARGET" "$openssl_signs" <<'PY'
import json, sys
target, openssl = sys.argv[1], float(sys.argv[2])
print(f"{'benchmark':<20} {'signs/s':>10} {'vs openssl rsa2048 sign/s':>26}")
for name in ["canned_rsa_sha1", "custom_rsa_sha1", "custom_ecdsa_p256"]:
    with open(f"{target}/criterion/{name}/new/estimates.json") as fh:
        ns = json.load(fh)["mean"]["point_estimate"]
    rate = 1e9 / ns
    print(f"{name:<20} {rate:>10.0f} {rate / openssl:>25.2f}x")
print(f"{'openssl speed rsa2048':<20} {openssl:>10.0f}")
PY
