# Shared shell helpers for scripts/: build and start sessiond on a free loopback port.
# Source it; it defines functions only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The binary to test: $SESSIOND_BIN, else a fresh release build.
sessiond_bin() {
    if [ -n "${SESSIOND_BIN:-}" ]; then
        echo "$SESSIOND_BIN"
        return
    fi
    (cd "$ROOT" && cargo build --release --quiet --bin sessiond) >&2 || return 1
    echo "$ROOT/target/release/sessiond"
}

# start_sessiond LOGFILE [ARGS...]: starts sessiond on a free port; sets SD_PID, SD_PORT.
start_sessiond() {
    local log="$1"
    shift
    local bin
    bin="$(sessiond_bin)" || return 1
    "$bin" --port 0 "$@" 2>"$log" &
    SD_PID=$!
    SD_PORT=""
    local deadline=$((SECONDS + 30))
    while [ -z "$SD_PORT" ]; do
        if [ $SECONDS -gt $deadline ] || ! kill -0 "$SD_PID" 2>/dev/null; then
            echo "sessiond did not start; log:" >&2
            cat "$log" >&2
            return 1
        fi
        SD_PORT="$(grep -o 'ready to accept connections addr=[0-9.]*:[0-9]*' "$log" | head -1 | sed 's/.*://')"
        [ -n "$SD_PORT" ] || sleep 0.05
    done
}

stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -gt $deadline ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
}
