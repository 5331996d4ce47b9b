-- wrk script of `make bench-peer`: one fixed request, every response body checked.
-- wrk counts any completed response as a success, a 200 with GraphQL `errors` included; here a
-- response counts as good only when its status is 200 and its body is byte-for-byte the reference
-- body that bench/peer.py validated (items, no `errors`) before the run.
-- Arguments (after `--`): method, request body file ("-" for none), reference body file, token.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local prepared

function init(args)
  good, bad = 0, 0 -- globals: done() reads them per thread through thread:get()
  -- Responses per wall-clock second (checked or not), so bench/peer.py can divide the gateway's
  -- CPU over whole seconds of steady state by the responses completed in them.
  per_second = {}
  expected = slurp(args[3])
  local headers = { ["Coder-Session-Token"] = args[4] }
  local body = nil
  if args[2] ~= "-" then
    body = slurp(args[2])
    headers["Content-Type"] = "application/json"
  end
  prepared = wrk.format(args[1], nil, headers, body)
end

function request()
  return prepared
end

function response(status, headers, body)
  local now = os.time()
  per_second[now] = (per_second[now] or 0) + 1
  if status == 200 and body == expected then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b, seconds = 0, 0, {}
  for _, thread in ipairs(threads) do
    g = g + thread:get("good")
    b = b + thread:get("bad")
    for second, n in pairs(thread:get("per_second")) do
      seconds[second] = (seconds[second] or 0) + n
    end
  end
  local buckets = {}
  for second, n in pairs(seconds) do
    table.insert(buckets, string.format('"%d": %d', second, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {"good": %d, "bad": %d, "requests": %d, "duration_us": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "socket_errors": %d, "per_second": {%s}}\n',
    g, b, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(buckets, ", ")))
end
