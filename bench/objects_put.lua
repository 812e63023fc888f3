-- wrk script: PUT /api/objects/Bench/<prefix><n> with a ~400-byte value,
-- created only if absent; the admin key comes from $ADMIN, the id prefix
-- from $PREFIX (one per round).
local counter = 0
local headers
local body

function init(args)
  headers = {["Authorization"] = "Bearer " .. os.getenv("ADMIN"),
             ["Content-Type"] = "application/json"}
  body = '{"value":{"client_id":"web","payload":"' .. string.rep("x", 360)
    .. '"},"ttl":600,"if_absent":true}'
end

function request()
  counter = counter + 1
  return wrk.format("PUT", "/api/objects/Bench/" .. os.getenv("PREFIX")
    .. counter, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
