# Rekomi: the two commands are `make run` and `make test`.
.PHONY: run test lint fmt check-deps build release bench openapi

run:
	@scripts/run.sh

test:
	@scripts/test.sh

lint: check-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

check-deps:
	@scripts/check-deps.sh

fmt:
	cargo fmt --all

build:
	cargo build --workspace

release:
	cargo build --release -p rekomi-server

bench:
	@scripts/bench.sh

openapi:
	cargo build -q -p rekomi-server
	target/debug/rekomi-server openapi > docs/openapi.json
