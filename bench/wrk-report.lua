-- Shared by every wrk run in bench/run.sh: POST a body, print one parseable line.
-- CONTENT_TYPE (env) is the body's type: a form unless told otherwise (Vonage sends JSON).
-- BODY_FILE (env) holds the form body; when UNIQUE_SID=1 every request gets its own CallSid.
-- SIGN_URL and SIGN_TOKEN (env), when both set, sign every form request as Twilio does
-- (X-Twilio-Signature: base64 HMAC-SHA1, keyed with the auth token, over the URL followed by
-- every decoded field's name and value, sorted by name then value); with UNIQUE_SID=1 each
-- request is signed for its own CallSid. Other fixed headers come from wrk's -H.
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local lshift, rshift, rol, tobit = bit.lshift, bit.rshift, bit.rol, bit.tobit

local body_template
local unique = os.getenv("UNIQUE_SID") == "1"
local sign_url = os.getenv("SIGN_URL")
local sign_token = os.getenv("SIGN_TOKEN")
local signing = sign_url ~= nil and sign_url ~= "" and sign_token ~= nil and sign_token ~= ""
-- thread_no is a global: setup() sets it in each thread's own Lua state.
local counter = 0
thread_no = 0
local threads = {}

-- SHA-1 (FIPS 180-4) over a Lua string, with LuaJIT's 32-bit `bit` operations.
local function be32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
end

local function word_bytes(h)
  return string.char(band(rshift(h, 24), 255), band(rshift(h, 16), 255),
    band(rshift(h, 8), 255), band(h, 255))
end

local function sha1(msg)
  local h0, h1, h2, h3, h4 = tobit(0x67452301), tobit(0xEFCDAB89), tobit(0x98BADCFE),
    tobit(0x10325476), tobit(0xC3D2E1F0)
  local bits = #msg * 8
  msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64) .. "\0\0\0\0" .. word_bytes(bits)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do w[i] = be32(msg, chunk + i * 4) end
    for i = 16, 79 do w[i] = rol(bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1) end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then
        f, k = bxor(b, c, d), 0x6ED9EBA1
      elseif i < 60 then
        f, k = bor(band(b, c), band(b, d), band(c, d)), 0x8F1BBCDC
      else
        f, k = bxor(b, c, d), 0xCA62C1D6
      end
      local t = tobit(rol(a, 5) + f + e + k + w[i])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0, h1, h2, h3, h4 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d), tobit(h4 + e)
  end
  return word_bytes(h0) .. word_bytes(h1) .. word_bytes(h2) .. word_bytes(h3) .. word_bytes(h4)
end

local function hmac_sha1(key, msg)
  if #key > 64 then key = sha1(key) end
  key = key .. string.rep("\0", 64 - #key)
  local ipad, opad = {}, {}
  for i = 1, 64 do
    local k = key:byte(i)
    ipad[i] = string.char(bxor(k, 0x36))
    opad[i] = string.char(bxor(k, 0x5c))
  end
  return sha1(table.concat(opad) .. sha1(table.concat(ipad) .. msg))
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    local q = {}
    for j = 1, 4 do
      local idx = band(rshift(n, 6 * (4 - j)), 63) + 1
      q[j] = b64chars:sub(idx, idx)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local function form_decode(s)
  s = s:gsub("%+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Twilio's X-Twilio-Signature for a POST of `body` to `url`.
local function twilio_signature(url, body, token)
  local fields = {}
  for piece in body:gmatch("[^&]+") do
    local name, value = piece:match("^([^=]*)=?(.*)$")
    fields[#fields + 1] = { form_decode(name), form_decode(value) }
  end
  table.sort(fields, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  local parts = { url }
  for _, f in ipairs(fields) do parts[#parts + 1] = f[1] .. f[2] end
  return base64(hmac_sha1(token, table.concat(parts)))
end

-- POOL (env), with UNIQUE_SID=1: prepare that many requests per thread in init(), each with
-- its own CallSid and signature, before wrk's clock starts, and send them in turn (signing in
-- Lua per request would make wrk itself the bottleneck at tens of thousands of requests a
-- second). A CallSid comes back after POOL requests of its thread.
local pool_size = tonumber(os.getenv("POOL") or "0") or 0
local pool = {}
local pool_next = 0

local function unique_request()
  counter = counter + 1
  -- CA + 32 hex digits: thread number, a per-run random prefix, and a counter.
  local sid = string.format("CA%04x%012x%016x", thread_no, RUN_ID or 0, counter)
  local body = string.gsub(body_template, "CallSid=CA%x+", "CallSid=" .. sid)
  if signing then
    local headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["X-Twilio-Signature"] = twilio_signature(sign_url, body, sign_token)
    return wrk.format(nil, nil, headers, body)
  end
  return wrk.format(nil, nil, nil, body)
end

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
  if signing then
    wrk.headers["X-Twilio-Signature"] = twilio_signature(sign_url, body_template, sign_token)
  end
  RUN_ID = os.time()
  if unique then
    for i = 1, pool_size do pool[i] = unique_request() end
  end
  if os.getenv("PRINT_SIGNATURE") == "1" then
    io.stderr:write("signature ", tostring(wrk.headers["X-Twilio-Signature"]), "\n")
  end
end

-- Only with UNIQUE_SID=1 does the script build requests: otherwise there is no `request`
-- function and wrk sends the one request init() set up, prepared once (its cheapest way; a
-- `request` function that formats every request costs wrk CPU on a machine it shares with the
-- server, which favours the slower server in the ratio).
if unique then
  function request()
    if pool_size > 0 then
      pool_next = pool_next % pool_size + 1
      return pool[pool_next]
    end
    return unique_request()
  end
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status or 0
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
