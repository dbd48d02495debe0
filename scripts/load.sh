#!/usr/bin/env bash
# Load test on loopback with wrk (installed if missing), in the default
# configuration (default log level and its per-request line included), against the
# in-tree bare actix-web baseline (examples/baseline.rs) measured in the same run:
#
#   1. throughput, ROUNDS alternating rounds of every target, medians:
#        bare actix-web GET /health          (the framework's own limit)
#        ... answering with Portcullis's response headers (what the bytes cost)
#        Portcullis GET /health              (every middleware)
#        Portcullis GET /api/v1/auth/me      (token, session allow-list, limiter)
#        Portcullis GET /api/v1/documents/id (plus the policy decision and the read)
#        Portcullis forward-auth, allowed    (portal cookie, 100 route policies)
#        ... the same, a new path each time  (no assertion reuse: every one signed)
#      each as a ratio of the baseline and of Portcullis's own /health, with the
#      CPU time the server spent per request (from /proc: user + system, and
#      the two apart);
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

# shellcheck source=lib/load_setup.sh
. scripts/lib/load_setup.sh
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
hwm() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
rss_idle="$(rss)"

# cpu PID: CPU seconds the process has used so far, user and system.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f %.3f", $14 / hz, $15 / hz}' "/proc/$1/stat"; }
# run NAME wrk-arguments...: one wrk run; its output kept as $work/NAME.ROUND, the
# server's CPU µs per request as $work/NAME.ROUND.cpu (total, user, system).
run() {
    local name="$1" pid="$server_pid" before after; shift
    case "$name" in
        baseline) pid="${baseline_pids[0]}" ;;
        baseline_headers) pid="${baseline_pids[1]}" ;;
    esac
    before="$(cpu "$pid")"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" > "$work/$name.$round"
    after="$(cpu "$pid")"
    awk -v a="$before" -v b="$after" '/requests in/ {
        split(a, x, " "); split(b, y, " ")
        printf "%.2f %.2f %.2f\n", (y[1] + y[2] - x[1] - x[2]) * 1e6 / $1, (y[1] - x[1]) * 1e6 / $1, (y[2] - x[2]) * 1e6 / $1
    }' "$work/$name.$round" > "$work/$name.$round.cpu"
    if grep -q 'Non-2xx' "$work/$name.$round"; then
        echo "    $name: $(grep 'Non-2xx' "$work/$name.$round")"
    fi
}
targets=(baseline baseline_headers health me document gate gate_paths)
for round in $(seq 1 "$ROUNDS"); do
    echo "==> round $round of $ROUNDS"
    run baseline "$baseline/health"
    run baseline_headers "$baseline_headers/health"
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
            cpu) cat "$work/$name.$round.cpu" ;;
            user) awk '{print $2}' "$work/$name.$round.cpu" ;;
            system) awk '{print $3}' "$work/$name.$round.cpu" ;;
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
printf '| %-44s | %9s | %6s | %6s | %-11s | %-20s | %-10s |\n' target "req/s" "÷ bare" "÷ /health" "p50 ms" "CPU µs (user + sys)" "goal"
printf '| %-44s | %9s | %6s | %6s | %-11s | %-20s | %-10s |\n' --- --- --- --- --- --- ---
row() {  # name label goal
    printf '| %-44s | %9.0f | %6s | %9s | %-11s | %-20s | %-10s |\n' "$2" "${rps[$1]}" \
        "$(ratio "${rps[$1]}" "${rps[baseline]}")" "$(ratio "${rps[$1]}" "${rps[health]}")" \
        "$(median "$1" p50) (p99 $(median "$1" p99))" \
        "$(median "$1" cpu) ($(median "$1" user) + $(median "$1" system))" "$3"
}
row baseline "bare actix-web GET /health" "1"
row baseline_headers "... with Portcullis's response headers" "—"
row health "Portcullis GET /health" "≥ 0.85 bare"
row me "Portcullis GET /api/v1/auth/me" "≥ 0.70 bare"
row document "Portcullis GET /api/v1/documents/{id}" "≥ 0.50 bare"
row gate "forward-auth allowed (cookie, 100 policies)" "≥ 0.65 bare, ≥ 0.70 /health"
row gate_paths "... a new path each time (signed each time)" "—"
echo
echo "(CPU µs: the server's CPU time per request, median of the rounds, with its user"
echo " and system parts, each its own median; wrk spends its own on the same two cores.)"
echo "Memory (RSS): idle ${rss_idle} MB, peak under load ${rss_peak} MB, 2 s after ${rss_after} MB"
echo "/me during 50 logins:   p50 $(echo "$busy_out" | awk '$1 == "50%" {print $2}'), p99 $(echo "$busy_out" | awk '$1 == "99%" {print $2}')   (goal p99 < 20ms); $(echo "$busy_out" | awk '/^Requests\/sec:/ {print $2}') req/s"
echo "logins meanwhile:       $(awk '/^Requests\/sec:/ {print $2}' "$work/logins.txt") req/s, statuses: $(grep -E 'Non-2xx' "$work/logins.txt" || echo 'all 2xx')"
