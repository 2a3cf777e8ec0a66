#!/usr/bin/env bash
# A bounded soak of the example service on loopback (issue 17): DUR (default 10m) of mixed
# traffic from wrk — every protected route (GET /profile, POST /email, POST /payouts with and
# without an amount, DELETE /apps/{id}), with good tokens, an expired one, a wrongly signed
# one, garbage and none, over many sessions — against the embedded on-disk store (or Redis
# with STORE=redis). It samples the service's resident memory every SAMPLE seconds and
# prints: requests, statuses, latency percentiles, errors (5xx, socket errors, timeouts) and
# memory from the end of the warm-up to the end. Exits 1 on an error or a memory growth over
# MAX_GROWTH_PCT (default 25) percent. Needs wrk and curl (Debian packages).
#
#   scripts/soak.sh                  # 10 minutes, release build
#   DUR=120 CONNS=8 scripts/soak.sh  # 2 minutes, 8 connections
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-600}            # seconds
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
SAMPLE=${SAMPLE:-10}
WARMUP=${WARMUP:-30}       # seconds of traffic before the memory baseline
MAX_GROWTH_PCT=${MAX_GROWTH_PCT:-25}
STORE=${STORE:-disk}
BIN=${BIN:-target/release/stepup-example-service}
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "scripts/soak.sh: $tool is missing" >&2; exit 2; }
done
[ -x "$BIN" ] || cargo build -q --release -p stepup-example-service
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
HPORT=$(free_port)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
STORE_ARGS=(--db "$WORK/service.redb")
if [ "$STORE" = redis ]; then
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  STORE_ARGS=(--redis "redis://127.0.0.1:$RPORT/")
fi
"$BIN" --rules rules --addr "127.0.0.1:$HPORT" --dev-issuer --device-header x-device \
  "${STORE_ARGS[@]}" >"$WORK/service.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
B="http://127.0.0.1:$HPORT"
for _ in $(seq 300); do curl -s "$B/health" >/dev/null 2>&1 && break; sleep 0.1; done
tok() {
  curl -s -X POST "$B/dev/token" -H 'content-type: application/json' -d "$1" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])'
}
# Tokens: a security-key session (allowed everywhere it is established), an aal2 SMS session
# (prompted for payouts), an aal1 password session (prompted for email), alice and bob.
T3=$(tok '{"sub":"alice","sid":"soak-hwk","acr":"aal3","amr":["pwd","hwk"],"auth_age_s":0}')
T2=$(tok '{"sub":"alice","sid":"soak-sms","acr":"aal2","amr":["pwd","sms"],"auth_age_s":60}')
T1=$(tok '{"sub":"bob","sid":"soak-pwd","acr":"aal1","amr":["pwd"],"auth_age_s":1800}')
# Establish the sessions (their first request is their sign-in, from the known laptop).
for t in "$T3" "$T2" "$T1"; do
  curl -s -o /dev/null -H "authorization: Bearer $t" -H 'x-device: laptop-1' "$B/profile"
done
# A token signed with another key, an expired one (the same shape, exp in the past), garbage.
WRONG="${T3%.*}.$(printf 'not-the-signature' | base64 | tr -d '=' | tr '/+' '_-')"
EXPIRED=$(python3 - "$T3" <<'EOF'
import base64, json, sys, time, hmac, hashlib
h, p, s = sys.argv[1].split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["exp"] = int(time.time()) - 3600
body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
# Re-signed with a key the service does not have: refused either way, never a prompt.
sig = base64.urlsafe_b64encode(hmac.new(b"x" * 32, f"{h}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
print(f"{h}.{body}.{sig}")
EOF
)
cat >"$WORK/mix.lua" <<EOF
local toks = { good3 = "$T3", good2 = "$T2", good1 = "$T1", wrong = "$WRONG", expired = "$EXPIRED", garbage = "eyJhbGciOiJIUzI1NiJ9.e30.AAAA" }
local mix = {
  {"GET", "/profile", "good3", nil},
  {"GET", "/profile", "good1", nil},
  {"POST", "/email", "good3", '{"email":"a@example.com"}'},
  {"POST", "/email", "good1", '{"email":"b@example.com"}'},
  {"POST", "/payouts", "good2", '{"amount":5000}'},
  {"POST", "/payouts", "good3", '{"amount":50}'},
  {"POST", "/payouts", "good3", '{"note":"no amount"}'},
  {"POST", "/payouts", "good3", 'not json'},
  {"DELETE", "/apps/42", "good2", nil},
  {"GET", "/profile", "wrong", nil},
  {"GET", "/profile", "expired", nil},
  {"POST", "/email", "garbage", '{"email":"c@example.com"}'},
  {"GET", "/profile", nil, nil},
}
local i = 0
local counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread); thread:set("counts", {}) end
function init(args) counts = {} end
function request()
  i = i + 1
  local m = mix[(i % #mix) + 1]
  local h = { ["x-device"] = "laptop-1", ["content-type"] = "application/json" }
  if m[3] then h["authorization"] = "Bearer " .. toks[m[3]] end
  return wrk.format(m[1], m[2], h, m[4])
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do total[s] = (total[s] or 0) + n end
  end
  local keys = {}
  for s in pairs(total) do table.insert(keys, s) end
  table.sort(keys)
  local parts = {}
  for _, s in ipairs(keys) do table.insert(parts, s .. "=" .. total[s]) end
  io.write("statuses " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%s %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max %.2f ms\n", latency.max / 1000))
end
EOF
# wrk's per-thread tables: `counts` is the thread's global, read back in done().
sed -i 's/^local counts = {}$/counts = {}/' "$WORK/mix.lua"
rss() { awk '/VmRSS/ {print $2}' "/proc/$SPID/status"; }
echo "soak: $DUR s, $CONNS connections, store $STORE, service pid $SPID, start RSS $(rss) kB"
wrk -t "$THREADS" -c "$CONNS" -d "${DUR}s" --timeout 5s --latency -s "$WORK/mix.lua" "$B" >"$WORK/wrk.out" 2>&1 &
WPID=$!
PIDS+=("$WPID")
START=$(date +%s)
BASE=""
MAXRSS=0
SAMPLES=()
while kill -0 "$WPID" 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 "$SPID" 2>/dev/null || { echo "soak: the service died"; cat "$WORK/service.log"; exit 1; }
  R=$(rss)
  T=$(( $(date +%s) - START ))
  SAMPLES+=("${T}s:${R}")
  if [ -z "$BASE" ] && [ "$T" -ge "$WARMUP" ]; then BASE=$R; fi
  [ "$R" -gt "$MAXRSS" ] && MAXRSS=$R
done
wait "$WPID" || true
END_RSS=$(rss)
cat "$WORK/wrk.out"
echo "rss samples (kB): ${SAMPLES[*]}"
BASE=${BASE:-$END_RSS}
GROWTH=$(( (END_RSS - BASE) * 100 / BASE ))
echo "memory: ${BASE} kB after warm-up, ${END_RSS} kB at the end (${GROWTH}%), max ${MAXRSS} kB"
FIVE=$(grep -oE ' 5[0-9][0-9]=[0-9]+' "$WORK/wrk.out" || true)
# Socket errors and timeouts (wrk's `status` count is every non-2xx answer: 401s are expected).
ERRS=$(awk '/^errors/ {s=0; for(i=2;i<=NF;i++){split($i,a,"="); if (a[1] != "status") s+=a[2]} print s}' "$WORK/wrk.out")
PANICS=$(grep -ci 'panick' "$WORK/service.log" || true)
echo "5xx:${FIVE:- none}  socket errors/timeouts: ${ERRS:-?}  panics in the service log: $PANICS"
if [ -n "$FIVE" ] || [ "${ERRS:-1}" != 0 ] || [ "$PANICS" != 0 ] || [ "$GROWTH" -gt "$MAX_GROWTH_PCT" ]; then
  echo "soak: FAILED"
  exit 1
fi
echo "soak: ok"
