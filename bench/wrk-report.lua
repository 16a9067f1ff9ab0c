-- Shared by every wrk run in bench/run.sh: POST a body, print one parseable line.
-- CONTENT_TYPE (env) is the body's type: a form unless told otherwise (Vonage sends JSON).
-- BODY_FILE (env) holds the form body; when UNIQUE_SID=1 every request gets its own CallSid.
local body_template
local unique = os.getenv("UNIQUE_SID") == "1"
local counter = 0
local thread_no = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
  body_template = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded"
  wrk.body = body_template
  RUN_ID = os.time()
end

function request()
  if unique then
    counter = counter + 1
    -- CA + 32 hex digits: thread number, a per-run random prefix, and a counter.
    local sid = string.format("CA%04x%012x%016x", thread_no, RUN_ID or 0, counter)
    local body = string.gsub(body_template, "CallSid=CA%x+", "CallSid=" .. sid)
    return wrk.format(nil, nil, nil, body)
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status or 0
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
