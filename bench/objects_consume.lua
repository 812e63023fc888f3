-- wrk script: POST /api/objects/Bench/<prefix><n>/consume for the ids the
-- put run made (in the same order); an id past them answers 404. Prints
-- "consumed: N" (200s), "missing: N" (404s) and "non-2xx: N" (anything
-- else: a failure).
local threads = {}
local counter = 0
local headers
consumed = 0
missing = 0
other = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  headers = {["Authorization"] = "Bearer " .. os.getenv("ADMIN")}
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/api/objects/Bench/" .. os.getenv("PREFIX")
    .. counter .. "/consume", headers)
end

function response(status, headers, body)
  if status == 200 then
    consumed = consumed + 1
  elseif status == 404 then
    missing = missing + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local c, m, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("consumed")
    m = m + t:get("missing")
    o = o + t:get("other")
  end
  io.write(string.format("consumed: %d\nmissing: %d\nnon-2xx: %d\n", c, m, o))
end
