-- wrk script: POST /api/verify, cycling through the tokens in $TOKENS. The
-- requests are formatted once in init() so that the load generator spends
-- its CPU on sending, not on building strings. There is no response()
-- hook (it costs the load generator a Lua call per reply): bench/verify
-- checks the node's metrics instead, which count every result.
local requests = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    requests[#requests + 1] = wrk.format("POST", "/api/verify",
      {["Content-Type"] = "application/json"}, '{"token":"' .. line .. '"}')
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end
