#!/usr/bin/env bash
# Builds opsweave and runs the demo on the embedded default (a fresh ./opsweave-demo.db).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"
cargo build --release -p opsweave-cli
"$CARGO_TARGET_DIR/release/opsweave" demo "$@"
