#!/usr/bin/env bash
# The HTTP layer's cost per request: the example service on the memory store (loopback, wrk,
# 4 connections), `GET /health` (no layer), `GET /profile` (layer: token, decision, allow) and
# `POST /email` (layer + JSON body, an audit record). Prints requests per second, latency p50
# and the server's CPU time per request (user + system, from /proc: it does not depend on what
# else the machine runs, which throughput on a shared machine does). Usage:
#   scripts/bench-http.sh [SERVICE_BINARY] [RULES_DIR]     (DUR=5s by default)
# Compare two builds by running it for each, alternately, in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/stepup-example-service}
RULES=${2:-rules}
DUR=${DUR:-5s}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TMP=$(mktemp -d)
RUST_LOG=warn "$BIN" --rules "$RULES" --addr "127.0.0.1:$PORT" --dev-issuer --memory --device-header x-device >"$TMP/service.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 300); do curl -s "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
RESP=$(curl -s -X POST "http://127.0.0.1:$PORT/dev/token" -H 'content-type: application/json' \
  -d '{"sub":"alice","acr":"aal2","amr":["pwd","otp"],"auth_age_s":5}')
T=$(echo "$RESP" | python3 -c "import sys,json; print(json.load(sys.stdin)['access_token'])")
curl -s -o /dev/null -H "authorization: Bearer $T" -H 'x-device: laptop-1' "http://127.0.0.1:$PORT/profile"
printf 'wrk.method="POST"\nwrk.body="{\\"email\\":\\"a@b.c\\"}"\nwrk.headers["Content-Type"]="application/json"\n' >"$TMP/post.lua"
cpu() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
TICK=$(getconf CLK_TCK)
printf '| route | req/s | p50 | server CPU per request | non-2xx |\n| --- | --- | --- | --- | --- |\n'
for route in /health /profile /email; do
  ARGS=(-t 2 -c 4 -d "$DUR" --latency -H "authorization: Bearer $T" -H 'x-device: laptop-1')
  [ "$route" = /email ] && ARGS+=(-s "$TMP/post.lua")
  C0=$(cpu)
  OUT=$(wrk "${ARGS[@]}" "http://127.0.0.1:$PORT$route")
  C1=$(cpu)
  N=$(echo "$OUT" | awk '/requests in/ {print $1}')
  RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
  BAD=$(echo "$OUT" | awk '/Non-2xx/ {print $5}')
  US=$(python3 -c "print(f'{($C1 - $C0) / $TICK * 1e6 / $N:.1f} µs')")
  echo "| $route | $RPS | $P50 | $US | ${BAD:-0} |"
done
