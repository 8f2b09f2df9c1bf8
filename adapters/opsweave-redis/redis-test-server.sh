#!/usr/bin/env bash
# Starts (or stops) a throwaway Redis on loopback for the opsweave tests.
#
#   eval "$(adapters/opsweave-redis/redis-test-server.sh start)"   # sets the variables below
#   adapters/opsweave-redis/redis-test-server.sh stop              # stops it, removes its files
#
# The server is Debian's `redis-server` (installed with apt-get when missing and running as
# root). It listens on 127.0.0.1 on a free port, keeps nothing on disk (no RDB, no AOF) and
# runs in a fresh temporary directory. Stdout is only the exports; progress goes to stderr.
#
#   OPSWEAVE_TEST_REDIS_URL   redis://127.0.0.1:PORT/
#   OPSWEAVE_TEST_REDIS_DIR   the temporary directory (pid file, log); `stop` reads it
set -euo pipefail

PYTHON="${PYTHON:-python3}"

say() { echo "redis-test-server: $*" >&2; }

ensure_binary() {
    if command -v redis-server >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing redis-server with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2 || {
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
        }
    fi
    command -v redis-server >/dev/null || {
        say "redis-server not found: install it (Debian: apt-get install redis-server)"
        exit 1
    }
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    ensure_binary
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/opsweave-redis.XXXXXX")
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
    for _ in $(seq 1 100); do
        if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
            say "Redis $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/') on 127.0.0.1:$port, files in $dir"
            echo "export OPSWEAVE_TEST_REDIS_URL='redis://127.0.0.1:$port/'"
            echo "export OPSWEAVE_TEST_REDIS_DIR='$dir'"
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/redis.log" >&2 || true
    stop "$dir"
    exit 1
}

stop() {
    local dir="${1:-${OPSWEAVE_TEST_REDIS_DIR:-}}"
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
        say "nothing to stop (no OPSWEAVE_TEST_REDIS_DIR)"
        return 0
    fi
    if [ -f "$dir/redis.pid" ]; then
        local pid
        pid=$(cat "$dir/redis.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    case "$dir" in
    "${TMPDIR:-/tmp}"/opsweave-redis.*) rm -rf "$dir" ;;
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
