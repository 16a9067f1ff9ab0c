#!/usr/bin/env bash
# Interleaved A/B runs of the unknown caller's Twilio webhook at saturation, for comparing two
# builds (or a build and the static endpoint) on a machine whose speed drifts between minutes:
#
#   bench/ab.sh ROUNDS SECONDS BINARY...      e.g.  bench/ab.sh 3 5 static /tmp/before target/release/fairline
#
# Each BINARY is a `fairline` executable, or the word `static` for examples/static_twiml (build
# it with `cargo build --release --example static_twiml`). All of them are started at once, on
# ports 18082, 18083, ...; each round runs `wrk -t2 -c32` against each in turn with the same
# signed request as bench/run.sh's scenario (a) (signatures on, the default log level, logs to a
# file). Per run it prints req/s and the server's CPU per request (user, system and total µs,
# from /proc/PID/stat), which moves less with the machine's drift than req/s does.
# Needs wrk, curl and python3.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
rounds="$1"; seconds="$2"; shift 2
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sed 's/%2B442920123456/%2B442920999999/g' "$root/fixtures/twilio/incoming-call.txt" >"$work/unknown.txt"
names=(); addrs=(); port=18082
for bin in "$@"; do
  addr="127.0.0.1:$port"
  if [ "$bin" = static ]; then
    "$target/release/examples/static_twiml" "$addr" >/dev/null 2>&1 &
  else
    mkdir -p "$work/$port"
    # bench/config.toml's public URL stays http://127.0.0.1:18080: requests are signed for it.
    FAIRLINE_SERVER__BIND="$addr" FAIRLINE_STORAGE__URL="sqlite://$work/$port/fairline.db" \
      FAIRLINE_VONAGE__PRIVATE_KEY="$(cat "$root/fixtures/vonage/test-application-private-key.pem")" \
      "$bin" serve --config "$here/config.toml" >>"$work/$port/log" 2>&1 &
  fi
  pids+=($!); names+=("$bin"); addrs+=("$addr"); port=$((port + 1))
done
for addr in "${addrs[@]}"; do
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -X POST "http://$addr/webhooks/twilio/voice" && break
    sleep 0.1
  done
done

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$rounds"); do
  for i in "${!addrs[@]}"; do
    before="$(cpu_ticks "${pids[$i]}")"
    out="$(SIGN_URL="http://127.0.0.1:18080/webhooks/twilio/voice" \
      SIGN_TOKEN="bench-twilio-auth-token-00000000" BODY_FILE="$work/unknown.txt" UNIQUE_SID=0 \
      wrk -t2 -c32 -d"${seconds}s" -s "$here/wrk-report.lua" "http://${addrs[$i]}/webhooks/twilio/voice")"
    after="$(cpu_ticks "${pids[$i]}")"
    python3 - "$round" "${names[$i]}" "$before" "$after" "$(getconf CLK_TCK)" "$out" <<'PY'
import re, sys
round_, name, before, after, hz, out = sys.argv[1:]
requests = int(re.search(r"(\d+) requests in", out).group(1))
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
(u0, s0), (u1, s1) = (map(int, before.split()), map(int, after.split()))
per = lambda ticks: ticks * 1e6 / int(hz) / requests
print(f"round {round_} {name}: {float(rps):,.0f} req/s, CPU per request user {per(u1 - u0):.2f} "
      f"+ system {per(s1 - s0):.2f} = {per(u1 - u0 + s1 - s0):.2f} µs, "
      f"non-2xx {non2xx.group(1) if non2xx else 0}")
PY
  done
done
