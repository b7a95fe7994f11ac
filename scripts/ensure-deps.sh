#!/usr/bin/env bash
# Installs the system packages playgate's build, demo and tests need, only
# when something is missing. Idempotent; safe to run on every `make`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
have_pc openssl || need+=(libssl-dev)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
# Tests and the demo: ffmpeg makes clips and is a real HLS client; Debian's
# Chromium runs hls.js; node/npm install the player and the browser driver.
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# nginx: the round-robin in front of two replicas (tests/contract/replicas.rs).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done

# The conformance test runs the vectors' own check, which needs `cryptography`.
command -v python3 >/dev/null 2>&1 || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get update -qq; $SUDO apt-get install -y -qq python3; }
if ! python3 -c 'import cryptography' >/dev/null 2>&1; then
  echo "installing: python cryptography"
  python3 -m pip install --quiet cryptography 2>/dev/null || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-cryptography
  }
fi

# The moto server: S3 and DynamoDB on loopback for the AWS backends' contract tests.
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
  echo "installing: moto[server]"
  python3 -m pip install --quiet 'moto[server]'
fi

# botocore: the AWS service models the MediaConvert stand-in checks every
# CreateJob body against (moto brings it; this makes sure).
if ! python3 -c 'import botocore.session' >/dev/null 2>&1; then
  echo "installing: botocore"
  python3 -m pip install --quiet botocore
fi

# openapi-spec-validator: tests/api/openapi.rs validates /openapi.json with
# it (an independent OpenAPI 3.1 validator).
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "installing: openapi-spec-validator"
  python3 -m pip install --quiet 'openapi-spec-validator==0.9.0'
fi

# cfn-lint: `make test` lints deploy/cloudformation/ and the deploy test
# reads the template with its loader. Pinned.
if [ "$(cfn-lint --version 2>/dev/null)" != "cfn-lint 1.58.0" ]; then
  echo "installing: cfn-lint"
  python3 -m pip install --quiet 'cfn-lint==1.58.0'
fi

# Supply chain: cargo-deny (bans, licences, sources; deny.toml) and
# cargo-machete (unused dependencies), pinned, built from crates.io.
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny 0.20.2" ]; then
  echo "installing: cargo-deny (a minute or two)"
  cargo install --quiet --locked cargo-deny@0.20.2
fi
if [ "$(cargo machete --version 2>/dev/null)" != "0.9.2" ]; then
  echo "installing: cargo-machete"
  cargo install --quiet --locked cargo-machete@0.9.2
fi

# hls.js (served by the demo page) and playwright-core (the browser test's
# driver), pinned by web/package-lock.json.
if [ ! -f web/node_modules/hls.js/dist/hls.min.js ] || [ ! -d web/node_modules/playwright-core ] \
   || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "installing: web/ npm packages"
  npm ci --prefix web --no-audit --no-fund --loglevel=error
fi
