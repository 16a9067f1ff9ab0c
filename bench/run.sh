#!/usr/bin/env bash
# Fairline's benchmark, in one command:  bench/run.sh
#
# It measures the webhooks under production's conditions, on loopback, each next to a static
# axum endpoint (examples/static_twiml.rs: fixed TwiML / a fixed NCCO after reading the body)
# measured in the same run:
#   * signatures ON: every Twilio request carries a correct X-Twilio-Signature for the bench
#     URL and body (computed per request by bench/wrk-report.lua, so unique CallSids are signed
#     too), every Vonage request a fresh HS256 JWT with the body's payload_hash;
#   * the default log level (RUST_LOG is not set unless you set it), logs written to a file;
#   * wrk -t2 -c32 -d8s at saturation; the fixed-rate run (examples/fixed_rate.rs, 2,000 req/s
#     over 32 connections, latency from each request's due time) for the tail below saturation.
# Scenarios: (a) an unknown caller on Twilio (cached negative lookup, nothing written), at
# saturation and at the fixed rate; (u) the same caller with a new CallSid on every call, as
# real calls come (each call's live-call row is written: SPEC §12), from a pool of POOL
# requests per wrk thread signed before wrk's clock starts (a CallSid comes back after POOL
# requests of its thread and is then an insert that changes nothing); (v) an unknown caller on
# Vonage's answer webhook; (b) a
# caller under an arrangement with an allowance (a unique CallSid per request: every call is a
# durable SQLite write) unless bench/durable.sh exists, which then measures the durable path
# (SQLite and PostgreSQL) and whose rows join the summary. All of it first with one arrangement
# stored, then with ARRANGEMENTS (1,000,000) stored; and Fairline's memory (VmRSS).
#
# The saturated runs of (a) and (u) are PAIRS pairs (static, then Fairline) in turn; the
# summary gives the pair with the median ratio and every pair's ratio: this machine's speed
# drifts by ±15% within minutes, and one pair can land on either side of a bar by chance.
#
# Env overrides: DURATION=8 THREADS=2 CONNECTIONS=32 RATE=2000 RATE_CONNECTIONS=32 PAIRS=3
# POOL=20000 ARRANGEMENTS=1000000 SIGNATURES=1 (0: checks off, requests unsigned) RUST_LOG (unset: the
# default level). BEFORE_REF=<git ref>: measure that ref's Fairline instead (built once from
# `git archive` into target/durable-before, shared with bench/durable.sh, which then prints its
# "before" rows beside the current code's); the static endpoint and load tools stay this tree's.
# Needs wrk (apt-get install -y wrk), curl and python3. After the release build
# it takes about eight minutes (five with DURATION=5).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-8}"
threads="${THREADS:-2}"
connections="${CONNECTIONS:-32}"
rate="${RATE:-2000}"
rate_connections="${RATE_CONNECTIONS:-32}"
pairs="${PAIRS:-3}"
pool="${POOL:-20000}"
arrangements="${ARRANGEMENTS:-1000000}"
signatures="${SIGNATURES:-1}"
fairline_addr="127.0.0.1:18080"
static_addr="127.0.0.1:18081"
target="${CARGO_TARGET_DIR:-$root/target}"
token="bench-manager-token"
# The secrets of bench/config.toml (they protect nothing).
twilio_token="bench-twilio-auth-token-00000000"
vonage_secret="bench-vonage-signature-secret-0000000000"
twilio_path="/webhooks/twilio/voice"
vonage_path="/webhooks/vonage/answer"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (wrk: apt-get install -y wrk)" >&2; exit 1; }
done

echo "building (release)..." >&2
(cd "$root" && cargo build --release --quiet --bin fairline --example static_twiml --example fixed_rate)

fairline_bin="$target/release/fairline"
before_ref="${BEFORE_REF:-}"
if [ -n "$before_ref" ]; then
  before_dir="$target/durable-before"
  before_src="$before_dir/src-$(git -C "$root" rev-parse --short "$before_ref")"
  if [ ! -x "$before_src.bin" ]; then
    echo "building $before_ref (release) in $before_dir..." >&2
    rm -rf "$before_src" && mkdir -p "$before_src"
    git -C "$root" archive "$before_ref" | tar -x -C "$before_src"
    # Reuse the compiled dependencies (only the fairline crate itself is built again).
    if [ ! -d "$before_dir/target/release" ] && [ -d "$target/release" ]; then
      mkdir -p "$before_dir/target" && cp -a "$target/release" "$before_dir/target/"
    fi
    (cd "$before_src" && cargo build --release --quiet --bin fairline --target-dir "$before_dir/target")
    cp "$before_dir/target/release/fairline" "$before_src.bin"
  fi
  fairline_bin="$before_src.bin"
  echo "measuring $before_ref's Fairline: $fairline_bin" >&2
fi

work="$(mktemp -d)"
db="$work/fairline.db"
log="$work/fairline.log"
pids=()
fairline_pid=""
cleanup() {
  for p in "${pids[@]}" $fairline_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

wait_http() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; exit 1
}

start_fairline() {
  local env=(FAIRLINE_STORAGE__URL="sqlite://$db"
    FAIRLINE_VONAGE__PRIVATE_KEY="$(cat "$root/fixtures/vonage/test-application-private-key.pem")")
  if [ "$signatures" = 0 ]; then
    env+=(FAIRLINE_TWILIO__VERIFY_SIGNATURES=false FAIRLINE_VONAGE__VERIFY_SIGNATURES=false)
  fi
  # stdout and stderr to a file, as a service manager would; RUST_LOG only if the caller set it.
  env "${env[@]}" "$fairline_bin" serve --config "$here/config.toml" >>"$log" 2>&1 &
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
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "http://$static_addr$twilio_path" 2>/dev/null && break
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

# Twilio's signature of a body for the bench URL (the fixed-rate run sends it as a header; wrk
# signs in bench/wrk-report.lua, which computes the same value).
twilio_signature() { # body_file
  python3 - "http://$fairline_addr$twilio_path" "$twilio_token" "$1" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
url, token, path = sys.argv[1], sys.argv[2], sys.argv[3]
fields = sorted(urllib.parse.parse_qsl(open(path).read(), keep_blank_values=True))
data = url + "".join(k + v for k, v in fields)
print(base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode())
PY
}

# A Vonage webhook JWT (HS256) for a body, issued now (it is accepted for 300 s).
vonage_jwt() { # body_file
  python3 - "$vonage_secret" "$1" <<'PY'
import base64, hashlib, hmac, json, sys, time, uuid
secret, path = sys.argv[1], sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = b64(json.dumps({"iat": int(time.time()), "jti": str(uuid.uuid4()), "iss": "Vonage",
    "payload_hash": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}).encode())
sig = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
print(f"{header}.{claims}.{b64(sig)}")
PY
}

sign_env=()
if [ "$signatures" != 0 ]; then
  sign_env=(SIGN_URL="http://$fairline_addr$twilio_path" SIGN_TOKEN="$twilio_token")
fi

peak_file="$work/peak"
sample_peak() { # pid: write the highest VmRSS seen while it runs
  local peak=0 now
  while kill -0 "$1" 2>/dev/null; do
    now="$(rss_kib "$1")"; [ "${now:-0}" -gt "$peak" ] && peak="$now"
    echo "$peak" >"$peak_file"; sleep 0.2
  done
}

record() { # label store result-line
  echo "$1 $2 $3" >>"$work/results"
  echo "$1 $2 $3" >&2
}

saturate() { # label store addr body unique_sid [pool]
  local out
  out="$(env "${sign_env[@]}" BODY_FILE="$4" UNIQUE_SID="$5" POOL="${6:-0}" \
    wrk -t"$threads" -c"$connections" -d"${duration}s" \
    -s "$here/wrk-report.lua" "http://$3$twilio_path" | grep '^RESULT')"
  record "$1" "$2" "$out"
}

fixed_rate() { # label store addr body
  local out headers=(--header "Content-Type: application/x-www-form-urlencoded")
  if [ "$signatures" != 0 ]; then
    headers+=(--header "X-Twilio-Signature: $(twilio_signature "$4")")
  fi
  out="$("$target/release/examples/fixed_rate" --url "http://$3$twilio_path" --rate "$rate" \
    --connections "$rate_connections" --duration "$duration" --body-file "$4" "${headers[@]}" \
    | grep '^RESULT')"
  record "$1" "$2" "$out"
}

vonage() { # label store addr body
  local out auth=()
  [ "$signatures" != 0 ] && auth=(-H "Authorization: Bearer $(vonage_jwt "$4")")
  out="$(BODY_FILE="$4" UNIQUE_SID=0 CONTENT_TYPE=application/json \
    wrk -t"$threads" -c"$connections" -d"${duration}s" "${auth[@]}" \
    -s "$here/wrk-report.lua" "http://$3$vonage_path" | grep '^RESULT')"
  record "$1" "$2" "$out"
}

round() { # store label
  local sampler
  # Warm both servers (connections, caches, the allocator) before measuring.
  env "${sign_env[@]}" BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s \
    -s "$here/wrk-report.lua" "http://$fairline_addr$twilio_path" >/dev/null
  BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 wrk -t1 -c4 -d1s -s "$here/wrk-report.lua" \
    "http://$static_addr$twilio_path" >/dev/null
  echo "rest $1 $(rss_kib "$fairline_pid")" >>"$work/memory"
  sample_peak "$fairline_pid" & sampler=$!
  local p
  for p in $(seq 1 "$pairs"); do
    saturate "static_a#$p" "$1" "$static_addr" "$work/unknown.txt" 0
    saturate "fairline_a#$p" "$1" "$fairline_addr" "$work/unknown.txt" 0
  done
  for p in $(seq 1 "$pairs"); do
    saturate "static_u#$p" "$1" "$static_addr" "$work/unknown.txt" 1 "$pool"
    saturate "fairline_u#$p" "$1" "$fairline_addr" "$work/unknown.txt" 1 "$pool"
  done
  fixed_rate static_r "$1" "$static_addr" "$work/unknown.txt"
  fixed_rate fairline_r "$1" "$fairline_addr" "$work/unknown.txt"
  vonage static_v "$1" "$static_addr" "$work/vonage-unknown.json"
  vonage fairline_v "$1" "$fairline_addr" "$work/vonage-unknown.json"
  if [ ! -f "$here/durable.sh" ]; then
    saturate static_b "$1" "$static_addr" "$work/arranged.txt" 1
    saturate fairline_b "$1" "$fairline_addr" "$work/arranged.txt" 1
  fi
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
stop_fairline

log_lines="$(wc -l <"$log")"
log_bytes="$(wc -c <"$log")"
log_ansi="$(grep -c $'\x1b\\[' "$log" || true)"
fairline_requests="$(awk '$1 ~ /^fairline_/ { for (i = 3; i <= NF; i++) if ($i ~ /^requests=/) { split($i, kv, "="); n += kv[2] } } END { print n + 0 }' "$work/results")"

# The durable path, measured by its own script when present (SQLite and PostgreSQL).
: >"$work/durable"
if [ -f "$here/durable.sh" ]; then
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  echo "running bench/durable.sh..." >&2
  DURATION="$duration" THREADS="$threads" CONNECTIONS="$connections" BEFORE_REF="$before_ref" \
    bash "$here/durable.sh" \
    | tee /dev/stderr | grep '^|' | grep -v -e '^|---' -e '^| *measured' -e '^| *scenario' >"$work/durable" || true
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

awk -v cores="$(nproc)" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    -v conns="$connections" -v threads="$threads" -v dur="$duration" -v n="$arrangements" \
    -v rate="$rate" -v rconns="$rate_connections" -v sigs="$signatures" -v rustlog="${RUST_LOG:-}" \
    -v load_before="$load_before" -v load_after="$load_after" -v log_lines="$log_lines" \
    -v log_bytes="$log_bytes" -v log_ansi="$log_ansi" -v freq="$fairline_requests" \
    -v before="$before_ref" -v pool="$pool" '
  function field(line, key,   i, k, parts, kv) {
    k = split(line, parts, " ")
    for (i = 1; i <= k; i++) { split(parts[i], kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  function has(k) { return (k in rps) }
  function row(shown, what, f, s, fv, sv, unit, errs,   ratio) {
    ratio = (sv > 0) ? fv / sv : 0
    printf "| %s | %s | %s | %s | %s | %s |\n", shown, what, f, s, (unit == "x") ? sprintf("%.2fx", ratio) : sprintf("%.2f", ratio), errs
  }
  FILENAME ~ /results$/ {
    key = $1 "/" $2
    rps[key] = field($0, "rps"); p50[key] = field($0, "p50_us"); p99[key] = field($0, "p99_us")
    bad[key] = field($0, "non2xx") + field($0, "socket_errors")
    if (split($1, lp, "#") == 2 && lp[2] + 0 > npairs[lp[1] "/" $2]) npairs[lp[1] "/" $2] = lp[2] + 0
  }
  FILENAME ~ /memory$/ { mem[$1 "/" $2] = $3 }
  FILENAME ~ /durable$/ { durable[++nd] = $0 }
  # The pair with the median ratio stands for the scenario (its figures under the plain
  # label); the errors are those of every pair; `ratios` lists the ratio of each pair, sorted.
  function median_pair(sc, st,   n, i, j, t, r, idx, m, list, errs) {
    n = npairs["fairline_" sc "/" st]
    if (n == 0) return
    for (i = 1; i <= n; i++) {
      s_rps = rps["static_" sc "#" i "/" st]
      r[i] = (s_rps > 0) ? rps["fairline_" sc "#" i "/" st] / s_rps : 0
      idx[i] = i
      errs += bad["fairline_" sc "#" i "/" st]
    }
    for (i = 2; i <= n; i++) for (j = i; j > 1 && r[idx[j]] < r[idx[j - 1]]; j--) { t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t }
    m = idx[int((n + 1) / 2)]
    for (i = 1; i <= n; i++) list = list (i > 1 ? " " : "") sprintf("%.2f", r[idx[i]])
    ratios[sc "/" st] = list
    split("static_ fairline_", who, " ")
    for (i = 1; i <= 2; i++) {
      k = who[i] sc "/" st; km = who[i] sc "#" m "/" st
      rps[k] = rps[km]; p50[k] = p50[km]; p99[k] = p99[km]; bad[k] = bad[km]
    }
    bad["fairline_" sc "/" st] = errs
  }
  END {
    split("empty 1M", stores, " ")
    for (s = 1; s <= 2; s++) { median_pair("a", stores[s]); median_pair("u", stores[s]) }
    printf "code measured: %s\n", (before == "") ? "this tree" : "git ref " before " (BEFORE_REF)"
    printf "machine: %s cores (%s), loopback; load average %s before, %s after\n", cores, cpu, load_before, load_after
    printf "conditions: signatures %s, log level %s, logs to a file; wrk -t%s -c%s -d%ss; fixed rate %s req/s over %s connections for %s s\n\n", (sigs == "0") ? "OFF" : "on (signed bodies)", (rustlog == "") ? "default (RUST_LOG unset)" : "RUST_LOG=" rustlog, threads, conns, dur, rate, rconns, dur
    printf "| arrangements stored | run | req/s | p50 ms | p99 ms | errors | req/s vs static |\n"
    printf "|---|---|---:|---:|---:|---:|---:|\n"
    split("static_a fairline_a static_u fairline_u static_r fairline_r static_v fairline_v static_b fairline_b", order, " ")
    label["static_a"] = "static TwiML, wrk"; label["fairline_a"] = "(a) unknown caller, wrk"
    label["static_u"] = "static TwiML, a new CallSid per call, wrk"; label["fairline_u"] = "(u) unknown caller, a new CallSid per call, wrk"
    label["static_r"] = "static TwiML, fixed rate"; label["fairline_r"] = "(a) unknown caller, fixed rate"
    label["static_v"] = "static NCCO, wrk"; label["fairline_v"] = "(v) Vonage answer, unknown caller, wrk"
    label["static_b"] = "static TwiML (body b), wrk"; label["fairline_b"] = "(b) arrangement + allowance, SQLite write per call, wrk"
    for (s = 1; s <= 2; s++) {
      st = stores[s]; shown = (st == "empty") ? "1" : n
      for (i = 1; i <= 10; i++) {
        k = order[i] "/" st
        if (!has(k)) continue
        base = "static_" substr(order[i], length(order[i])) "/" st
        printf "| %s | %s | %.0f | %.2f | %.2f | %d | %.0f%% |\n", shown, label[order[i]], rps[k], p50[k] / 1000, p99[k] / 1000, bad[k], 100 * rps[k] / rps[base]
      }
    }
    printf "\nSummary (ratio = Fairline / static, same run):\n\n"
    printf "| arrangements stored | measured | Fairline | static | ratio | errors (Fairline) |\n"
    printf "|---|---|---:|---:|---:|---:|\n"
    for (s = 1; s <= 2; s++) {
      st = stores[s]; shown = (st == "empty") ? "1" : n
      a = "fairline_a/" st; sa = "static_a/" st
      row(shown, sprintf("unknown caller, saturated (req/s; median of %d pairs, ratios %s)", npairs[a], ratios["a/" st]), sprintf("%.0f", rps[a]), sprintf("%.0f", rps[sa]), rps[a], rps[sa], "", bad[a])
      u = "fairline_u/" st; su = "static_u/" st
      if (has(u)) row(shown, sprintf("unknown caller, a new CallSid per call, saturated (req/s; median of %d pairs, ratios %s)", npairs[u], ratios["u/" st]), sprintf("%.0f", rps[u]), sprintf("%.0f", rps[su]), rps[u], rps[su], "", bad[u])
      r = "fairline_r/" st; sr = "static_r/" st
      row(shown, sprintf("unknown caller, fixed %d req/s (p99 ms)", rate), sprintf("%.2f", p99[r] / 1000), sprintf("%.2f", p99[sr] / 1000), p99[r], p99[sr], "x", bad[r])
      v = "fairline_v/" st; sv = "static_v/" st
      row(shown, "Vonage answer, unknown caller, saturated (req/s)", sprintf("%.0f", rps[v]), sprintf("%.0f", rps[sv]), rps[v], rps[sv], "", bad[v])
      row(shown, "Vonage answer, unknown caller, saturated (p99 ms)", sprintf("%.2f", p99[v] / 1000), sprintf("%.2f", p99[sv] / 1000), p99[v], p99[sv], "x", bad[v])
      b = "fairline_b/" st
      if (has(b)) printf "| %s | caller under an arrangement, SQLite write per call (calls/s, p99 ms) | %.0f, %.2f | | | %d |\n", shown, rps[b], p99[b] / 1000, bad[b]
    }
    for (d = 1; d <= nd; d++) {
      k = split(durable[d], cell, "|")
      if (k >= 6) {
        for (j = 2; j < k; j++) { gsub(/^ +| +$/, "", cell[j]) }
        printf "| 1 | %s (calls/s, p50 / p99 ms) | %s, %s / %s | | | %s |\n", cell[2], cell[3], cell[4], cell[5], cell[6]
      } else print durable[d]
    }
    printf "| 1 | memory at rest / peak (MiB) | %.0f / %.0f | | | |\n", mem["rest/empty"] / 1024, mem["peak/empty"] / 1024
    printf "| %s | memory at rest / peak (MiB) | %.0f / %.0f | | | |\n", n, mem["rest/1M"] / 1024, mem["peak/1M"] / 1024
    printf "\nfairline log file: %d lines, %.1f MiB for %d measured webhook requests (%.2f lines each); lines with ANSI escapes: %d\n", log_lines, log_bytes / 1048576, freq, (freq > 0) ? log_lines / freq : 0, log_ansi
  }' "$work/results" "$work/memory" "$work/durable"
