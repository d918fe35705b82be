-- SmartUnion load scenarios for wrk, driven by bench/load.py.
--
--   wrk -s bench/load/scenario.lua http://127.0.0.1:PORT -- key=value ...
--
--   mix=profile:60,list:15,detail:20,write:5
--                  weights of the request kinds: healthz, profile (GET /api/v1/me/profile
--                  with a member's token), list (GET /api/v1/members?page=P&size=20),
--                  detail (GET /api/v1/members/{id}) and write (PATCH /api/v1/members/{id},
--                  a new occupation), the last three with a staff token
--   delay_ms=300   paced: each connection waits this long (randomised ±50%) after a
--                  response before its next request; 0 or absent = saturated (closed loop)
--   members=FILE   member bearer tokens, one a line
--   staff=FILE     staff bearer tokens, one a line
--   ids=FILE       member ids the staff may read, one a line
--   pages=100      list pages are drawn from 1..pages
--
-- Every response is counted by status in response(); done() sums the threads' counts and
-- prints one line, "LOADJSON {...}", with requests, duration, wrk's socket errors, the
-- per-status counts, requests sent and latency percentiles in ms.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

-- Per-thread state (globals, so that done() can read them with thread:get()).
sent = 0
responses = 0
statuses = {}

local kinds, cumulative, total_weight = {}, {}, 0
local member_tokens, staff_tokens, ids = {}, {}, {}
local member_next, staff_next = 0, 0
local pages = 100

local function read_lines(path)
  local out = {}
  if path == nil or path == "" then
    return out
  end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      table.insert(out, line)
    end
  end
  f:close()
  return out
end

function init(args)
  local opts = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if key then
      opts[key] = value
    end
  end
  for kind, weight in (opts.mix or "healthz:1"):gmatch("(%a+):(%d+)") do
    total_weight = total_weight + tonumber(weight)
    table.insert(kinds, kind)
    table.insert(cumulative, total_weight)
  end
  member_tokens = read_lines(opts.members)
  staff_tokens = read_lines(opts.staff)
  ids = read_lines(opts.ids)
  pages = tonumber(opts.pages or "100")
  math.randomseed(os.time() * 97 + (thread_no or 0) * 7919)
  -- Spread the threads over the token lists.
  member_next = (thread_no or 0) * 37
  staff_next = (thread_no or 0) * 3
  local delay_ms = tonumber(opts.delay_ms or "0")
  if delay_ms > 0 then
    -- Defined only when paced: wrk skips its delay timer when there is no delay().
    delay = function()
      return math.floor(delay_ms * (0.5 + math.random()))
    end
  end
end

local function pick()
  local r = math.random() * total_weight
  for i, edge in ipairs(cumulative) do
    if r < edge then
      return kinds[i]
    end
  end
  return kinds[#kinds]
end

local function member_auth()
  member_next = member_next % #member_tokens + 1
  return { Authorization = "Bearer " .. member_tokens[member_next] }
end

local function staff_auth()
  staff_next = staff_next % #staff_tokens + 1
  return { Authorization = "Bearer " .. staff_tokens[staff_next] }
end

local function random_id()
  return ids[math.random(#ids)]
end

function request()
  sent = sent + 1
  local kind = pick()
  if kind == "profile" then
    return wrk.format("GET", "/api/v1/me/profile", member_auth())
  elseif kind == "list" then
    local path = "/api/v1/members?page=" .. math.random(pages) .. "&size=20"
    return wrk.format("GET", path, staff_auth())
  elseif kind == "detail" then
    return wrk.format("GET", "/api/v1/members/" .. random_id(), staff_auth())
  elseif kind == "write" then
    local headers = staff_auth()
    headers["Content-Type"] = "application/json"
    local body = string.format('{"occupation": "bench-%06d"}', math.random(0, 999999))
    return wrk.format("PATCH", "/api/v1/members/" .. random_id(), headers, body)
  end
  return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
end

local function ms(us)
  return us / 1000.0
end

function done(summary, latency, requests)
  local by_status, sent_total, responses_total = {}, 0, 0
  for _, thread in ipairs(threads) do
    sent_total = sent_total + (thread:get("sent") or 0)
    responses_total = responses_total + (thread:get("responses") or 0)
    for status, count in pairs(thread:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(by_status) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'LOADJSON {"requests": %d, "duration_s": %.3f, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, '
      .. '"statuses": {%s}, "sent": %d, "responses": %d, '
      .. '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "mean": %.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ", "), sent_total, responses_total,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), ms(latency.mean)
  ))
end
