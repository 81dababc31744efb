-- wrk script for `python -m bench`: cycles through the benchmark's request mix.
--
-- wrk ... -s bench/mix.lua URL -- mix KEY_A KEY_B KEY_C
--     The realistic mix on three keys (see MIX below).
-- wrk ... -s bench/mix.lua URL -- keys COUNT
--     The memory soak and the many-keys `--store` cells: the same mix spread over COUNT generated keys
--     (request n uses key n mod COUNT; the key generator is bench/run.py's generated_key too).
-- wrk ... -s bench/mix.lua URL -- chat KEY plain|stream
--     Chat completions on one key (its session opened by the first one), whole answers or SSE streams;
--     response() counts the stream's chunk frames ("data: {...}", not the closing "data: [DONE]").
--
-- Requests are built once in init(); request() only hands out the next prebuilt one. response()
-- counts statuses, done() prints one line `BENCH_JSON {...}` that bench/load.py reads.

local MODEL_1, MODEL_2 = "mistral-31-24b", "llama-3.3-70b"
local GOOD_BODY = '{"sessionDuration": 3600, "directPayment": false, "failover": false}'
local BAD_BODY = '{"sessionDuration": "abc", "directPayment": false, "failover": false}'

-- One cycle of the mix: {name, path, key slot (nil: no Authorization), body, intended status}.
-- Key slots: 1 reuses one model (R1), 2 alternates models (R2), 3 opens then closes (R4).
local MIX = {
  { "modelsession_reuse", "/api/v1/session/modelsession?model_id=" .. MODEL_1, 1, GOOD_BODY, 200 },
  { "modelsession_switch", "/api/v1/session/modelsession?model_id=" .. MODEL_2, 2, GOOD_BODY, 200 },
  { "modelsession_switch", "/api/v1/session/modelsession?model_id=" .. MODEL_1, 2, GOOD_BODY, 200 },
  { "pingsession", "/api/v1/session/pingsession", 1, "", 200 },
  { "modelsession_open", "/api/v1/session/modelsession?model_id=" .. MODEL_1, 3, GOOD_BODY, 200 },
  { "closesession", "/api/v1/session/closesession", 3, "", 200 },
  { "no_key_401", "/api/v1/session/pingsession", nil, "", 401 },
  { "bad_body_422", "/api/v1/session/modelsession?model_id=" .. MODEL_1, 1, BAD_BODY, 422 },
}

local CHAT_PATH = "/api/v1/chat/completions"
local function chat_body(stream)
  return '{"model": "' .. MODEL_1 .. '", "messages": [{"role": "user", "content": "hello"}], "stream": '
    .. tostring(stream) .. "}"
end

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

-- The n-th generated key: "sk-" + 6 [A-Za-z0-9] (distinct for every n < 62^6) + "." + 64 lowercase hex.
local function generated_key(n)
  local prefix, rest = {}, n
  for i = 6, 1, -1 do
    local digit = rest % 62
    prefix[i] = ALNUM:sub(digit + 1, digit + 1)
    rest = math.floor(rest / 62)
  end
  return "sk-" .. table.concat(prefix) .. "." .. string.rep(string.format("%08x", n), 8)
end

local function build(item, key)
  local headers = { ["Content-Type"] = "application/json" }
  if key then
    headers["Authorization"] = "Bearer " .. key
  end
  return wrk.format("POST", item[2], headers, item[4])
end

local requests, intended = {}, {}
local next_index = 0
statuses, issued, frames = {}, {}, 0

function init(args)
  local mode = args[1]
  if mode == "mix" then
    local keys = { args[2], args[3], args[4] }
    for i, item in ipairs(MIX) do
      requests[i] = build(item, item[3] and keys[item[3]])
      intended[i] = item[5]
    end
  elseif mode == "keys" then
    local count = tonumber(args[2])
    -- Request n (0-based) uses key n mod count and step floor(n / count) of the mix (every key
    -- slot is that one key): the first pass touches every key, later ones walk each key through
    -- the whole mix.
    for step, item in ipairs(MIX) do
      for k = 0, count - 1 do
        local index = (step - 1) * count + k + 1
        requests[index] = build(item, item[3] and generated_key(k))
        intended[index] = item[5]
      end
    end
  elseif mode == "chat" then
    requests[1] = build({ "chat", CHAT_PATH, 1, chat_body(args[3] == "stream") }, args[2])
    intended[1] = 200
  else
    error("mix.lua: first argument must be 'mix', 'keys' or 'chat', got " .. tostring(mode))
  end
end

function request()
  next_index = next_index % #requests + 1
  local status = intended[next_index]
  issued[status] = (issued[status] or 0) + 1
  return requests[next_index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if body then
    local _, count = body:gsub("data: {", "")
    frames = frames + count
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function add_counts(total, counts)
  for status, count in pairs(counts) do
    total[status] = (total[status] or 0) + count
  end
end

local function json_counts(counts)
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, _)
  local all_statuses, all_issued, all_frames = {}, {}, 0
  for _, thread in ipairs(threads) do
    add_counts(all_statuses, thread:get("statuses"))
    add_counts(all_issued, thread:get("issued"))
    all_frames = all_frames + thread:get("frames")
  end
  local e = summary.errors
  io.write(
    string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
        .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
        .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, '
        .. '"statuses": %s, "issued": %s, "frames": %d}\n',
      summary.duration,
      summary.requests,
      summary.bytes,
      e.connect,
      e.read,
      e.write,
      e.status,
      e.timeout,
      latency:percentile(50),
      latency:percentile(90),
      latency:percentile(99),
      latency.max,
      latency.mean,
      json_counts(all_statuses),
      json_counts(all_issued),
      all_frames
    )
  )
end
