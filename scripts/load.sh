#!/usr/bin/env bash
# Load test on loopback with wrk (installed if missing):
#   1. GET /api/v1/auth/me rps as a ratio of GET /health rps, same run, same settings;
#   2. GET /api/v1/documents/{id} rps (a database read plus a policy decision) as a
#      ratio of GET /health rps, same run;
#   3. GET /api/v1/auth/me latency (p50/p99) while 50 concurrent logins hammer argon2.
# Usage: scripts/load.sh [seconds per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${CONNECTIONS:-32}"

# shellcheck source=lib/server.sh
. scripts/lib/server.sh
# This measures throughput and latency, not limiting: one user and one address send
# everything, so the per-user, anonymous and login limits are lifted (the limiters
# still run on every request).
start_server DEFAULT_RATE_LIMIT_CALLS=1000000 DEFAULT_RATE_LIMIT_PERIOD=1 \
    RATE_LIMIT_LOGIN_IP=1000000/1 RATE_LIMIT_LOGIN_ACCOUNT=1000000/1 RATE_LIMIT_ANONYMOUS=1000000/1
echo "==> server at $url ($(nproc) cores, wrk -c $CONNECTIONS, ${DURATION}s per phase)"

email="load@example.org"
password="orbit lantern velvet cactus 42"
curl -sf -o /dev/null -X POST "$url/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}"
token="$(curl -sf -X POST "$url/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"

doc_id="$(curl -sf -X POST "$url/api/v1/documents" -H 'content-type: application/json' \
    -H "Authorization: Bearer $token" \
    -d '{"title":"Load","body":"x","classification":"internal","attributes":{"department":"engineering"}}' \
    | sed -E 's/.*"id":"([^"]+)".*/\1/')"

rps() { awk '/^Requests\/sec:/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }
p50() { awk '$1 == "50%" {print $2}'; }

echo "==> phase 1: GET /health"
health_out="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url/health")"
echo "==> phase 1: GET /api/v1/auth/me"
me_out="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$url/api/v1/auth/me")"
echo "==> phase 1: GET /api/v1/documents/{id}"
doc_out="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$url/api/v1/documents/$doc_id")"
health_rps="$(echo "$health_out" | rps)"
me_rps="$(echo "$me_out" | rps)"
doc_rps="$(echo "$doc_out" | rps)"
ratio="$(awk -v a="$me_rps" -v b="$health_rps" 'BEGIN {printf "%.2f", a / b}')"
doc_ratio="$(awk -v a="$doc_rps" -v b="$health_rps" 'BEGIN {printf "%.2f", a / b}')"

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
LUA
echo "==> phase 2: /api/v1/auth/me while 50 concurrent logins run"
wrk -t1 -c50 -d"$((DURATION + 2))s" -s "$work/login.lua" "$url/api/v1/auth/login" > "$work/logins.txt" &
logins_pid=$!
sleep 1
busy_out="$(wrk -t1 -c8 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$url/api/v1/auth/me")"
wait "$logins_pid"

echo
echo "GET /health:            $health_rps req/s (p99 $(echo "$health_out" | p99))"
echo "GET /api/v1/auth/me:    $me_rps req/s (p99 $(echo "$me_out" | p99))"
echo "ratio /me : /health:    $ratio   (goal >= 0.70)"
echo "GET /api/v1/documents/{id}: $doc_rps req/s (p99 $(echo "$doc_out" | p99)); statuses: $(echo "$doc_out" | grep -E 'Non-2xx' || echo 'all 2xx')"
echo "ratio document : /health: $doc_ratio   (goal >= 0.50)"
echo "/me during 50 logins:   p50 $(echo "$busy_out" | p50), p99 $(echo "$busy_out" | p99)   (goal p99 < 20ms); $(echo "$busy_out" | rps) req/s"
echo "logins meanwhile:       $(awk '/^Requests\/sec:/ {print $2}' "$work/logins.txt") req/s, statuses: $(grep -E 'Non-2xx' "$work/logins.txt" || echo 'all 2xx')"
