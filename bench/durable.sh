#!/usr/bin/env bash
# The durable path (issue 12), in one command:  bench/durable.sh
#
# A caller under an arrangement with an allowance calls with a new CallSid every time, so every
# call is counted, decided and written to the decision log — durably (SQLite: WAL,
# synchronous = FULL; PostgreSQL: its default fsync'd commit) — before it is answered. wrk sends
# Twilio's incoming-call webhook with 32 connections (2 threads, 8 s), in production's
# conditions: signatures checked (each body correctly signed: the bodies are signed here
# beforehand, since wrk's Lua has no HMAC), the default log level, logs written to a file.
#
# Rows printed:  | durable (b) SQLite | calls/s | p50 | p99 | errors |  and the PostgreSQL one;
# every measurement starts a fresh server on a fresh database and is repeated ROUNDS times.
#
# Environment:
#   DURATION=8 CONNECTIONS=32 THREADS=2 ROUNDS=2   wrk settings and repetitions
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test   a server to create the benchmark's
#       own database on (fairline_bench, dropped and re-created for each measurement);
#       POSTGRES_URL= (empty) skips PostgreSQL
#   BEFORE_REF=main   also measure that git ref's code in the same conditions ("before" rows);
#       built once from `git archive` into target/durable-before (off by default: it is a second
#       release build)
# Needs wrk, curl, python3 and (for PostgreSQL) psql.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-8}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-2}"
pg_base="${POSTGRES_URL-postgres://postgres@127.0.0.1:5432/test}"
before_ref="${BEFORE_REF:-}"
target="${CARGO_TARGET_DIR:-$root/target}"
addr="127.0.0.1:18090"
token="bench-manager-token"
auth_token="bench-twilio-auth-token"
caller="+442920123456"
# Calls per wrk thread with their own CallSid (enough for ~7,500 calls/s for 8 s).
per_thread="${BODIES_PER_THREAD:-60000}"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (wrk: apt-get install -y wrk)" >&2; exit 1; }
done
if [ -n "$pg_base" ]; then
  command -v psql >/dev/null || { echo "psql not found (or set POSTGRES_URL= to skip PostgreSQL)" >&2; exit 1; }
fi

echo "building (release)..." >&2
(cd "$root" && cargo build --release --quiet --bin fairline)
after_bin="$target/release/fairline"

before_bin=""
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
  before_bin="$before_src.bin"
fi

work="$(mktemp -d)"
fairline_pid=""
cleanup() {
  [ -n "$fairline_pid" ] && kill "$fairline_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Production's conditions: signatures on, no RUST_LOG (the default level), logs to a file.
cat >"$work/config.toml" <<EOF
[server]
bind = "$addr"
public_url = "http://$addr"

[storage]
url = "sqlite://$work/unused.db"

[organisation]
name = "Bench Ombudsman"
timezone = "Europe/London"
language = "en"

[twilio]
auth_token = "$auth_token"
verify_signatures = true
continue_url = "https://example.org/twiml/main-menu"

[telnyx]
verify_signatures = false

[vonage]
verify_signatures = false
application_id = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
continue_to = "sip:main-queue@pbx.example.org"

[[auth.tokens]]
name = "bench-manager"
role = "manager"
sha256 = "sha256:1822fab4c25ea4b66eba9abda02e9c319cf4a8ce32e4b5322c638b484b2cbe8a"
EOF

# The signed bodies: the fixture's incoming call, a new CallSid on every line.
echo "signing $((per_thread * threads)) bodies..." >&2
python3 - "$root/fixtures/twilio/incoming-call.txt" "$work/bodies" "$threads" "$per_thread" \
  "http://$addr/webhooks/twilio/voice" "$auth_token" <<'PY'
import base64, hashlib, hmac, os, sys
from urllib.parse import parse_qsl, urlencode
fixture, prefix, threads, per, url, token = sys.argv[1:]
fields = parse_qsl(open(fixture).read().strip(), keep_blank_values=True)
run = os.urandom(6).hex()
for t in range(1, int(threads) + 1):
    with open(f"{prefix}.{t}", "w") as out:
        for n in range(int(per)):
            sid = f"CA{t:04x}{run}{n:016x}"
            f = [(k, sid if k == "CallSid" else v) for k, v in fields]
            signed = url + "".join(k + v for k, v in sorted(f))
            sig = base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
            out.write(sig + "\t" + urlencode(f) + "\n")
PY

wait_http() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; exit 1
}

pg_url_for() { # database name
  echo "${pg_base%/*}/$1"
}

start() { # binary storage_url log
  FAIRLINE_STORAGE__URL="$2" FAIRLINE_VONAGE__PRIVATE_KEY="$(cat "$root/fixtures/vonage/test-application-private-key.pem")" \
    "$1" serve --config "$work/config.toml" >>"$3" 2>&1 &
  fairline_pid=$!
  wait_http "http://$addr/readyz"
  # The arrangement: an allowance of 1000 counted calls a day (the API's maximum); later calls
  # are refused with allowance_used and still written to the log.
  curl -fsS -o /dev/null -X POST "http://$addr/api/v1/arrangements" \
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    -d '{"customer_ref":"BENCH-1","phone_numbers":["'"$caller"'"],"kind":"restricted",
         "allowance":{"count":1000,"per":"day"},"reason":"benchmark","decided_by":"bench",
         "starts_at":"2020-01-01T00:00:00Z","ends_at":"2099-01-01T00:00:00Z","review_due":"2098-01-01"}'
}

stop() {
  kill -TERM "$fairline_pid"
  wait "$fairline_pid" 2>/dev/null || true
  fairline_pid=""
}

measure() { # label binary backend
  local url out logged
  if [ "$3" = sqlite ]; then
    rm -f "$work"/bench.db*
    url="sqlite://$work/bench.db"
  else
    psql -q "$pg_base" -c "DROP DATABASE IF EXISTS fairline_bench WITH (FORCE)" -c "CREATE DATABASE fairline_bench" >/dev/null
    url="$(pg_url_for fairline_bench)"
  fi
  start "$2" "$url" "$work/fairline-$1-$3.log"
  out="$(BODIES="$work/bodies" wrk -t"$threads" -c"$connections" -d"${duration}s" \
    -s "$here/durable.lua" "http://$addr/webhooks/twilio/voice" | grep '^RESULT')"
  stop
  # Every answered call must be in the log: count the rows.
  if [ "$3" = sqlite ]; then
    logged="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from calls").fetchone()[0])' "$work/bench.db")"
  else
    logged="$(psql -qtA "$url" -c "select count(*) from calls")"
  fi
  echo "$1 $3 $out logged=$logged load=$(cut -d' ' -f1 /proc/loadavg)" >>"$work/results"
  echo "$1 $3 $out logged=$logged load=$(cut -d' ' -f1 /proc/loadavg)" >&2
}

backends="sqlite"
[ -n "$pg_base" ] && backends="sqlite postgres"
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  for backend in $backends; do
    [ -n "$before_bin" ] && measure before "$before_bin" "$backend"
    measure after "$after_bin" "$backend"
  done
done
[ -n "$pg_base" ] && psql -q "$pg_base" -c "DROP DATABASE IF EXISTS fairline_bench WITH (FORCE)" >/dev/null

awk -v cores="$(nproc)" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    -v conns="$connections" -v threads="$threads" -v dur="$duration" '
  function field(line, key,   i, k, parts, kv) {
    k = split(line, parts, " ")
    for (i = 1; i <= k; i++) { split(parts[i], kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  BEGIN {
    printf "machine: %s cores (%s), loopback; wrk %s threads, %s connections, %s s per run; signatures on, default log level, logs to a file\n\n", cores, cpu, threads, conns, dur
    printf "| scenario | calls/s | p50 ms | p99 ms | errors | answered / in the log | load (1 min) |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|\n"
  }
  {
    name = ($2 == "sqlite") ? "SQLite" : "PostgreSQL"
    code = ($1 == "before") ? "before (b)" : "durable (b)"
    bad = field($0, "non2xx") + field($0, "socket_errors")
    note = (field($0, "reused") > 0) ? sprintf(" (%d replayed CallSids)", field($0, "reused")) : ""
    printf "| %s %s | %.0f | %.2f | %.2f | %d | %s / %s%s | %s |\n", code, name, field($0, "rps"), field($0, "p50_us") / 1000, field($0, "p99_us") / 1000, bad, field($0, "requests"), field($0, "logged"), note, field($0, "load")
  }' "$work/results"
