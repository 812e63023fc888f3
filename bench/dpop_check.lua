-- wrk script: POST /api/dpop/nonce/check with the nonce in $NONCE (each
-- answer carries a fresh nonce: one issue and one check per request); the
-- admin key comes from $ADMIN.
local headers
local body

function init(args)
  headers = {["Authorization"] = "Bearer " .. os.getenv("ADMIN"),
             ["Content-Type"] = "application/json"}
  body = '{"nonce":"' .. os.getenv("NONCE") .. '"}'
end

function request()
  return wrk.format("POST", "/api/dpop/nonce/check", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
