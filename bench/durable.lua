-- bench/durable.sh's wrk script: POST pre-signed Twilio incoming-call bodies, each with its own
-- CallSid, one after another. BODIES (env) is a file prefix: thread n reads "<BODIES>.<n>",
-- one request a line, "<X-Twilio-Signature>\t<form body>" (made by bench/durable.sh; wrk's Lua
-- has no HMAC). Prints one parseable RESULT line, like bench/wrk-report.lua, plus reused=N: the
-- requests sent after a thread ran out of bodies (their CallSids were replays).
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local sigs, bodies = {}, {}
local next_line, count, sent = 1, 0, 0
reused = 0

function init(args)
  local f = assert(io.open(os.getenv("BODIES") .. "." .. thread_no, "r"))
  for line in f:lines() do
    local tab = string.find(line, "\t", 1, true)
    count = count + 1
    sigs[count] = string.sub(line, 1, tab - 1)
    bodies[count] = string.sub(line, tab + 1)
  end
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local i = next_line
  if sent >= count then
    reused = reused + 1
  end
  sent = sent + 1
  next_line = (next_line % count) + 1
  wrk.headers["X-Twilio-Signature"] = sigs[i]
  return wrk.format(nil, nil, nil, bodies[i])
end

function done(summary, latency, requests)
  local again = 0
  for _, t in ipairs(threads) do
    again = again + (t:get("reused") or 0)
  end
  io.write(string.format(
    "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d socket_errors=%d reused=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, summary.errors.status or 0,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    again))
end
