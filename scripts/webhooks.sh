#!/usr/bin/env bash
# Webhook delivery latency beside a hanging receiver, on loopback:
#   one account's webhook points at a receiver that never answers and has 300
#   deliveries queued; then another account's healthy webhook gets 120 events, one
#   every 10 ms. Reported: the healthy deliveries' latency from queueing (the 202
#   of POST /webhooks/{id}/test) to arrival, p50 / p99 / max, and how many requests
#   the hanging receiver held open at once.
# Usage: scripts/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/server.sh
. scripts/lib/server.sh
start_server DEFAULT_RATE_LIMIT_CALLS=1000000 DEFAULT_RATE_LIMIT_PERIOD=1 \
    RATE_LIMIT_REGISTER_IP=1000/1 RATE_LIMIT_LOGIN_IP=1000/1 \
    WEBHOOK_ALLOWED_PRIVATE_NETWORKS=127.0.0.0/8
echo "==> server at $url ($(nproc) cores)"

python3 - "$url" <<'PY'
import http.server, json, socketserver, statistics, sys, threading, time, urllib.request

base = sys.argv[1]
arrivals, open_now, most_open = {}, [0], [0]
lock = threading.Lock()

class Hanging(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        with lock:
            open_now[0] += 1
            most_open[0] = max(most_open[0], open_now[0])
        time.sleep(60)  # past the 15 s delivery timeout

    def log_message(self, *args):
        pass

class Healthy(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            arrivals[self.headers["webhook-id"]] = time.monotonic()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

def serve(handler):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"

def call(path, body=None, token=None):
    request = urllib.request.Request(base + path, method="POST",
                                     data=json.dumps(body or {}).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")

def account(email):
    password = "orbit lantern velvet cactus 42"
    call("/api/v1/auth/register", {"email": email, "password": password})
    return call("/api/v1/auth/login", {"email": email, "password": password})["access_token"]

stalled, fine = account("stalled@example.org"), account("fine@example.org")
stalled_hook = call("/api/v1/webhooks", {"url": serve(Hanging)}, stalled)["id"]
fine_hook = call("/api/v1/webhooks", {"url": serve(Healthy)}, fine)["id"]
for _ in range(300):
    call(f"/api/v1/webhooks/{stalled_hook}/test", token=stalled)
time.sleep(1)
queued = {}
for _ in range(120):
    delivery = call(f"/api/v1/webhooks/{fine_hook}/test", token=fine)["delivery_id"]
    queued[delivery] = time.monotonic()
    time.sleep(0.01)
deadline = time.monotonic() + 90
while len(arrivals) < len(queued) and time.monotonic() < deadline:
    time.sleep(0.05)
latencies = sorted((arrivals[d] - t) * 1000 for d, t in queued.items() if d in arrivals)
if len(latencies) < len(queued):
    print(f"only {len(latencies)} of {len(queued)} healthy deliveries arrived within 90 s")
    sys.exit(1)
p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
print()
print(f"healthy webhook, 120 events beside 300 hanging: p50 {statistics.median(latencies):.0f} ms, "
      f"p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms")
print(f"requests the hanging receiver held open at once: {most_open[0]}")
PY
