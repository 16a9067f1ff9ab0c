#!/usr/bin/env bash
# Fairline's benchmark, in one command:  bench/run.sh
#
# From one run it prints webhook throughput and p50/p99 latency on loopback for
#   (a) an unknown caller (cached negative lookup, nothing written), and
#   (b) a caller under an arrangement with an allowance (a unique CallSid per request: every call
#       is a durable SQLite write to the decision log, counted or refused),
# each next to a static-TwiML axum endpoint (examples/static_twiml.rs) measured in the same run
# with the same body; first with an empty store, then with 1,000,000 arrangements stored; and the
# server's memory (VmRSS) at rest and at its peak under load.
#
# (a) is also measured below saturation, with LATENCY_CONNECTIONS (default 2) connections, where
# the p99 is the server's rather than the 2-core machine's scheduling (wrk shares the cores).
#
# Signatures are off (bench/config.toml, loopback only). Needs wrk (apt-get install -y wrk),
# curl and python3 (for seeding SQLite). DURATION=8 CONNECTIONS=8 LATENCY_CONNECTIONS=2
# THREADS=1 ARRANGEMENTS=1000000 change the defaults. After the release build it takes about
# two and a half minutes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-8}"
connections="${CONNECTIONS:-8}"
latency_connections="${LATENCY_CONNECTIONS:-2}"
threads="${THREADS:-1}"
arrangements="${ARRANGEMENTS:-1000000}"
fairline_addr="127.0.0.1:18080"
static_addr="127.0.0.1:18081"
target="${CARGO_TARGET_DIR:-$root/target}"
token="bench-manager-token"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (wrk: apt-get install -y wrk)" >&2; exit 1; }
done

echo "building (release)..." >&2
(cd "$root" && cargo build --release --quiet --bin fairline --example static_twiml)

work="$(mktemp -d)"
db="$work/fairline.db"
pids=()
fairline_pid=""
cleanup() {
  for p in "${pids[@]}" $fairline_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

wait_http() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; exit 1
}

start_fairline() {
  FAIRLINE_STORAGE__URL="sqlite://$db" RUST_LOG="${RUST_LOG:-warn}" \
    FAIRLINE_VONAGE__PRIVATE_KEY="$(cat "$root/fixtures/vonage/test-application-private-key.pem")" \
    "$target/release/fairline" serve --config "$here/config.toml" >>"$work/fairline.log" 2>&1 &
  fairline_pid=$!
  wait_http "http://$fairline_addr/readyz"
}

stop_fairline() {
  kill -TERM "$fairline_pid"
  wait "$fairline_pid" 2>/dev/null || true
  fairline_pid=""
}

"$target/release/examples/static_twiml" "$static_addr" &
pids+=($!)
start_fairline
# A dummy POST until the static server answers.
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "http://$static_addr/webhooks/twilio/voice" 2>/dev/null && break
  sleep 0.05
done

# The arrangement for (b): the fixture's caller, an allowance of 1000 counted calls a day (the
# API's maximum); later calls are refused with allowance_used and still written to the log.
curl -fsS -o "$work/arrangement.json" -X POST "http://$fairline_addr/api/v1/arrangements" \
  -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  -d '{"customer_ref":"BENCH-1","phone_numbers":["+442920123456"],"kind":"restricted",
       "allowance":{"count":1000,"per":"day"},"reason":"benchmark","decided_by":"bench",
       "starts_at":"2020-01-01T00:00:00Z","ends_at":"2099-01-01T00:00:00Z","review_due":"2098-01-01"}'
template_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/arrangement.json")"

fixture="$root/fixtures/twilio/incoming-call.txt"
sed 's/%2B442920123456/%2B442920999999/g' "$fixture" >"$work/unknown.txt"
cp "$fixture" "$work/arranged.txt"
printf '%s' '{"from":"442920999999","to":"442079460000","uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","conversation_uuid":"CON-f972836a-550f-45fa-956c-12a2ab5b7d22"}' \
  >"$work/vonage-unknown.json"

peak_file="$work/peak"
sample_peak() { # pid: write the highest VmRSS seen while it runs
  local peak=0 now
  while kill -0 "$1" 2>/dev/null; do
    now="$(rss_kib "$1")"; [ "${now:-0}" -gt "$peak" ] && peak="$now"
    echo "$peak" >"$peak_file"; sleep 0.2
  done
}

run() { # label store addr body unique_sid [connections] [path] [content type]
  local out
  out="$(BODY_FILE="$4" UNIQUE_SID="$5" CONTENT_TYPE="${8:-application/x-www-form-urlencoded}" \
    wrk -t"$threads" -c"${6:-$connections}" -d"${duration}s" \
    -s "$here/wrk-report.lua" "http://$3${7:-/webhooks/twilio/voice}" | grep '^RESULT')"
  echo "$1 $2 $out" >>"$work/results"
  echo "$1 $2 $out" >&2
}

round() { # store label
  local sampler
  BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s -s "$here/wrk-report.lua" \
    "http://$fairline_addr/webhooks/twilio/voice" >/dev/null
  BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s -s "$here/wrk-report.lua" \
    "http://$static_addr/webhooks/twilio/voice" >/dev/null
  echo "rest $1 $(rss_kib "$fairline_pid")" >>"$work/memory"
  sample_peak "$fairline_pid" & sampler=$!
  run static_a "$1" "$static_addr" "$work/unknown.txt" 0
  run fairline_a "$1" "$fairline_addr" "$work/unknown.txt" 0
  run static_b "$1" "$static_addr" "$work/arranged.txt" 1
  run fairline_b "$1" "$fairline_addr" "$work/arranged.txt" 1
  run static_l "$1" "$static_addr" "$work/unknown.txt" 0 "$latency_connections"
  run fairline_l "$1" "$fairline_addr" "$work/unknown.txt" 0 "$latency_connections"
  # Vonage: the answer webhook (JSON) for an unknown caller, against a static NCCO.
  run static_v "$1" "$static_addr" "$work/vonage-unknown.json" 0 "$connections" \
    /webhooks/vonage/answer application/json
  run fairline_v "$1" "$fairline_addr" "$work/vonage-unknown.json" 0 "$connections" \
    /webhooks/vonage/answer application/json
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  echo "peak $1 $(cat "$peak_file" 2>/dev/null || echo 0)" >>"$work/memory"
}

round "empty"

# Seed the arrangements: copies of the (b) arrangement, each with its own +4474… number.
stop_fairline
echo "seeding $arrangements arrangements..." >&2
seed_start=$(date +%s)
python3 - "$db" "$arrangements" "$template_id" <<'PY'
import sqlite3, sys
db, count, template = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = sqlite3.connect(db)
cols = [r[1] for r in con.execute("PRAGMA table_info(arrangements)")]
select = []
for c in cols:
    if c == "id": select.append("printf('arr_%026d', n)")
    elif c == "customer_ref": select.append("printf('BENCH-%d', n)")
    elif c == "phone_numbers": select.append("printf('[\"+4474%08d\"]', n)")
    else: select.append(c)
seq = "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?) "
with con:
    con.execute(f"INSERT INTO arrangements ({', '.join(cols)}) {seq}"
                f"SELECT {', '.join(select)} FROM seq, arrangements AS t WHERE t.id = ?", (count, template))
    con.execute(f"INSERT INTO arrangement_numbers (number, arrangement_id) {seq}"
                "SELECT printf('+4474%08d', n), printf('arr_%026d', n) FROM seq", (count,))
print(con.execute("SELECT count(*) FROM arrangements").fetchone()[0], "arrangements stored", file=sys.stderr)
PY
echo "seeded in $(( $(date +%s) - seed_start )) s" >&2
start_fairline
round "1M"

awk -v cores="$(nproc)" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    -v conns="$connections" -v lconns="$latency_connections" -v threads="$threads" -v dur="$duration" -v n="$arrangements" '
  function field(line, key,   i, k, parts, kv) {
    k = split(line, parts, " ")
    for (i = 1; i <= k; i++) { split(parts[i], kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  FILENAME ~ /results$/ {
    key = $1 "/" $2
    rps[key] = field($0, "rps"); p50[key] = field($0, "p50_us"); p99[key] = field($0, "p99_us")
    bad[key] = field($0, "non2xx") + field($0, "socket_errors")
  }
  FILENAME ~ /memory$/ { mem[$1 "/" $2] = $3 }
  END {
    printf "machine: %s cores (%s), loopback; wrk %s thread(s), %s connections (%s for the rows marked below saturation), %s s per run\n\n", cores, cpu, threads, conns, lconns, dur
    printf "| arrangements stored | scenario | req/s | p50 ms | p99 ms | errors | req/s vs static |\n"
    printf "|---|---|---:|---:|---:|---:|---:|\n"
    split("empty 1M", stores, " ")
    split("static_a fairline_a static_b fairline_b static_l fairline_l static_v fairline_v", order, " ")
    label["static_a"] = "static TwiML baseline (body a)"
    label["fairline_a"] = "(a) unknown caller"
    label["static_b"] = "static TwiML baseline (body b)"
    label["fairline_b"] = "(b) arrangement + allowance, SQLite write per call"
    label["static_l"] = "static TwiML baseline, below saturation"
    label["fairline_l"] = "(a) unknown caller, below saturation"
    label["static_v"] = "static NCCO baseline (Vonage)"
    label["fairline_v"] = "(v) Vonage answer, unknown caller"
    for (s = 1; s <= 2; s++) {
      st = stores[s]; shown = (st == "empty") ? "1" : n
      for (i = 1; i <= 8; i++) {
        k = order[i] "/" st
        base = ((order[i] ~ /_a$/) ? "static_a" : ((order[i] ~ /_l$/) ? "static_l" : ((order[i] ~ /_v$/) ? "static_v" : "static_b"))) "/" st
        printf "| %s | %s | %.0f | %.2f | %.2f | %d | %.0f%% |\n", shown, label[order[i]], rps[k], p50[k] / 1000, p99[k] / 1000, bad[k], 100 * rps[k] / rps[base]
      }
    }
    printf "\nfairline memory (VmRSS): at rest %.1f MiB, peak under load %.1f MiB (1 arrangement); ", mem["rest/empty"] / 1024, mem["peak/empty"] / 1024
    printf "at rest %.1f MiB, peak under load %.1f MiB (%s arrangements)\n", mem["rest/1M"] / 1024, mem["peak/1M"] / 1024, n
  }' "$work/results" "$work/memory"
