#!/usr/bin/env bash
# Twilio webhook throughput and latency on loopback, next to a static-TwiML axum baseline.
#
#   bench/twilio-webhook.sh            (DURATION=10 CONNECTIONS=8 THREADS=1 to change)
#
# (a) an unknown caller (no arrangement: cached negative lookup, no write);
# (b) a caller under an arrangement with an allowance, a unique CallSid per request, so that
#     every call is a durable SQLite write (the decision log row, counted or not).
# Each is measured next to examples/static_twiml.rs with the same body, in the same run.
# Signatures are off (bench/config.toml). Needs wrk (`apt-get install -y wrk`) and curl.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-8}"
threads="${THREADS:-1}"
fairline_addr="127.0.0.1:18080"
static_addr="127.0.0.1:18081"
target="${CARGO_TARGET_DIR:-$root/target}"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

echo "building (release)..." >&2
(cd "$root" && cargo build --release --quiet --bin fairline --example static_twiml)

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$target/release/examples/static_twiml" "$static_addr" &
pids+=($!)
FAIRLINE_STORAGE__URL="sqlite://$work/fairline.db" RUST_LOG="${RUST_LOG:-warn}" \
  "$target/release/fairline" serve --config "$here/config.toml" >"$work/fairline.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://$fairline_addr/healthz" >/dev/null 2>&1 \
    && curl -fsS -o /dev/null -X POST "http://$static_addr/webhooks/twilio/voice" 2>/dev/null && break
  sleep 0.1
done

# The arrangement for (b): the fixture's caller, at most 1000 counted calls a day (the API's
# maximum); every later call is refused with allowance_used, and is still written to the log.
curl -fsS -o /dev/null -X POST "http://$fairline_addr/api/v1/arrangements" \
  -H "Authorization: Bearer bench-manager-token" -H "Content-Type: application/json" \
  -d '{"customer_ref":"BENCH-1","phone_numbers":["+442920123456"],"kind":"restricted",
       "allowance":{"count":1000,"per":"day"},"reason":"benchmark","decided_by":"bench",
       "starts_at":"2020-01-01T00:00:00Z","ends_at":"2099-01-01T00:00:00Z","review_due":"2098-01-01"}'

fixture="$root/fixtures/twilio/incoming-call.txt"
# (a): the same fixture from a number without an arrangement.
sed 's/%2B442920123456/%2B442920999999/g' "$fixture" >"$work/unknown.txt"
cp "$fixture" "$work/arranged.txt"

run() { # name addr body unique_sid
  local out
  out="$(BODY_FILE="$3" UNIQUE_SID="$4" wrk -t"$threads" -c"$connections" -d"${duration}s" \
    -s "$here/wrk-report.lua" "http://$2/webhooks/twilio/voice" | grep '^RESULT')"
  echo "$1 $out" >>"$work/results"
  echo "$1 $out" >&2
}

# A short warm-up of both servers.
BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s -s "$here/wrk-report.lua" \
  "http://$fairline_addr/webhooks/twilio/voice" >/dev/null
BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s -s "$here/wrk-report.lua" \
  "http://$static_addr/webhooks/twilio/voice" >/dev/null

run static_a "$static_addr" "$work/unknown.txt" 0
run fairline_a "$fairline_addr" "$work/unknown.txt" 0
run static_b "$static_addr" "$work/arranged.txt" 1
run fairline_b "$fairline_addr" "$work/arranged.txt" 1

counted="$(curl -fsS -X POST "http://$fairline_addr/api/v1/evaluate" \
  -H "Authorization: Bearer bench-manager-token" -H "Content-Type: application/json" \
  -d '{"from":"+442920123456"}' | grep -o '"calls_counted":[0-9]*' | cut -d: -f2)"

awk -v cores="$(nproc)" -v conns="$connections" -v threads="$threads" -v dur="$duration" '
  function field(line, key,   i, n, parts, kv) {
    n = split(line, parts, " ")
    for (i = 1; i <= n; i++) { split(parts[i], kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  { rps[$1] = field($0, "rps"); p50[$1] = field($0, "p50_us"); p99[$1] = field($0, "p99_us");
    bad[$1] = field($0, "non2xx") + field($0, "socket_errors") }
  END {
    printf "machine: %s cores, loopback; wrk %s thread(s), %s connections, %s s per run\n\n", cores, threads, conns, dur
    printf "| scenario | req/s | p50 ms | p99 ms | errors | req/s vs static |\n"
    printf "|---|---:|---:|---:|---:|---:|\n"
    split("static_a fairline_a static_b fairline_b", order, " ")
    label["static_a"] = "static TwiML baseline (body a)"
    label["fairline_a"] = "(a) unknown caller"
    label["static_b"] = "static TwiML baseline (body b)"
    label["fairline_b"] = "(b) arrangement + allowance, SQLite write per call"
    for (i = 1; i <= 4; i++) {
      k = order[i]; base = (k ~ /_a$/) ? "static_a" : "static_b"
      printf "| %s | %.0f | %.2f | %.2f | %d | %.0f%% |\n", label[k], rps[k], p50[k] / 1000, p99[k] / 1000, bad[k], 100 * rps[k] / rps[base]
    }
  }' "$work/results"
echo
echo "(b) calls counted today after the run: ${counted:-?} (the allowance caps counting at 1000;"
echo "    later calls are refused with allowance_used and still written to the decision log)"
