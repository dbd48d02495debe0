#!/usr/bin/env bash
# Load test on loopback with wrk (installed if missing), in the default
# configuration (default log level and its per-request line included), against the
# in-tree bare actix-web baseline (examples/baseline.rs) measured in the same run:
#
#   1. throughput, ROUNDS alternating rounds of every target, medians:
#        bare actix-web GET /health          (the framework's own limit)
#        Portcullis GET /health              (every middleware)
#        Portcullis GET /api/v1/auth/me      (token, session allow-list, limiter)
#        Portcullis GET /api/v1/documents/id (plus the policy decision and the read)
#        Portcullis forward-auth, allowed    (portal cookie, 100 route policies)
#        ... the same, a new path each time  (no assertion reuse: every one signed)
#      each as a ratio of the baseline and of Portcullis's own /health;
#   2. memory: RSS idle, at its peak under the load, and after it;
#   3. GET /api/v1/auth/me latency (p50/p99) while 50 concurrent logins hammer argon2.
#
# Usage: scripts/load.sh [seconds per run, default 10]
#   ROUNDS (3), CONNECTIONS (64), THREADS (2) tune wrk; BIN measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"

# shellcheck source=lib/server.sh
. scripts/lib/server.sh
echo "==> building the baseline (examples/baseline.rs)"
cargo build --release --quiet --example baseline
"$PWD/target/release/examples/baseline" > "$work/baseline.out" &
baseline_pid=$!
trap 'kill "$baseline_pid" 2>/dev/null; cleanup' EXIT
baseline=""
for _ in $(seq 1 100); do
    baseline="$(grep -o 'http://[0-9.:]*' "$work/baseline.out" 2>/dev/null | head -n1 || true)"
    [ -n "$baseline" ] && break
    sleep 0.1
done
[ -n "$baseline" ] || { echo "the baseline did not start"; exit 1; }

# One administrator, created before the server starts, imports the route policies.
"$BIN" keygen > "$work/.env"
admin="admin@load.test"
password="orbit lantern velvet cactus 42"
(cd "$work" && printf '%s\n' "$password" | env DATABASE_PATH="$work/bench.db" \
    "$BIN" create-admin --email "$admin" --password-stdin > /dev/null)

# This measures throughput and latency, not limiting: one user and one address send
# everything, so the per-user, anonymous, login and gate limits are lifted (every
# limiter still runs on every request). The gate is on for *.load.test, asked by
# loopback as its trusted proxy.
start_server DEFAULT_RATE_LIMIT_CALLS=1000000 DEFAULT_RATE_LIMIT_PERIOD=1 \
    RATE_LIMIT_LOGIN_IP=1000000/1 RATE_LIMIT_LOGIN_ACCOUNT=1000000/1 RATE_LIMIT_ANONYMOUS=1000000/1 \
    RATE_LIMIT_GATE_USER=1000000/1 RATE_LIMIT_GATE_IP=1000000/1 \
    GATE_PORTAL_URL=http://auth.load.test GATE_HOSTS='*.load.test' GATE_COOKIE_DOMAIN=load.test \
    TRUSTED_PROXIES=127.0.0.1/32
echo "==> Portcullis at $url, baseline at $baseline ($(nproc) cores; wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s a run, $ROUNDS rounds)"

json() { curl -sf -H 'content-type: application/json' "$@"; }
field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }

email="load@example.org"
json -o /dev/null -X POST "$url/api/v1/auth/register" -d "{\"email\":\"$email\",\"password\":\"$password\"}"
token="$(json -X POST "$url/api/v1/auth/login" -d "{\"email\":\"$email\",\"password\":\"$password\"}" | field access_token)"
admin_token="$(json -X POST "$url/api/v1/auth/login" -d "{\"email\":\"$admin\",\"password\":\"$password\"}" | field access_token)"
doc_id="$(json -X POST "$url/api/v1/documents" -H "Authorization: Bearer $token" \
    -d '{"title":"Load","body":"x","classification":"internal","attributes":{"department":"engineering"}}' | field id)"

# 100 route policies, every one applicable to a GET on a route (so every one is
# evaluated on each decision): 49 allows and 50 denies for other hosts and paths,
# and the one that lets signed-in accounts into app.load.test.
python3 - > "$work/policies.json" <<'PY'
import json
policies = [{
    "name": "signed-in accounts use app.load.test",
    "effect": "allow", "resource_type": "route", "actions": ["get", "post"],
    "conditions": {"attribute": "resource.attributes.host", "operator": "eq", "value": "app.load.test"},
}]
for i in range(99):
    if i % 2:
        policies.append({
            "name": f"app{i} admin area is closed",
            "effect": "deny", "resource_type": "route", "actions": ["*"],
            "conditions": {"all": [
                {"attribute": "resource.attributes.host", "operator": "eq", "value": f"app{i}.load.test"},
                {"attribute": "resource.attributes.path", "operator": "starts_with", "value": "/admin"},
            ]},
        })
    else:
        policies.append({
            "name": f"department {i} uses app{i}",
            "effect": "allow", "resource_type": "route", "actions": ["get"],
            "conditions": {"all": [
                {"attribute": "resource.attributes.host", "operator": "eq", "value": f"app{i}.load.test"},
                {"attribute": "subject.attributes.department", "operator": "eq", "value": f"dept{i}"},
            ]},
        })
print(json.dumps(policies))
PY
json -o /dev/null -X POST "$url/api/v1/admin/policies/import" -H "Authorization: Bearer $admin_token" \
    --data-binary "@$work/policies.json"
cookie="$(curl -sf -o /dev/null -D - -X POST "$url/gate/login" \
    --data-urlencode "email=$email" --data-urlencode "password=$password" --data-urlencode "rd=" |
    tr -d '\r' | sed -nE 's/^set-cookie: (portcullis_gate=[^;]+);.*/\1/ip')"
[ -n "$cookie" ] || { echo "the portal sign-in failed"; exit 1; }
gate=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: app.load.test"
      -H "X-Forwarded-For: 198.51.100.7" -H "Accept: text/html" -H "Cookie: $cookie")
status="$(curl -s -o /dev/null -w '%{http_code}' "${gate[@]}" -H "X-Forwarded-Uri: /dashboard" "$url/api/v1/gate/forward-auth")"
[ "$status" = 200 ] || { echo "the gate did not allow the load's request ($status)"; exit 1; }
cat > "$work/paths.lua" <<'LUA'
-- A new path for every request, so no assertion is reused: each one is signed.
local n = 0
request = function()
    n = n + 1
    wrk.headers["X-Forwarded-Uri"] = "/page/" .. n
    return wrk.format(nil, "/api/v1/gate/forward-auth")
end
LUA

rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
hwm() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
rss_idle="$(rss)"

# run NAME wrk-arguments...: one wrk run; its output kept as $work/NAME.ROUND.
run() {
    local name="$1"; shift
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" > "$work/$name.$round"
    if grep -q 'Non-2xx' "$work/$name.$round"; then
        echo "    $name: $(grep 'Non-2xx' "$work/$name.$round")"
    fi
}
targets=(baseline health me document gate gate_paths)
for round in $(seq 1 "$ROUNDS"); do
    echo "==> round $round of $ROUNDS"
    run baseline "$baseline/health"
    run health "$url/health"
    run me -H "Authorization: Bearer $token" "$url/api/v1/auth/me"
    run document -H "Authorization: Bearer $token" "$url/api/v1/documents/$doc_id"
    run gate "${gate[@]}" -H "X-Forwarded-Uri: /dashboard" "$url/api/v1/gate/forward-auth"
    run gate_paths "${gate[@]}" -s "$work/paths.lua" "$url"
done
rss_peak="$(hwm)"
sleep 2
rss_after="$(rss)"

# median NAME FIELD: the median over the rounds of a wrk figure.
median() {
    local name="$1" pick="$2"
    for round in $(seq 1 "$ROUNDS"); do
        case "$pick" in
            rps) awk '/^Requests\/sec:/ {print $2}' "$work/$name.$round" ;;
            p50|p99) awk -v q="${pick#p}%" '$1 == q {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$work/$name.$round" ;;
        esac
    done | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
declare -A rps
for name in "${targets[@]}"; do rps[$name]="$(median "$name" rps)"; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "==> phase 2: /api/v1/auth/me while 50 concurrent logins run"
cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
LUA
wrk -t1 -c50 -d"$((DURATION + 2))s" -s "$work/login.lua" "$url/api/v1/auth/login" > "$work/logins.txt" &
logins_pid=$!
sleep 1
busy_out="$(wrk -t1 -c8 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$url/api/v1/auth/me")"
wait "$logins_pid"

echo
echo "Throughput, median of $ROUNDS rounds (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback, $(nproc) cores):"
printf '| %-44s | %9s | %6s | %6s | %-11s | %-10s |\n' target "req/s" "÷ bare" "÷ /health" "p50 ms" "goal"
printf '| %-44s | %9s | %6s | %6s | %-11s | %-10s |\n' --- --- --- --- --- ---
row() {  # name label goal
    printf '| %-44s | %9.0f | %6s | %9s | %-11s | %-10s |\n' "$2" "${rps[$1]}" \
        "$(ratio "${rps[$1]}" "${rps[baseline]}")" "$(ratio "${rps[$1]}" "${rps[health]}")" \
        "$(median "$1" p50) (p99 $(median "$1" p99))" "$3"
}
row baseline "bare actix-web GET /health" "1"
row health "Portcullis GET /health" "≥ 0.85 bare"
row me "Portcullis GET /api/v1/auth/me" "≥ 0.70 bare"
row document "Portcullis GET /api/v1/documents/{id}" "≥ 0.50 bare"
row gate "forward-auth allowed (cookie, 100 policies)" "≥ 0.65 bare, ≥ 0.70 /health"
row gate_paths "... a new path each time (signed each time)" "—"
echo
echo "Memory (RSS): idle ${rss_idle} MB, peak under load ${rss_peak} MB, 2 s after ${rss_after} MB"
echo "/me during 50 logins:   p50 $(echo "$busy_out" | awk '$1 == "50%" {print $2}'), p99 $(echo "$busy_out" | awk '$1 == "99%" {print $2}')   (goal p99 < 20ms); $(echo "$busy_out" | awk '/^Requests\/sec:/ {print $2}') req/s"
echo "logins meanwhile:       $(awk '/^Requests\/sec:/ {print $2}' "$work/logins.txt") req/s, statuses: $(grep -E 'Non-2xx' "$work/logins.txt" || echo 'all 2xx')"
