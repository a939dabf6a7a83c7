-- wrk script for bench/enroll/run-wrk.mjs: EST simpleenroll (RFC 7030 §4.2.1), one fresh CSR per request.
--
-- Invariants:
--  * Each CSR is sent at most once: thread i owns the disjoint slice [first, first + count) of the pool
--    file (one base64 PKCS#10 per line, RFC 7030 §4.2.1 body), handed to it by setup(). When its slice
--    runs low (fewer left than its connections), the thread stops instead of re-sending a key: a key
--    may be enrolled only once, and a repeat would be a hub error, not load.
--  * Nothing beyond the pool is ever POSTed: an overrun sends a read-only GET /cacerts and is counted.
--  * Every request() call is counted per thread, and wrk counts the responses (summary.requests) and
--    those with a status >= 400 (summary.errors.status), so run-wrk.mjs can bound the requests that were
--    in flight when wrk stopped (the hub finishes them, wrk never reads them). There is no response()
--    callback on purpose: with one, wrk builds Lua tables of every response's headers and body, which
--    costs it CPU on the two cores it shares with the hub (wrk's README: "parsing the headers and body
--    is expensive").
--  * done() prints exactly one line "FLEETKEY_WRK_RESULT {json}" on stdout.
-- Env (read in the main Lua state by setup): FLEETKEY_WRK_CSRS (pool file), FLEETKEY_WRK_CSR_COUNT
-- (lines in it), FLEETKEY_WRK_THREADS (= wrk -t), FLEETKEY_WRK_CONNECTIONS (= wrk -c),
-- FLEETKEY_WRK_AUTH (comma-separated "Basic …" values, one per thread, reused round-robin).

local PATH = "/.well-known/est/simpleenroll"
local threads = {}

local function split(s)
  local out = {}
  for part in string.gmatch(s or "", "[^,]+") do out[#out + 1] = part end
  return out
end

-- Main Lua state, once per wrk thread, before that thread's init().
function setup(thread)
  local n = #threads
  local nthreads = tonumber(os.getenv("FLEETKEY_WRK_THREADS"))
  local total = tonumber(os.getenv("FLEETKEY_WRK_CSR_COUNT"))
  local auths = split(os.getenv("FLEETKEY_WRK_AUTH"))
  local per = math.floor(total / nthreads)
  thread:set("thread_index", n)
  thread:set("first", n * per)
  thread:set("count", per)
  thread:set("file", os.getenv("FLEETKEY_WRK_CSRS"))
  thread:set("auth", auths[(n % #auths) + 1])
  thread:set("conns", math.floor(tonumber(os.getenv("FLEETKEY_WRK_CONNECTIONS")) / nthreads))
  threads[n + 1] = thread
end

-- Thread Lua state: load this thread's slice only.
function init(args)
  bodies = {}
  local f = assert(io.open(file, "r"))
  local line_no = 0
  for line in f:lines() do
    if line_no >= first + count then break end
    if line_no >= first then bodies[#bodies + 1] = line end
    line_no = line_no + 1
  end
  f:close()
  headers = { ["Content-Type"] = "application/pkcs10", ["Authorization"] = auth }
  nexti, calls, overrun, exhausted = 1, 0, 0, false
end

function request()
  calls = calls + 1
  local body = bodies[nexti]
  if body == nil then
    overrun = overrun + 1
    return wrk.format("GET", "/.well-known/est/cacerts")
  end
  nexti = nexti + 1
  -- Few keys left: stop before a connection could need one more than the slice holds.
  if not exhausted and #bodies - nexti + 1 <= conns then
    exhausted = true
    wrk.thread:stop()
  end
  return wrk.format("POST", PATH, headers, body)
end

local function json_statuses(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Main Lua state, after all threads joined. Latency figures are wrk's (µs), which include wrk's own
-- correction for requests delayed behind slow ones (stats_correct).
function done(summary, latency, requests)
  local all = { calls = 0, overrun = 0 }
  local exhausted_threads = 0
  for _, t in ipairs(threads) do
    -- thread 0's first request() was wrk's start-up check of the script (never sent)
    local c = t:get("calls") - (t:get("thread_index") == 0 and 1 or 0)
    all.calls = all.calls + c
    all.overrun = all.overrun + t:get("overrun")
    if t:get("exhausted") then exhausted_threads = exhausted_threads + 1 end
  end
  local e = summary.errors
  -- The hub answers 200 or a coded 4xx/5xx (never 1xx/3xx): responses below 400 are the 200s.
  all.responses = summary.requests
  all.ok = summary.requests - e.status
  all.statuses = { ["200"] = all.ok, [">=400"] = e.status }
  io.write(string.format(
    'FLEETKEY_WRK_RESULT {"durationUs":%d,"requests":%d,"bytes":%d,' ..
    '"socketErrors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statusErrors":%d,' ..
    '"sent":%d,"responses":%d,"ok":%d,"overrun":%d,"exhaustedThreads":%d,"statuses":%s,' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    all.calls, all.responses, all.ok, all.overrun, exhausted_threads, json_statuses(all.statuses),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
