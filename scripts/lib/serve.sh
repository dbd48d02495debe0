# A server on a free loopback port with fresh keys and its own temporary database,
# in the default configuration (log level included) but for what the caller sets.
# Source it with BIN set, then:
#   start_server VAR=value ...   # sets $url, $server_pid, $work; stopped on exit
set -euo pipefail

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {
    [ -f "$work/.env" ] || "$BIN" keygen > "$work/.env"
    (
        cd "$work"
        exec env BIND_ADDRESS=127.0.0.1:0 DATABASE_PATH="$work/bench.db" "$@" \
            "$BIN" serve > "$work/stdout" 2> "$work/stderr"
    ) &
    server_pid=$!
    url=""
    for _ in $(seq 1 100); do
        url="$(grep -o 'http://[0-9.:]*' "$work/stdout" 2>/dev/null | head -n1 || true)"
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { echo "server did not start"; cat "$work/stderr"; exit 1; }
}
