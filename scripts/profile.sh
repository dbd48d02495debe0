#!/usr/bin/env bash
# Where a request's time goes: perf samples the server (cpu-clock, call graphs by
# frame pointer) while wrk drives one target, as scripts/load.sh does, and the
# report lists the functions with the largest share of the server's CPU time,
# with the CPU time per request. linux-perf is installed if missing.
#
# Usage: scripts/profile.sh TARGET [seconds, default 10]
#   TARGET: health | me | document | gate
# The profiling build (symbols, frame pointers) is made unless BIN names one:
#   RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/fp \
#       cargo build --profile profiling --bin portcullis --example baseline
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${1:?usage: scripts/profile.sh health|me|document|gate [seconds]}"
DURATION="${2:-10}"
CONNECTIONS="${CONNECTIONS:-64}"

if ! command -v perf >/dev/null 2>&1; then
    echo "==> installing linux-perf"
    apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null
fi
if [ -z "${BIN:-}" ]; then
    echo "==> building the profiling binaries (frame pointers, line tables)"
    RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/fp \
        cargo build --quiet --profile profiling --bin portcullis --example baseline
    BIN="$PWD/target/fp/profiling/portcullis"
    BASELINE_BIN="$PWD/target/fp/profiling/examples/baseline"
fi

# shellcheck source=lib/load_setup.sh
. scripts/lib/load_setup.sh

case "$TARGET" in
    health) args=("$url/health") ;;
    me) args=(-H "Authorization: Bearer $token" "$url/api/v1/auth/me") ;;
    document) args=(-H "Authorization: Bearer $token" "$url/api/v1/documents/$doc_id") ;;
    gate) args=("${gate[@]}" -H "X-Forwarded-Uri: /dashboard" "$url/api/v1/gate/forward-auth") ;;
    *) echo "unknown target $TARGET"; exit 2 ;;
esac

# CPU seconds (user + system) the server has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$server_pid/stat"; }
echo "==> warming up, then profiling $TARGET for ${DURATION}s"
wrk -t2 -c"$CONNECTIONS" -d2s "${args[@]}" > /dev/null
cpu_before="$(cpu)"
perf record -F 499 -g -p "$server_pid" -o "${PERF_DATA:-$work/perf.data}" -- sleep "$DURATION" 2> /dev/null &
perf_pid=$!
out="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "${args[@]}")"
wait "$perf_pid"
cpu_after="$(cpu)"
requests="$(echo "$out" | awk '/requests in/ {print $1}')"
echo
echo "$TARGET: $(echo "$out" | awk '/^Requests\/sec:/ {print $2}') req/s; server CPU $(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$requests" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}') µs per request"
echo
echo "Largest shares of the server's CPU time, inclusive of callees (children):"
perf report -i "${PERF_DATA:-$work/perf.data}" --children --stdio --no-demangle --percent-limit 2 \
    --sort symbol -g none 2> /dev/null | grep -E '^ +[0-9]' | sed -E 's/\[[.k]\] //' |
    c++filt | cut -c1-160 | head -n "${TOP:-60}"
