# Shared by the load scripts: wrk, a release build, and a server on a free loopback
# port with fresh keys and its own temporary database. Source it, then:
#   start_server VAR=value ...   # sets $url, $server_pid, $work; stopped on exit
set -euo pipefail

if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
echo "==> building the release binary"
cargo build --release --quiet
BIN="$PWD/target/release/portcullis"

# shellcheck source=serve.sh
. scripts/lib/serve.sh
