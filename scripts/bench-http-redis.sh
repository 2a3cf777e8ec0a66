#!/usr/bin/env bash
# Requests per second of the example service on Redis at 1, 4 and 16 concurrent clients
# (loopback, wrk, `GET /profile` with an established session: the layer verifies the token,
# loads and commits through Redis, decides, audits). Usage:
#   scripts/bench-http-redis.sh [SERVICE_BINARY] [RULES_DIR]
# Needs redis-server and wrk (Debian packages); starts and stops its own Redis and service.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/stepup-example-service}
RULES=${2:-rules}
DUR=${DUR:-5s}
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
RPID=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
DB=$(mktemp -d)
"$BIN" --rules "$RULES" --addr "127.0.0.1:$HPORT" --dev-issuer --redis "redis://127.0.0.1:$RPORT/" >"$DB/service.log" 2>&1 &
SPID=$!
trap 'kill $SPID $RPID 2>/dev/null; rm -rf "$DB"' EXIT
for _ in $(seq 300); do curl -s "http://127.0.0.1:$HPORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
# A security-key token from now: its sign-in (the session's first request) satisfies every
# sign-in policy, so the session is established and the next requests are plain allows.
RESP=$(curl -s -X POST "http://127.0.0.1:$HPORT/dev/token" -H 'content-type: application/json' \
  -d '{"sub":"alice","acr":"aal3","amr":["pwd","hwk"],"auth_age_s":0,"sid":"bench"}' \
)
T=$(echo "$RESP" | python3 -c "import sys,json; print(json.load(sys.stdin)['access_token'])" || { echo "token: $RESP"; cat "$DB/service.log"; exit 1; })
FIRST=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $T" -H 'x-device: laptop-1' "http://127.0.0.1:$HPORT/profile")
echo "first request: $FIRST"
printf '| clients | req/s | p50 | p99 | non-2xx |\n| --- | --- | --- | --- | --- |\n'
for c in 1 4 16; do
  OUT=$(wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "$DUR" --latency -H "authorization: Bearer $T" -H 'x-device: laptop-1' "http://127.0.0.1:$HPORT/profile")
  RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
  P99=$(echo "$OUT" | awk '$1=="99%" {print $2}')
  BAD=$(echo "$OUT" | awk '/Non-2xx/ {print $5}')
  echo "| $c | $RPS | $P50 | $P99 | ${BAD:-0} |"
done
