# Shared by scripts/load.sh and scripts/profile.sh: starts the bare actix-web
# baseline (examples/baseline.rs, $baseline; with Portcullis's response headers,
# $baseline_headers) and Portcullis in its default
# configuration ($url, $server_pid) with the gate on for *.load.test, and seeds
# what the targets ask for: a user's access token ($token), a document ($doc_id),
# 100 route policies, a portal sign-in ($cookie) and the proxy's headers ($gate).
# Source it from the repository root.
set -euo pipefail

# shellcheck source=server.sh
. scripts/lib/server.sh
if [ -z "${BASELINE_BIN:-}" ]; then
    echo "==> building the baseline (examples/baseline.rs)"
    cargo build --release --quiet --example baseline
    BASELINE_BIN="$PWD/target/release/examples/baseline"
fi
# start_baseline NAME [ARGS]: a baseline server; sets $NAME to its URL.
baseline_pids=()
start_baseline() {
    local name="$1" found=""; shift
    "$BASELINE_BIN" "$@" > "$work/$name.out" &
    baseline_pids+=($!)
    for _ in $(seq 1 100); do
        found="$(grep -o 'http://[0-9.:]*' "$work/$name.out" 2>/dev/null | head -n1 || true)"
        [ -n "$found" ] && break
        sleep 0.1
    done
    [ -n "$found" ] || { echo "the baseline did not start"; exit 1; }
    printf -v "$name" '%s' "$found"
}
trap 'kill "${baseline_pids[@]}" 2>/dev/null; cleanup' EXIT
start_baseline baseline
# The same, answering with every header a Portcullis response carries.
start_baseline baseline_headers --with-portcullis-headers

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
echo "==> Portcullis at $url, baseline at $baseline ($(nproc) cores)"

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
print(json.dumps({"policies": policies}))
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

