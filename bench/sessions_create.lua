-- wrk script: POST /api/sessions with ~200 bytes of attributes and a fresh
-- subject per request; the admin key comes from $ADMIN.
local counter = 0
local headers
local prefix

-- ~200 bytes of attributes, as in the issue's memory target.
local attributes = '{"ip":"203.0.113.17","ua":"Mozilla/5.0 (X11; Linux x86_64) '
  .. 'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",'
  .. '"acr":"urn:mace:incommon:iap:silver","amr":"pwd otp","tenant":"acme-eu-1"}'

function setup(thread)
  thread:set("id", tostring(math.random(1, 1e9)))
end

function init(args)
  headers = {["Authorization"] = "Bearer " .. os.getenv("ADMIN"),
             ["Content-Type"] = "application/json"}
  prefix = "bench-" .. id .. "-"
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/api/sessions", headers,
    '{"sub":"' .. prefix .. counter .. '","client_id":"web","attributes":'
    .. attributes .. '}')
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
