#!/usr/bin/env bash
# The gate end to end on loopback: Debian's nginx in front of an app (the bare
# actix-web baseline, examples/baseline.rs), once with the gate (the configuration
# `portcullis gate-config nginx` prints; portal cookie, 100 route policies) and once
# straight to the same app. Reports requests/s under load (wrk -c64) and the
# latency a single client sees (wrk -c1: p50, p99), and what the gate adds.
# nginx and wrk are installed if missing.
#
# Usage: scripts/gate-load.sh [seconds per run, default 10]   (ROUNDS, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${ROUNDS:-3}"

if ! command -v nginx >/dev/null 2>&1; then
    echo "==> installing nginx"
    apt-get update -qq && apt-get install -y -qq nginx >/dev/null
fi
# shellcheck source=lib/load_setup.sh
. scripts/lib/load_setup.sh

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
gated_port="$(free_port)"
straight_port="$(free_port)"
app="${baseline#http://}"
portcullis="${url#http://}"
mkdir -p "$work/nginx"
# The gate's configuration for nginx on $gated_port, as an operator would make it.
(cd "$work" && env DATABASE_PATH="$work/bench.db" BIND_ADDRESS="$portcullis" \
    GATE_PORTAL_URL="http://auth.load.test:$gated_port" GATE_HOSTS='*.load.test' \
    GATE_COOKIE_DOMAIN=load.test TRUSTED_PROXIES=127.0.0.1/32 \
    "$BIN" gate-config nginx --upstream "$app" > "$work/nginx/gate.conf")
sed -i -E "s/listen ([0-9]+);/listen 127.0.0.1:\1;/" "$work/nginx/gate.conf"
cat > "$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/nginx/gate.conf;
    # The same app, straight.
    server {
        listen 127.0.0.1:$straight_port;
        location / { proxy_pass http://$app; }
    }
}
NGINX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
trap 'kill "$nginx_pid" "${baseline_pids[@]}" 2>/dev/null; cleanup' EXIT
sleep 1

# The app (the baseline) answers /health; the gate allows app.load.test to the
# signed-in account.
gated=(-H "Host: app.load.test" -H "Accept: text/html" -H "Cookie: $cookie" "http://127.0.0.1:$gated_port/health")
straight=(-H "Host: app.load.test" -H "Accept: text/html" "http://127.0.0.1:$straight_port/health")
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Host: app.load.test" -H "Cookie: $cookie" "http://127.0.0.1:$gated_port/health")"
[ "$code" = 200 ] || { echo "nginx with the gate answered $code"; cat "$work/nginx/error.log"; exit 1; }
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Host: app.load.test" "http://127.0.0.1:$gated_port/health")"
[ "$code" = 401 ] || { echo "nginx let a signed-out request through ($code)"; exit 1; }

# run NAME CONNECTIONS wrk-arguments...: one wrk run, kept as $work/NAME.ROUND.
run() {
    local name="$1" connections="$2"; shift 2
    wrk -t"$([ "$connections" = 1 ] && echo 1 || echo 2)" -c"$connections" -d"${DURATION}s" --latency "$@" \
        > "$work/$name.$round"
    if grep -q 'Non-2xx' "$work/$name.$round"; then echo "    $name: $(grep 'Non-2xx' "$work/$name.$round")"; fi
}
for round in $(seq 1 "$ROUNDS"); do
    echo "==> round $round of $ROUNDS"
    run straight "64" "${straight[@]}"
    run gated "64" "${gated[@]}"
    run straight_one "1" "${straight[@]}"
    run gated_one "1" "${gated[@]}"
done

median() {  # NAME rps|p50|p99
    local name="$1" pick="$2"
    for round in $(seq 1 "$ROUNDS"); do
        case "$pick" in
            rps) awk '/^Requests\/sec:/ {print $2}' "$work/$name.$round" ;;
            *) awk -v q="${pick#p}%" '$1 == q {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$work/$name.$round" ;;
        esac
    done | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
echo
echo "nginx in front of the same app, median of $ROUNDS rounds (${DURATION}s each, loopback, $(nproc) cores):"
printf '| %-28s | %11s | %12s | %12s |\n' path "req/s (c64)" "p50 ms (c1)" "p99 ms (c1)"
printf '| %-28s | %11s | %12s | %12s |\n' --- --- --- ---
printf '| %-28s | %11.0f | %12s | %12s |\n' "nginx straight to the app" "$(median straight rps)" "$(median straight_one p50)" "$(median straight_one p99)"
printf '| %-28s | %11.0f | %12s | %12s |\n' "nginx with the gate" "$(median gated rps)" "$(median gated_one p50)" "$(median gated_one p99)"
awk -v a="$(median gated rps)" -v b="$(median straight rps)" \
    -v p50g="$(median gated_one p50)" -v p50s="$(median straight_one p50)" \
    -v p99g="$(median gated_one p99)" -v p99s="$(median straight_one p99)" \
    'BEGIN {printf "the gate: %.2f of the straight throughput; adds %.3f ms at p50 and %.3f ms at p99 (one client)\n", a / b, p50g - p50s, p99g - p99s}'
