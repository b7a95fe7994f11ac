# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help deps demo stop test fmt lint layers cfn-lint supply-chain unit bench-sign bench-manifest

help:
	@echo "make demo   build, create dev keys, start playgate locally, print its URLs"
	@echo "make test   install test deps, fmt check, clippy, the whole test suite"
	@echo "make stop   stop the demo server"
	@echo "make bench-sign   signing benchmark vs openssl speed (slow: release build)"
	@echo "make bench-manifest   manifest engine benchmark vs m3u8-rs (slow: release build)"

deps:
	@bash scripts/ensure-deps.sh

demo: deps
	@bash scripts/demo.sh

stop:
	@if [ -f data/playgate.pid ]; then kill "$$(cat data/playgate.pid)" 2>/dev/null || true; rm -f data/playgate.pid; echo stopped; fi

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --all-targets -- -D warnings

# The module layering (docs/architecture.md): no import cycle, a pure engine.
layers:
	python3 scripts/check-layers.py --self-test
	python3 scripts/check-layers.py src

cfn-lint:
	cfn-lint deploy/cloudformation/playgate.yaml

# Advisories are checked where the RustSec database (GitHub) can be fetched:
# scripts/advisories.sh and the README's "Supply chain".
supply-chain:
	cargo deny --log-level error check bans licenses sources
	@bash scripts/advisories.sh
	cargo machete

# The two load-under-outage tests are kept out of the parallel run (they
# measure under load, so they run alone, after it): `--ignored` here.
unit:
	cargo test --lib --bins --tests
	cargo test --test contract -- --ignored --test-threads=1

test: deps fmt layers cfn-lint supply-chain lint unit

bench-sign: deps
	@bash scripts/bench-sign.sh

bench-manifest: deps
	@bash scripts/bench-manifest.sh
