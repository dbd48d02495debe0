#!/usr/bin/env bash
# Spray benchmark: 1,000,000 distinct client IPs (through a trusted proxy's
# X-Forwarded-For) against POST /api/v1/auth/login. Reports the server's RSS before
# and after, what the spray got back, and whether legitimate users are still served:
# a signed-in user's /me during and after, and a fresh login afterwards.
# Usage: scripts/spray.sh [requests, default 1000000]
# (CONNECTIONS, default 512, and SPRAY_SECONDS, a time limit, default 240, tune wrk.)
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL="${1:-1000000}"

# shellcheck source=lib/server.sh
. scripts/lib/server.sh
# Defaults everywhere, except: loopback is the trusted proxy that sprays addresses,
# and a login that finds every hashing slot busy is turned away after 50 ms instead of
# 2 s, so the first (allowed) attempt of each new address costs the spray little time.
start_server LOG_LEVEL=error TRUSTED_PROXIES=127.0.0.1 PASSWORD_HASH_QUEUE_TIMEOUT_MS=50
rss() { awk '/^VmRSS:/ {printf "%.1f MB", $2 / 1024}' "/proc/$server_pid/status"; }

password="orbit lantern velvet cactus 42"
login() {  # login EMAIL FROM-IP
    curl -s -o /dev/null -w '%{http_code}' -X POST "$url/api/v1/auth/login" \
        -H 'content-type: application/json' -H "x-forwarded-for: $2" \
        -d "{\"email\":\"$1\",\"password\":\"$password\"}"
}
curl -sf -o /dev/null -X POST "$url/api/v1/auth/register" -H 'content-type: application/json' \
    -H 'x-forwarded-for: 192.0.2.10' -d "{\"email\":\"regular@example.org\",\"password\":\"$password\"}"
token="$(curl -sf -X POST "$url/api/v1/auth/login" -H 'content-type: application/json' \
    -H 'x-forwarded-for: 192.0.2.10' \
    -d "{\"email\":\"regular@example.org\",\"password\":\"$password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
rss_before="$(rss)"

per_thread=$((TOTAL / 2))
cat > "$work/spray.lua" <<LUA
-- setup() runs in the main Lua state and gives each thread its own range through
-- thread:set, which sets a *global* in that thread's state: request() must read
-- that global (first_address), not a chunk-level local of the same name, or every
-- thread would start at 0 and send the same addresses.
local next_range = 0
local threads = {}
function setup(thread)
    thread:set("first_address", next_range)
    thread:set("sent", 0)
    table.insert(threads, thread)
    next_range = next_range + $per_thread
end
function request()
    local n = first_address + sent
    sent = sent + 1
    -- wrk runs LuaJIT (Lua 5.1): no bit operators, so arithmetic.
    local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    return wrk.format("POST", "/api/v1/auth/login",
        {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip},
        '{"email":"user' .. n .. '@example.org","password":"guess-' .. n .. '"}')
end
function response(status)
    if sent >= $per_thread then wrk.thread:stop() end
end
function done(summary)
    for _, thread in ipairs(threads) do
        local first = thread:get("first_address")
        io.write(string.format("spray thread: addresses %d to %d\\n", first, first + thread:get("sent") - 1))
    end
    io.write(string.format("spray: %d requests, each from its own address\\n", summary.requests))
end
LUA
echo "==> spraying $TOTAL distinct addresses at $url/api/v1/auth/login"
start=$(date +%s)
wrk -t2 -c"${CONNECTIONS:-512}" -d"${SPRAY_SECONDS:-240}s" -s "$work/spray.lua" "$url/api/v1/auth/login" > "$work/spray.txt" &
spray_pid=$!
sleep 5
me_during="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/v1/auth/me")"
wait "$spray_pid"
elapsed=$(( $(date +%s) - start ))
rss_after="$(rss)"
me_after="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/v1/auth/me")"
# A minute later the sweep has dropped the spray's refilled buckets: a newcomer
# gets a bucket of its own again.
sleep 65
fresh_login="$(login regular@example.org 198.51.100.200)"
rss_end="$(rss)"

echo
grep -E "spray|Requests/sec|Non-2xx" "$work/spray.txt" || true
echo "spray duration:            ${elapsed}s"
echo "RSS before / after spray:  $rss_before / $rss_after (a minute later: $rss_end)   (goal < 150 MB)"
echo "legitimate user /me:       during $me_during, after $me_after"
echo "fresh login after sweep:   $fresh_login"
