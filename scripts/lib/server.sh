# Shared by the load scripts: wrk, a release build, and a server on a free loopback
# port with fresh keys and its own temporary database (BIN overrides the build).
# Source it, then:
#   start_server VAR=value ...   # sets $url, $server_pid, $work; stopped on exit
set -euo pipefail

if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# BIN=path/to/portcullis measures another build (e.g. an older release, side by side).
if [ -z "${BIN:-}" ]; then
    echo "==> building the release binary"
    cargo build --release --quiet
    BIN="$PWD/target/release/portcullis"
fi

# shellcheck source=serve.sh
. scripts/lib/serve.sh
